export { messageId, parseMessageId, isValidTopicName, isValidOffset } from './message-id.js'
export type { MessageId, SourceCoordinates } from './message-id.js'
export {
  defaultGroupKey,
  resolveGroupKey,
  groupKeyToStoreKey,
  displayGroupKey,
  KEYLESS_GROUP_PREFIX,
  MALFORMED_GROUP_PREFIX,
} from './group-key.js'
export type { GroupKey, GroupKeyFn } from './group-key.js'
export { detourTopics, detourTopicsFor, defaultTopicNaming } from './topic-names.js'
export type { DetourTopics, TopicNaming } from './topic-names.js'
export { topicPartitionKey, parseTopicPartitionKey } from './topic-partition.js'
export type { TopicPartition } from './topic-partition.js'
export type { HeldGroup } from './held-group.js'

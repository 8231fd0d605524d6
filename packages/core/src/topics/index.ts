export { KafkaTopicAdmin } from './topic-admin.js'
export type { TopicAdmin, TopicSpec } from './topic-admin.js'
export { provisionTopics, RETRY_TOPIC_CONFIG } from './provision.js'
export type { ProvisionOptions, ProvisionResult } from './provision.js'

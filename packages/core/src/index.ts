export {
  ErrorCodes,
  DetourError,
  DetourConfigError,
  DetourTopicError,
  DetourHandOffError,
  UnprocessableMessageError,
  DeserializationError,
  MalformedRecordError,
  DetourTimeoutError,
  DetourFencedError,
  DetourStoppingError,
  isDetourError,
  isUnprocessableError,
  isDeserializationError,
  isProgrammingError,
} from './errors/index.js'
export type { ErrorCode, DetourErrorOptions } from './errors/index.js'
export {
  messageId,
  parseMessageId,
  isValidTopicName,
  isValidOffset,
  defaultGroupKey,
  resolveGroupKey,
  groupKeyToStoreKey,
  displayGroupKey,
  KEYLESS_GROUP_PREFIX,
  MALFORMED_GROUP_PREFIX,
  detourTopics,
  detourTopicsFor,
  defaultTopicNaming,
  topicPartitionKey,
  parseTopicPartitionKey,
} from './model/index.js'
export type { MessageId, SourceCoordinates, GroupKey, GroupKeyFn, DetourTopics, TopicNaming, TopicPartition, HeldGroup } from './model/index.js'
export { DetourHeaders, HeaderLimits, headerString, headerBuffer, truncateUtf8, userHeaders } from './headers/index.js'
export type { DetourHeaderName, RedirectReason, DeadLetterReason } from './headers/index.js'
export {
  REDIRECT_KEY_SEPARATOR,
  redirectKey,
  parseRedirectKey,
  buildRedirectRecord,
  buildTombstone,
  decodeRedirectRecord,
  RedirectPartitionDecoder,
  BARRIER_KEY,
  buildBarrierRecord,
  isBarrierRecord,
  buildRetryRecord,
  decodeRetryRecord,
  describeError,
  buildDeadLetterRecord,
  writeDeadLetter,
} from './codec/index.js'
export type {
  RedirectRecordInput,
  RedirectEntry,
  RedirectUpdate,
  TombstoneInput,
  RetryRecordInput,
  RetryEnvelope,
  DeadLetterInput,
} from './codec/index.js'
export { GroupStore } from './store/index.js'
export type { GroupStoreOptions, StoreStats } from './store/index.js'
export { RedirectFollower, StableOffsetReader } from './follower/index.js'
export type { RedirectFollowerOptions, FollowerMetrics, FollowerState, WaitOptions } from './follower/index.js'
export { KafkaTopicAdmin, provisionTopics, RETRY_TOPIC_CONFIG } from './topics/index.js'
export type { TopicAdmin, TopicSpec, ProvisionOptions, ProvisionResult } from './topics/index.js'
export { METRIC_PREFIX, counter, gauge, histogram, createFollowerMetrics } from './metrics/index.js'
export { noopLogger, childLogger, createJsonLogger, kafkajsLogCreator, kafkajsLogLevel } from './logging/index.js'
export type { Logger, LogFields, LogLevel, JsonLoggerOptions } from './logging/index.js'
export { exponentialBackoff, constantBackoff, resolveBackoff, MAX_TIMER_DELAY_MS, EXPONENTIAL_BACKOFF_DEFAULTS } from './backoff/index.js'
export type { BackoffFn, ExponentialBackoffOptions, BackoffOption, ExponentialBackoffSpec, ConstantBackoffSpec } from './backoff/index.js'
export { classifyError, isRecordTooLargeError, isRebalanceError, isFencedError, someInChain } from './classify/index.js'
export type { FailureKind, ErrorClassifier } from './classify/index.js'
export { SafeEmitter } from './events/index.js'
export { HeartbeatLease } from './membership/index.js'
export { listenHttp } from './http/index.js'
export type { ListeningServer } from './http/index.js'
export {
  resolveGroupIds,
  resolveGroupIdFlags,
  legacyGroupArguments,
  DEFAULT_WORKER_GROUP_SUFFIX,
  createKafka,
  checkConnectionSettings,
  SASL_MECHANISMS,
  dropForeignEnvArguments,
  CLI_ENV_PREFIX,
} from './config/index.js'
export type { ResolvedGroupIds, GroupIdInput, GroupIdFlags, KafkaConnectionSettings, SaslMechanism, KnownCliOptions } from './config/index.js'
export type { LifecycleState, StopResult } from './lifecycle/index.js'

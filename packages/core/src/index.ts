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
  detourTopics,
  defaultTopicNaming,
} from './model/index.js'
export type { MessageId, SourceCoordinates, GroupKey, GroupKeyFn, DetourTopics, TopicNaming } from './model/index.js'
export { DetourHeaders, HeaderLimits, headerString, headerBuffer, truncateUtf8, userHeaders } from './headers/index.js'
export type { DetourHeaderName, RedirectReason, DeadLetterReason } from './headers/index.js'
export {
  redirectKey,
  parseRedirectKey,
  buildRedirectRecord,
  buildTombstone,
  decodeRedirectRecord,
  buildRetryRecord,
  decodeRetryRecord,
  describeError,
  buildDeadLetterRecord,
} from './codec/index.js'
export type { RedirectRecordInput, RedirectEntry, RetryRecordInput, RetryEnvelope, DeadLetterInput } from './codec/index.js'
export { GroupStore } from './store/index.js'
export type { GroupStoreOptions, StoreStats } from './store/index.js'
export { KafkaTopicAdmin, provisionTopics } from './topics/index.js'
export type { TopicAdmin, TopicSpec, ProvisionOptions, ProvisionResult } from './topics/index.js'
export { METRIC_PREFIX, counter, gauge, histogram } from './metrics/index.js'
export { noopLogger, childLogger, createJsonLogger } from './logging/index.js'
export type { Logger, LogFields, LogLevel, JsonLoggerOptions } from './logging/index.js'
export { exponentialBackoff, constantBackoff } from './backoff/index.js'
export type { BackoffFn, ExponentialBackoffOptions } from './backoff/index.js'
export { classifyError, isRecordTooLargeError } from './classify/index.js'
export type { FailureKind, ErrorClassifier } from './classify/index.js'

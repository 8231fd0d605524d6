export { Detour, createDetour } from './detour.js'
export type { DetourEvents, DetourStats } from './detour.js'
export { defaultOptions } from './options.js'
export type { DetourOptions } from './options.js'
export type { HandOffMode } from './hand-off/hand-off.js'
export type { PartitionReadiness, PartitionState } from './partitions/partition-gate.js'
export type { SdkMetrics } from './metrics/sdk-metrics.js'
// Re-exported so applications need only this package to classify failures and match errors.
export {
  UnprocessableMessageError,
  DeserializationError,
  DetourError,
  DetourConfigError,
  DetourTopicError,
  DetourHandOffError,
  DetourFencedError,
  DetourStoppingError,
  DetourTimeoutError,
  ErrorCodes,
} from '@detour/core'
export type { ErrorClassifier, FailureKind, GroupKeyFn, TopicNaming, BackoffOption, LifecycleState, StopResult } from '@detour/core'

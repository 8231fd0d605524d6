export { Detour, createDetour } from './detour.js'
export type { DetourEvents, DetourStats } from './detour.js'
export { defaultOptions } from './options.js'
export type { DetourOptions } from './options.js'
export type { PartitionReadiness } from './rebuild/rebuild-coordinator.js'
export type { SdkMetrics } from './metrics/sdk-metrics.js'
// Re-exported so applications need only this package to classify failures.
export { UnprocessableMessageError, DeserializationError, DetourError, DetourConfigError, DetourTopicError, DetourHandOffError, ErrorCodes } from '@detour/core'
export type { ErrorClassifier, FailureKind, GroupKeyFn, TopicNaming } from '@detour/core'

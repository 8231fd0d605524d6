export { RetryWorker, createRetryWorker } from './worker/retry-worker.js'
export { defaultOptions, resolveSettings } from './worker/retry-worker-options.js'
export type {
  RetryWorkerOptions,
  RetryWorkerSettings,
  ResolvedRetryWorkerSettings,
  ResolvedRetryWorkerOptions,
  ExhaustedPolicy,
  RetryHandler,
  RetryHandlerPayload,
} from './worker/retry-worker-options.js'
export type {
  WorkerState,
  ResolutionKind,
  HeldGroup,
  ReleaseResult,
  RetryWorkerStats,
  PartitionStats,
  StopOptions,
  StopResult,
  ResolvedEvent,
  DeadLetteredEvent,
  CommittedEvent,
  RebalancedEvent,
  TakeoverEvent,
  RetryWorkerEvents,
} from './worker/types.js'
export { formatOwnerMetadata, parseOwnerMetadata } from './worker/owner-metadata.js'
export type { OwnerMetadata, OwnerState } from './worker/owner-metadata.js'
/** @deprecated Moved to `@detour/core`; import it from there. */
export { resolveBackoff } from '@detour/core'
/** @deprecated Moved to `@detour/core`; import them from there. */
export type { BackoffOption, ExponentialBackoffSpec, ConstantBackoffSpec } from '@detour/core'
export { RetryMetrics, RETRY_METRIC_PREFIX } from './metrics/retry-metrics.js'
export { startHttpServer } from './http/http-server.js'
export type { HttpServerOptions, HttpWorker, RunningHttpServer } from './http/http-server.js'
export { WORKER_SETTINGS, envName } from './settings/index.js'
export type { SettingDefinition, SettingType, SettingSection, SettingFormat, SettingTarget, HelmMapping } from './settings/index.js'

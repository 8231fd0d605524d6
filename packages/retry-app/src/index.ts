export { RetryWorker, createRetryWorker } from './worker/retry-worker.js'
export { defaultOptions } from './worker/retry-worker-options.js'
export type { RetryWorkerOptions, ExhaustedPolicy, ResolvedRetryWorkerOptions } from './worker/retry-worker-options.js'
export type {
  WorkerState,
  ResolutionKind,
  HeldGroup,
  ReleaseResult,
  RetryWorkerStats,
  StopOptions,
  StopResult,
  ResolvedEvent,
  DeadLetteredEvent,
  CommittedEvent,
  RetryWorkerEvents,
} from './worker/types.js'
export { resolveBackoff } from './backoff/resolve-backoff.js'
export type { BackoffOption, ExponentialBackoffSpec, ConstantBackoffSpec } from './backoff/resolve-backoff.js'
export { RetryMetrics, RETRY_METRIC_PREFIX } from './metrics/retry-metrics.js'
export { startHttpServer } from './http/http-server.js'
export type { HttpServerOptions, HttpWorker, RunningHttpServer } from './http/http-server.js'

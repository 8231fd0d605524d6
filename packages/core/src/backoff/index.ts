export { exponentialBackoff, constantBackoff, EXPONENTIAL_BACKOFF_DEFAULTS } from './backoff.js'
export type { BackoffFn, ExponentialBackoffOptions } from './backoff.js'
export { resolveBackoff, MAX_TIMER_DELAY_MS } from './backoff-option.js'
export type { BackoffOption, ExponentialBackoffSpec, ConstantBackoffSpec } from './backoff-option.js'

export { exponentialBackoff, constantBackoff } from './backoff.js'
export type { BackoffFn, ExponentialBackoffOptions } from './backoff.js'

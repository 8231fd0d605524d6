import { DetourConfigError } from '../errors/index.js'
import { constantBackoff, exponentialBackoff, type BackoffFn, type ExponentialBackoffOptions } from './backoff.js'

/** Exponential backoff with jitter, described as data (what the CLI and config files produce). */
export interface ExponentialBackoffSpec extends ExponentialBackoffOptions {
  readonly type: 'exponential'
}

/** The same delay after every failure. */
export interface ConstantBackoffSpec {
  readonly type: 'constant'
  /** Delay before each retry, in milliseconds. */
  readonly delayMs: number
}

/**
 * How long to wait before the next attempt: a function of the number of failed attempts, or a
 * description of one of the built-in policies.
 */
export type BackoffOption = BackoffFn | ExponentialBackoffSpec | ConstantBackoffSpec

/**
 * Turns a {@link BackoffOption} into a {@link BackoffFn}. Invalid settings throw a
 * `DetourConfigError` naming the option to change.
 */
export function resolveBackoff(option: BackoffOption): BackoffFn {
  if (typeof option === 'function') return checked(option)
  switch (option.type) {
    case 'exponential': {
      const { type: _type, ...settings } = option
      return checked(exponentialBackoff(settings))
    }
    case 'constant':
      return checked(constantBackoff(option.delayMs))
    default:
      throw new DetourConfigError(
        'backoff.type',
        `must be "exponential" or "constant", got ${JSON.stringify((option as { type?: unknown }).type)}`,
      )
  }
}

/** The longest delay a Node.js timer supports (about 24.8 days); longer ones would fire at once. */
export const MAX_TIMER_DELAY_MS = 2_147_483_647

/** Guards a backoff function: a negative or NaN delay becomes 0, a huge one the timer maximum. */
function checked(fn: BackoffFn): BackoffFn {
  return (failedAttempts) => {
    const delay = fn(failedAttempts)
    if (Number.isNaN(delay) || delay < 0) return 0
    return Math.min(delay, MAX_TIMER_DELAY_MS)
  }
}

import { DetourConfigError } from '../errors/index.js'

/**
 * Delay before the next attempt, in milliseconds, given how many attempts have failed so far (1 after
 * the first failure).
 */
export type BackoffFn = (failedAttempts: number) => number

export interface ExponentialBackoffOptions {
  /** Delay after the first failure. @defaultValue 1000 */
  initialDelayMs?: number
  /** Growth per attempt. @defaultValue 2 */
  multiplier?: number
  /** Upper bound of a delay. @defaultValue 60000 */
  maxDelayMs?: number
  /** Random spread, as a fraction of the delay (0 = none, 0.5 = ±50%). @defaultValue 0.2 */
  jitter?: number
  /** Source of randomness in [0, 1). @defaultValue Math.random */
  random?: () => number
}

function positive(option: string, value: number, allowZero = true): void {
  if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new DetourConfigError(option, `must be a ${allowZero ? 'non-negative' : 'positive'} number, got ${String(value)}`)
  }
}

/** The defaults of {@link exponentialBackoff} (also what a command line shows as its flags' defaults). */
export const EXPONENTIAL_BACKOFF_DEFAULTS = { initialDelayMs: 1000, multiplier: 2, maxDelayMs: 60_000, jitter: 0.2 } as const

/** Exponential backoff with jitter (the default): `initial * multiplier^(n-1)`, capped, then spread. */
export function exponentialBackoff(options: ExponentialBackoffOptions = {}): BackoffFn {
  const initial = options.initialDelayMs ?? EXPONENTIAL_BACKOFF_DEFAULTS.initialDelayMs
  const multiplier = options.multiplier ?? EXPONENTIAL_BACKOFF_DEFAULTS.multiplier
  const max = options.maxDelayMs ?? EXPONENTIAL_BACKOFF_DEFAULTS.maxDelayMs
  const jitter = options.jitter ?? EXPONENTIAL_BACKOFF_DEFAULTS.jitter
  const random = options.random ?? Math.random
  positive('backoff.initialDelayMs', initial)
  positive('backoff.maxDelayMs', max)
  if (!(multiplier >= 1)) throw new DetourConfigError('backoff.multiplier', `must be >= 1, got ${multiplier}`)
  if (!(jitter >= 0 && jitter <= 1)) throw new DetourConfigError('backoff.jitter', `must be within [0, 1], got ${jitter}`)
  return (failedAttempts) => {
    // initial = 0 stays 0 (0 * Infinity would be NaN once multiplier^n overflows).
    const base = initial === 0 ? 0 : Math.min(max, initial * multiplier ** Math.max(0, failedAttempts - 1))
    const spread = base * jitter * (2 * random() - 1)
    return Math.max(0, Math.round(Math.min(max, base + spread)))
  }
}

/** The same delay every time. */
export function constantBackoff(delayMs: number): BackoffFn {
  positive('backoff.delayMs', delayMs)
  return () => delayMs
}

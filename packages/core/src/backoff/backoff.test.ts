import { describe, expect, it } from 'vitest'
import { DetourConfigError } from '../errors/index.js'
import { constantBackoff, exponentialBackoff, type ExponentialBackoffOptions } from './backoff.js'

function configError(fn: () => unknown): DetourConfigError {
  let caught: unknown
  try {
    fn()
  } catch (error) {
    caught = error
  }
  expect(caught).toBeInstanceOf(DetourConfigError)
  return caught as DetourConfigError
}

describe('exponentialBackoff', () => {
  it('grows by the multiplier from the initial delay', () => {
    const backoff = exponentialBackoff({ initialDelayMs: 100, multiplier: 3, maxDelayMs: 1_000_000, jitter: 0 })
    expect([1, 2, 3, 4, 5].map(backoff)).toEqual([100, 300, 900, 2700, 8100])
  })

  it('uses defaults 1000 ms × 2, capped at 60 s', () => {
    const backoff = exponentialBackoff({ jitter: 0 })
    expect([1, 2, 3, 4, 5, 6, 7, 8, 100].map(backoff)).toEqual([1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000])
  })

  it('treats 0 or negative attempts like the first', () => {
    const backoff = exponentialBackoff({ initialDelayMs: 50, jitter: 0 })
    expect(backoff(0)).toBe(50)
    expect(backoff(-3)).toBe(50)
  })

  it('caps at maxDelayMs, also for huge attempt counts', () => {
    const backoff = exponentialBackoff({ initialDelayMs: 10, multiplier: 10, maxDelayMs: 5000, jitter: 0 })
    expect([1, 2, 3, 4, 5, 2000].map(backoff)).toEqual([10, 100, 1000, 5000, 5000, 5000])
  })

  it('stays 0 with initialDelayMs 0, even when multiplier^n overflows', () => {
    const backoff = exponentialBackoff({ initialDelayMs: 0, jitter: 0.5, random: () => 0.999 })
    expect([1, 10, 1100, 100_000].map(backoff)).toEqual([0, 0, 0, 0])
  })

  it('multiplier 1 is a constant delay', () => {
    const backoff = exponentialBackoff({ initialDelayMs: 250, multiplier: 1, jitter: 0 })
    expect([1, 2, 50].map(backoff)).toEqual([250, 250, 250])
  })

  it('spreads by ±jitter with the injected random source', () => {
    const at = (random: number, options: ExponentialBackoffOptions = {}) =>
      exponentialBackoff({ initialDelayMs: 1000, maxDelayMs: 100_000, jitter: 0.2, random: () => random, ...options })
    expect(at(0)(1)).toBe(800) // base * (1 - j)
    expect(at(0.5)(1)).toBe(1000)
    expect(at(0.999)(1)).toBe(1200) // ≈ base * (1 + j): 1000 + 1000*0.2*0.998 = 1199.6 → 1200
    expect(at(0)(3)).toBe(3200)
    expect(at(0.999)(3)).toBe(4798) // 4000 + 4000*0.2*0.998 = 4798.4
    expect(at(0, { jitter: 1 })(1)).toBe(0)
    expect(at(0.75, { jitter: 0.5 })(2)).toBe(2500)
  })

  it('keeps jittered delays within [base(1-j), base(1+j)] and never above the cap', () => {
    let seed = 7
    const random = (): number => {
      seed = (seed * 16807) % 2147483647
      return (seed - 1) / 2147483646
    }
    const backoff = exponentialBackoff({ initialDelayMs: 100, multiplier: 2, maxDelayMs: 3000, jitter: 0.3, random })
    for (let attempt = 1; attempt <= 12; attempt++) {
      const base = Math.min(3000, 100 * 2 ** (attempt - 1))
      for (let i = 0; i < 200; i++) {
        const delay = backoff(attempt)
        expect(Number.isInteger(delay)).toBe(true)
        expect(delay).toBeGreaterThanOrEqual(Math.floor(base * 0.7))
        expect(delay).toBeLessThanOrEqual(Math.min(3000, Math.ceil(base * 1.3)))
      }
    }
  })

  it('has no spread with jitter 0, whatever random returns', () => {
    expect(exponentialBackoff({ initialDelayMs: 100, jitter: 0, random: () => 0 })(2)).toBe(200)
    expect(exponentialBackoff({ initialDelayMs: 100, jitter: 0, random: () => 0.999 })(2)).toBe(200)
  })

  it.each<[ExponentialBackoffOptions, string, string]>([
    [{ initialDelayMs: -1 }, 'backoff.initialDelayMs', 'must be a non-negative number, got -1'],
    [{ initialDelayMs: Number.NaN }, 'backoff.initialDelayMs', 'must be a non-negative number, got NaN'],
    [{ initialDelayMs: Number.POSITIVE_INFINITY }, 'backoff.initialDelayMs', 'must be a non-negative number, got Infinity'],
    [{ maxDelayMs: -5 }, 'backoff.maxDelayMs', 'must be a non-negative number, got -5'],
    [{ multiplier: 0.5 }, 'backoff.multiplier', 'must be >= 1, got 0.5'],
    [{ multiplier: Number.NaN }, 'backoff.multiplier', 'must be >= 1, got NaN'],
    [{ jitter: -0.1 }, 'backoff.jitter', 'must be within [0, 1], got -0.1'],
    [{ jitter: 1.5 }, 'backoff.jitter', 'must be within [0, 1], got 1.5'],
    [{ jitter: Number.NaN }, 'backoff.jitter', 'must be within [0, 1], got NaN'],
  ])('rejects %j', (options, option, message) => {
    const error = configError(() => exponentialBackoff(options))
    expect(error.option).toBe(option)
    expect(error.code).toBe('DETOUR_INVALID_OPTION')
    expect(error.message).toBe(`Invalid option "${option}": ${message}`)
  })
})

describe('constantBackoff', () => {
  it('returns the same delay every time', () => {
    const backoff = constantBackoff(750)
    expect([1, 2, 100].map(backoff)).toEqual([750, 750, 750])
    expect(constantBackoff(0)(3)).toBe(0)
  })

  it.each([-1, Number.NaN, Number.POSITIVE_INFINITY])('rejects %s', (delay) => {
    const error = configError(() => constantBackoff(delay))
    expect(error.option).toBe('backoff.delayMs')
    expect(error.message).toBe(`Invalid option "backoff.delayMs": must be a non-negative number, got ${String(delay)}`)
  })
})

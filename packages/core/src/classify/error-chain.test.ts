import { KafkaJSAggregateError, KafkaJSError, KafkaJSNumberOfRetriesExceeded, KafkaJSProtocolError } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { isFencedError, someInChain } from './error-chain.js'

/** A broker error as kafkajs raises it (what `createErrorFromCode` builds, wrapped in KafkaJSProtocolError). */
function protocolError(type: string, code: number): KafkaJSProtocolError {
  return new KafkaJSProtocolError(Object.assign(new Error(`broker says ${type}`), { type, code, retriable: false }))
}

/** `error` wrapped `levels` times, alternating kafkajs' three wrapping styles. */
function wrapped(error: unknown, levels: number): unknown {
  let current = error
  for (let i = 0; i < levels; i++) {
    current = [{ cause: current }, { originalError: current }, { errors: [new Error('other broker'), current] }][i % 3]
  }
  return current
}

describe('someInChain', () => {
  const isTarget = (e: { type?: unknown }): boolean => e.type === 'TARGET'

  it('matches the error itself and visits the chain in order: the error, cause, originalError, errors', () => {
    const seen: unknown[] = []
    const inner = [{ type: 'c' }, { type: 'o' }, { type: 'e1' }, { type: 'e2' }]
    const top = { type: 'top', cause: inner[0], originalError: inner[1], errors: [inner[2], inner[3]] }
    expect(someInChain(top, (e) => (seen.push(e.type), false))).toBe(false)
    expect(seen).toEqual(['top', 'c', 'o', 'e1', 'e2'])
  })

  it('finds a match up to five wrappers deep and stops looking after that', () => {
    const target = { type: 'TARGET' }
    expect(someInChain(target, isTarget)).toBe(true)
    for (let levels = 1; levels <= 5; levels++) expect(someInChain(wrapped(target, levels), isTarget), `${levels} levels`).toBe(true)
    expect(someInChain(wrapped(target, 6), isTarget)).toBe(false)
  })

  it('terminates on cycles', () => {
    const a: { type: string; cause?: unknown; errors?: unknown[] } = { type: 'a' }
    a.cause = a
    a.errors = [a, a]
    expect(someInChain(a, isTarget)).toBe(false)
  })

  it('ignores non-objects and non-array errors fields', () => {
    for (const value of [null, undefined, 'TARGET', 42, true]) expect(someInChain(value, () => true)).toBe(false)
    expect(someInChain({ errors: { 0: { type: 'TARGET' }, length: 1 } }, isTarget)).toBe(false)
    expect(someInChain({ cause: 'TARGET', originalError: 7 }, isTarget)).toBe(false)
  })
})

describe('isFencedError', () => {
  it.each(['INVALID_PRODUCER_EPOCH', 'PRODUCER_FENCED'])('is true for a kafkajs %s', (type) => {
    expect(isFencedError(protocolError(type, type === 'PRODUCER_FENCED' ? 90 : 47))).toBe(true)
    expect(isFencedError({ type })).toBe(true)
  })

  it('looks through kafkajs wrappers (retries exceeded, aggregated, cause)', () => {
    const fenced = protocolError('INVALID_PRODUCER_EPOCH', 47)
    expect(isFencedError(new KafkaJSNumberOfRetriesExceeded(fenced, { retryCount: 5, retryTime: 100 }))).toBe(true)
    expect(isFencedError(new KafkaJSAggregateError('send failed', [new Error('x'), fenced]))).toBe(true)
    expect(isFencedError(Object.assign(new KafkaJSError('wrapped'), { cause: fenced }))).toBe(true)
    expect(isFencedError({ originalError: fenced })).toBe(true)
  })

  it('is false for other errors, names and codes alone', () => {
    for (const error of [
      protocolError('INVALID_TXN_STATE', 48),
      protocolError('REBALANCE_IN_PROGRESS', 27),
      new Error('PRODUCER_FENCED'),
      Object.assign(new Error('x'), { name: 'PRODUCER_FENCED' }),
      { code: 47 },
      { type: 'producer_fenced' },
      null,
      'INVALID_PRODUCER_EPOCH',
    ]) {
      expect(isFencedError(error)).toBe(false)
    }
  })
})

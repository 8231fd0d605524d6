import { describe, expect, it } from 'vitest'
import {
  DeserializationError,
  DetourConfigError,
  DetourError,
  DetourFencedError,
  DetourHandOffError,
  DetourStoppingError,
  DetourTimeoutError,
  DetourTopicError,
  ErrorCodes,
  MalformedRecordError,
  UnprocessableMessageError,
  isDeserializationError,
  isDetourError,
  isProgrammingError,
  isUnprocessableError,
} from './detour-error.js'

describe('ErrorCodes', () => {
  it('are stable DETOUR_* strings', () => {
    expect(ErrorCodes).toEqual({
      INVALID_OPTION: 'DETOUR_INVALID_OPTION',
      TOPIC_MISMATCH: 'DETOUR_TOPIC_MISMATCH',
      HANDOFF_FAILED: 'DETOUR_HANDOFF_FAILED',
      UNPROCESSABLE: 'DETOUR_UNPROCESSABLE',
      DESERIALIZATION: 'DETOUR_DESERIALIZATION',
      MALFORMED_RECORD: 'DETOUR_MALFORMED_RECORD',
      NOT_RUNNING: 'DETOUR_NOT_RUNNING',
      TIMEOUT: 'DETOUR_TIMEOUT',
      FENCED: 'DETOUR_FENCED',
      STOPPING: 'DETOUR_STOPPING',
    })
  })
})

describe('Detour error classes', () => {
  const cause = new Error('socket closed')
  const cases: [DetourError, string, string, boolean, unknown][] = [
    [new DetourError('base', ErrorCodes.NOT_RUNNING), 'DetourError', 'DETOUR_NOT_RUNNING', false, undefined],
    [new DetourError('base', ErrorCodes.NOT_RUNNING, { cause, retriable: true }), 'DetourError', 'DETOUR_NOT_RUNNING', true, cause],
    [new DetourConfigError('backoff.jitter', 'must be within [0, 1]'), 'DetourConfigError', 'DETOUR_INVALID_OPTION', false, undefined],
    [new DetourTopicError('orders-g-retry', 'mismatch', { cause }), 'DetourTopicError', 'DETOUR_TOPIC_MISMATCH', false, cause],
    [new DetourHandOffError('orders-g-retry', 'send failed', cause), 'DetourHandOffError', 'DETOUR_HANDOFF_FAILED', true, cause],
    [new UnprocessableMessageError('bad order', { cause }), 'UnprocessableMessageError', 'DETOUR_UNPROCESSABLE', false, cause],
    [new DeserializationError('bad json'), 'DeserializationError', 'DETOUR_DESERIALIZATION', false, undefined],
    [new MalformedRecordError('no id'), 'MalformedRecordError', 'DETOUR_MALFORMED_RECORD', false, undefined],
    [new DetourTimeoutError('rebuild took too long'), 'DetourTimeoutError', 'DETOUR_TIMEOUT', true, undefined],
    // Fenced and stopping: the message goes back to kafkajs and is handled again, so both are retriable.
    [new DetourFencedError('orders', 3, 'fenced', { cause }), 'DetourFencedError', 'DETOUR_FENCED', true, cause],
    [new DetourFencedError('orders', 3, 'fenced'), 'DetourFencedError', 'DETOUR_FENCED', true, undefined],
    [new DetourStoppingError('stopping'), 'DetourStoppingError', 'DETOUR_STOPPING', true, undefined],
  ]

  it.each(cases)('%s sets name, code, retriable and cause', (error, name, code, retriable, expectedCause) => {
    expect(error.name).toBe(name)
    expect(error.code).toBe(code)
    expect(error.retriable).toBe(retriable)
    expect(error.cause).toBe(expectedCause)
    expect(error).toBeInstanceOf(DetourError)
    expect(error).toBeInstanceOf(Error)
    expect(isDetourError(error)).toBe(true)
    expect(typeof error.stack).toBe('string')
    expect(String(error)).toBe(`${name}: ${error.message}`)
  })

  it('keeps subclass prototypes (instanceof chains)', () => {
    const config = new DetourConfigError('x', 'y')
    expect(config).toBeInstanceOf(DetourConfigError)
    expect(config).not.toBeInstanceOf(DetourTopicError)
    expect(Object.getPrototypeOf(config)).toBe(DetourConfigError.prototype)
    expect(new MalformedRecordError('m')).not.toBeInstanceOf(UnprocessableMessageError)
    expect(new DetourHandOffError('t', 'm', null)).toBeInstanceOf(DetourError)
  })

  it('formats config errors with the option and keeps the option and topic fields', () => {
    const config = new DetourConfigError('maxPendingIds', 'must be a positive integer')
    expect(config.message).toBe('Invalid option "maxPendingIds": must be a positive integer')
    expect(config.option).toBe('maxPendingIds')
    expect(new DetourTopicError('orders-x', 'm').topic).toBe('orders-x')
    expect(new DetourHandOffError('orders-y', 'm', null).topic).toBe('orders-y')
    const fenced = new DetourFencedError('orders', 7, 'another owner')
    expect([fenced.topic, fenced.partition, fenced.message]).toEqual(['orders', 7, 'another owner'])
    expect(new DetourStoppingError('bye')).not.toBeInstanceOf(DetourFencedError)
  })
})

describe('isDetourError', () => {
  it('recognises the brand from another copy of the package', () => {
    const copy = Object.assign(new Error('from another copy'), { [Symbol.for('detour.error')]: true, code: 'DETOUR_TIMEOUT' })
    expect(isDetourError(copy)).toBe(true)
    expect(isDetourError({ [Symbol.for('detour.error')]: true })).toBe(true)
  })

  it('rejects everything else', () => {
    for (const value of [
      new Error('plain'),
      Object.assign(new Error('x'), { code: 'DETOUR_TIMEOUT', name: 'DetourError' }),
      { [Symbol('detour.error')]: true },
      { [Symbol.for('detour.error')]: 'true' },
      null,
      undefined,
      'DetourError',
      42,
    ]) {
      expect(isDetourError(value)).toBe(false)
    }
  })
})

describe('isUnprocessableError / isDeserializationError', () => {
  function named(name: string): Error {
    const error = new Error('from another copy')
    error.name = name
    return error
  }

  it('match by class and by name', () => {
    expect(isUnprocessableError(new UnprocessableMessageError('x'))).toBe(true)
    expect(isUnprocessableError(named('UnprocessableMessageError'))).toBe(true)
    expect(isDeserializationError(new DeserializationError('x'))).toBe(true)
    expect(isDeserializationError(named('DeserializationError'))).toBe(true)
  })

  it('do not match other errors or non-errors', () => {
    expect(isUnprocessableError(new DeserializationError('x'))).toBe(false)
    expect(isDeserializationError(new UnprocessableMessageError('x'))).toBe(false)
    expect(isUnprocessableError({ name: 'UnprocessableMessageError' })).toBe(false)
    expect(isDeserializationError(new SyntaxError('x'))).toBe(false)
    expect(isUnprocessableError(undefined)).toBe(false)
  })
})

describe('isProgrammingError', () => {
  it('is true for TypeError, RangeError, ReferenceError and SyntaxError only', () => {
    expect(isProgrammingError(new TypeError('x'))).toBe(true)
    expect(isProgrammingError(new RangeError('x'))).toBe(true)
    expect(isProgrammingError(new ReferenceError('x'))).toBe(true)
    expect(isProgrammingError(new SyntaxError('x'))).toBe(true)
    expect(isProgrammingError(new Error('x'))).toBe(false)
    expect(isProgrammingError(new UnprocessableMessageError('x'))).toBe(false)
    expect(isProgrammingError('TypeError')).toBe(false)
  })
})

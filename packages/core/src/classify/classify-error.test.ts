import { describe, expect, it } from 'vitest'
import { DeserializationError, DetourHandOffError, MalformedRecordError, UnprocessableMessageError } from '../errors/index.js'
import { classifyError, type ErrorClassifier } from './classify-error.js'

function named(name: string): Error {
  const error = new Error('from another copy')
  error.name = name
  return error
}

describe('classifyError default rules', () => {
  it.each<[string, unknown, string]>([
    ['UnprocessableMessageError', new UnprocessableMessageError('x'), 'unprocessable'],
    ['UnprocessableMessageError by name', named('UnprocessableMessageError'), 'unprocessable'],
    ['DeserializationError', new DeserializationError('x'), 'deserialization'],
    ['DeserializationError by name', named('DeserializationError'), 'deserialization'],
    ['SyntaxError (JSON.parse)', (() => { try { JSON.parse('{') } catch (e) { return e } })(), 'deserialization'],
    ['TypeError', new TypeError('x is undefined'), 'unprocessable'],
    ['RangeError', new RangeError('x'), 'unprocessable'],
    ['ReferenceError', new ReferenceError('x'), 'unprocessable'],
    ['plain Error', new Error('timeout'), 'transient'],
    ['hand-off error', new DetourHandOffError('t', 'm', null), 'transient'],
    ['malformed record', new MalformedRecordError('m'), 'transient'],
    ['string', 'oops', 'transient'],
    ['undefined', undefined, 'transient'],
    ['null', null, 'transient'],
  ])('%s → %s', (_label, error, kind) => {
    expect(classifyError(error)).toBe(kind)
  })
})

describe('classifyError with a user classifier', () => {
  it('takes precedence over the default rules', () => {
    const classifier: ErrorClassifier = () => 'transient'
    expect(classifyError(new UnprocessableMessageError('x'), classifier)).toBe('transient')
    expect(classifyError(new TypeError('x'), classifier)).toBe('transient')
    expect(classifyError(new Error('x'), () => 'unprocessable')).toBe('unprocessable')
    expect(classifyError(new Error('x'), () => 'deserialization')).toBe('deserialization')
  })

  it('falls through to the default rules on undefined', () => {
    const seen: unknown[] = []
    const classifier: ErrorClassifier = (error) => {
      seen.push(error)
      return error instanceof Error && error.message === 'fatal' ? 'unprocessable' : undefined
    }
    const typeError = new TypeError('x')
    expect(classifyError(new Error('fatal'), classifier)).toBe('unprocessable')
    expect(classifyError(new Error('flaky'), classifier)).toBe('transient')
    expect(classifyError(typeError, classifier)).toBe('unprocessable')
    expect(classifyError(new DeserializationError('x'), classifier)).toBe('deserialization')
    expect(seen).toHaveLength(4)
    expect(seen[2]).toBe(typeError)
  })
})

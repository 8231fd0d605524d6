import { KafkaJSAggregateError, KafkaJSError, KafkaJSNumberOfRetriesExceeded, KafkaJSProtocolError } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { isRecordTooLargeError } from './record-too-large.js'

function protocolError(type: string, code: number): KafkaJSProtocolError {
  return new KafkaJSProtocolError(Object.assign(new Error(`broker says ${type}`), { type, code, retriable: false }))
}

describe('isRecordTooLargeError', () => {
  it('is true for MESSAGE_TOO_LARGE and RECORD_LIST_TOO_LARGE from kafkajs', () => {
    expect(isRecordTooLargeError(protocolError('MESSAGE_TOO_LARGE', 10))).toBe(true)
    expect(isRecordTooLargeError(protocolError('RECORD_LIST_TOO_LARGE', 18))).toBe(true)
    expect(isRecordTooLargeError({ type: 'MESSAGE_TOO_LARGE' })).toBe(true)
  })

  it('matches codes 10 and 18 only on broker errors (with a type)', () => {
    expect(isRecordTooLargeError({ code: 10, type: 'SOME_NEWER_NAME' })).toBe(true)
    expect(isRecordTooLargeError({ code: 18, type: '' })).toBe(true)
    expect(isRecordTooLargeError({ code: 10 })).toBe(false)
    expect(isRecordTooLargeError({ code: '10', type: 'X' })).toBe(false)
  })

  it('looks through kafkajs wrappers', () => {
    const tooLarge = protocolError('MESSAGE_TOO_LARGE', 10)
    expect(isRecordTooLargeError(new KafkaJSNumberOfRetriesExceeded(tooLarge, { retryCount: 0, retryTime: 0 }))).toBe(true)
    expect(isRecordTooLargeError(new KafkaJSAggregateError('send', [tooLarge]))).toBe(true)
    expect(isRecordTooLargeError(Object.assign(new KafkaJSError('wrapped'), { cause: tooLarge }))).toBe(true)
    expect(isRecordTooLargeError({ originalError: { errors: [tooLarge] } })).toBe(true)
  })

  it('is false for retriable corruption and other errors', () => {
    for (const error of [
      protocolError('CORRUPT_MESSAGE', 2),
      protocolError('INVALID_RECORD', 87),
      protocolError('REQUEST_TIMED_OUT', 7),
      new Error('MESSAGE_TOO_LARGE'),
      Object.assign(new Error('x'), { name: 'MESSAGE_TOO_LARGE' }),
      null,
      'MESSAGE_TOO_LARGE',
    ]) {
      expect(isRecordTooLargeError(error)).toBe(false)
    }
  })
})

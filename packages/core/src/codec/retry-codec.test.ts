import type { IHeaders } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { MalformedRecordError, UnprocessableMessageError } from '../errors/index.js'
import { HeaderLimits } from '../headers/header-names.js'
import { buildRetryRecord, decodeRetryRecord, describeError, type RetryRecordInput } from './retry-codec.js'

function expectMalformed(fn: () => unknown): MalformedRecordError {
  let caught: unknown
  try {
    fn()
  } catch (error) {
    caught = error
  }
  expect(caught).toBeInstanceOf(MalformedRecordError)
  expect((caught as MalformedRecordError).code).toBe('DETOUR_MALFORMED_RECORD')
  return caught as MalformedRecordError
}

const NOW = new Date('2024-05-01T12:34:56.789Z')
const value = Buffer.from([0x00, 0x01, 0xff, 0xfe, 0x7b, 0x7d]) // not valid UTF-8: must not be re-encoded
const key = Buffer.from([0xff, 0x7c, 0x00])
const traceparent = Buffer.from('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')

function input(overrides: Partial<RetryRecordInput> = {}): RetryRecordInput {
  return {
    source: { topic: 'orders', partition: 2, offset: '9007199254740993' },
    message: {
      key,
      value,
      timestamp: '1700000000000',
      headers: {
        traceparent,
        'x-multi': ['a', Buffer.from('b')],
        'detour-id': 'stale/0/0',
        'detour-error-message': 'stale',
        'detour-attempts': '9',
      },
    },
    id: 'orders/2/9007199254740993',
    groupKey: key,
    reason: 'failure',
    consumerGroup: 'billing',
    error: new Error('boom'),
    now: NOW,
    ...overrides,
  }
}

describe('buildRetryRecord', () => {
  it('forwards key, value bytes and user headers unchanged and adds Detour headers', () => {
    const record = buildRetryRecord(input())
    expect(record.partition).toBe(2)
    expect(record.key).toBe(key)
    expect(record.value).toBe(value)
    expect(Buffer.compare(record.value as Buffer, Buffer.from([0x00, 0x01, 0xff, 0xfe, 0x7b, 0x7d]))).toBe(0)
    expect(record.headers).toEqual({
      traceparent,
      'x-multi': ['a', Buffer.from('b')],
      'detour-id': 'orders/2/9007199254740993',
      'detour-reason': 'failure',
      'detour-original-topic': 'orders',
      'detour-original-partition': '2',
      'detour-original-offset': '9007199254740993',
      'detour-original-timestamp': '1700000000000',
      'detour-consumer-group': 'billing',
      'detour-redirected-at': '2024-05-01T12:34:56.789Z',
      'detour-group-key': key,
      'detour-error-name': 'Error',
      'detour-error-message': 'boom',
    })
    expect(record.headers!.traceparent).toBe(traceparent)
  })

  it('drops stale incoming detour-* headers', () => {
    const record = buildRetryRecord(input({ error: undefined, reason: 'ordering' }))
    expect(record.headers!['detour-id']).toBe('orders/2/9007199254740993')
    expect(record.headers).not.toHaveProperty('detour-error-message')
    expect(record.headers).not.toHaveProperty('detour-error-name')
    expect(record.headers).not.toHaveProperty('detour-attempts')
    expect(record.headers!['detour-reason']).toBe('ordering')
  })

  it('omits the group key header for keyless messages and keeps a null key and value', () => {
    const record = buildRetryRecord(
      input({ groupKey: null, message: { key: null, value: null, timestamp: '1', headers: undefined }, error: undefined }),
    )
    expect(record.key).toBeNull()
    expect(record.value).toBeNull()
    expect(record.headers).not.toHaveProperty('detour-group-key')
    expect(Object.keys(record.headers!).every((name) => name.startsWith('detour-'))).toBe(true)
  })

  it('describes non-Error throwables', () => {
    const record = buildRetryRecord(input({ error: 'just a string' }))
    expect(record.headers!['detour-error-name']).toBe('string')
    expect(record.headers!['detour-error-message']).toBe('just a string')
  })

  it('truncates long error messages to HeaderLimits.errorMessageBytes', () => {
    const record = buildRetryRecord(input({ error: new Error('é'.repeat(5000)) }))
    const message = record.headers!['detour-error-message'] as string
    expect(Buffer.byteLength(message, 'utf8')).toBeLessThanOrEqual(HeaderLimits.errorMessageBytes)
    expect(Buffer.byteLength(message, 'utf8')).toBeGreaterThan(HeaderLimits.errorMessageBytes - 32)
    expect(message).toMatch(/^é+…\[truncated \d+ bytes\]$/)
    expect(message).not.toContain('\uFFFD')
  })
})

describe('decodeRetryRecord', () => {
  it('round-trips what buildRetryRecord writes', () => {
    const record = buildRetryRecord(input())
    expect(decodeRetryRecord({ headers: record.headers })).toEqual({
      id: 'orders/2/9007199254740993',
      groupKey: key,
      reason: 'failure',
      source: { topic: 'orders', partition: 2, offset: '9007199254740993' },
      sourceTimestamp: '1700000000000',
      consumerGroup: 'billing',
      redirectedAt: '2024-05-01T12:34:56.789Z',
      firstErrorMessage: 'boom',
    })
  })

  it('round-trips a keyless ordering record without error, with headers as received (Buffers)', () => {
    const record = buildRetryRecord(input({ groupKey: null, reason: 'ordering', error: undefined }))
    const received: IHeaders = {}
    for (const [name, v] of Object.entries(record.headers!)) received[name] = typeof v === 'string' ? Buffer.from(v) : v
    const envelope = decodeRetryRecord({ headers: received })
    expect(envelope.groupKey).toBeNull()
    expect(envelope.reason).toBe('ordering')
    expect(envelope.firstErrorMessage).toBeUndefined()
    expect(envelope.source).toEqual({ topic: 'orders', partition: 2, offset: '9007199254740993' })
  })

  it('falls back to the id for missing coordinates and to reason failure', () => {
    expect(decodeRetryRecord({ headers: { 'detour-id': 't.x/7/12', 'detour-consumer-group': 'g' } })).toEqual({
      id: 't.x/7/12',
      groupKey: null,
      reason: 'failure',
      source: { topic: 't.x', partition: 7, offset: '12' },
      sourceTimestamp: undefined,
      consumerGroup: 'g',
      redirectedAt: undefined,
      firstErrorMessage: undefined,
    })
  })

  const valid = (): IHeaders => ({
    'detour-id': 'orders/2/10',
    'detour-original-topic': 'orders',
    'detour-original-partition': '2',
    'detour-original-offset': '10',
    'detour-consumer-group': 'g',
    'detour-reason': 'failure',
  })

  it.each<[string, (h: IHeaders) => void, RegExp]>([
    ['missing id', (h) => delete h['detour-id'], /^Retry record without header detour-id$/],
    ['garbled id', (h) => (h['detour-id'] = 'not-an-id'), /^Malformed message id "not-an-id"$/],
    ['id with |', (h) => (h['detour-id'] = 'k|orders/2/10'), /^Malformed message id/],
    ['topic disagrees', (h) => (h['detour-original-topic'] = 'other'), /disagrees with its source headers \(other\/2\/10\)/],
    ['partition disagrees', (h) => (h['detour-original-partition'] = '3'), /disagrees with its source headers \(orders\/3\/10\)/],
    ['offset disagrees', (h) => (h['detour-original-offset'] = '11'), /disagrees with its source headers \(orders\/2\/11\)/],
    ['partition garbled', (h) => (h['detour-original-partition'] = 'two'), /has garbled source coordinates/],
    ['partition negative', (h) => (h['detour-original-partition'] = '-2'), /has garbled source coordinates/],
    ['offset garbled', (h) => (h['detour-original-offset'] = '1e1'), /has garbled source coordinates/],
    ['unknown reason', (h) => (h['detour-reason'] = 'because'), /^Retry record orders\/2\/10 has unknown detour-reason "because"$/],
    ['missing consumer group', (h) => delete h['detour-consumer-group'], /^Retry record orders\/2\/10 without header detour-consumer-group$/],
    ['empty consumer group', (h) => (h['detour-consumer-group'] = ''), /without header detour-consumer-group/],
  ])('rejects %s', (_label, mutate, message) => {
    const headers = valid()
    expect(decodeRetryRecord({ headers }).id).toBe('orders/2/10')
    mutate(headers)
    expect(expectMalformed(() => decodeRetryRecord({ headers })).message).toMatch(message)
  })

  it('rejects a record without headers', () => {
    expectMalformed(() => decodeRetryRecord({ headers: undefined }))
  })
})

describe('describeError', () => {
  it('reads name, message, stack and a string code', () => {
    const error = new UnprocessableMessageError('bad')
    const described = describeError(error)
    expect(described).toEqual({ name: 'UnprocessableMessageError', message: 'bad', stack: error.stack, code: 'DETOUR_UNPROCESSABLE' })
  })

  it('ignores non-string codes and describes non-errors by type', () => {
    expect(describeError(Object.assign(new Error('x'), { code: 42 })).code).toBeUndefined()
    expect(describeError(42)).toEqual({ name: 'number', message: '42', stack: undefined, code: undefined })
    expect(describeError(null)).toEqual({ name: 'object', message: 'null', stack: undefined, code: undefined })
  })
})

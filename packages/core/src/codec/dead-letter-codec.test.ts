import type { Message } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { DeserializationError } from '../errors/index.js'
import { HeaderLimits, type DeadLetterReason } from '../headers/header-names.js'
import { buildDeadLetterRecord, writeDeadLetter, type DeadLetterInput } from './dead-letter-codec.js'

const NOW = new Date('2024-05-01T12:34:56.789Z')
const FIRST = new Date('2024-05-01T12:00:00.000Z')
const key = Buffer.from('customer-1')
const value = Buffer.from([0xde, 0xad, 0xbe, 0xef])
const trace = Buffer.from('trace-1')

function input(overrides: Partial<DeadLetterInput> = {}): DeadLetterInput {
  return {
    reason: 'exhausted',
    message: { key, value, timestamp: '1700000000000', headers: { trace, 'x-tenant': 'acme', 'detour-attempts': '99', 'detour-id': 'stale/0/0' } },
    consumerGroup: 'billing',
    error: new Error('still failing'),
    component: 'retry-worker',
    now: NOW,
    ...overrides,
  }
}

function errorWithStack(stack: string): Error {
  const error = new Error('with stack')
  error.stack = stack
  return error
}

describe('buildDeadLetterRecord', () => {
  it('keeps key, value and user headers, adds the minimal Detour headers', () => {
    const error = errorWithStack('Error: still failing\n    at here')
    const record = buildDeadLetterRecord(input({ error }))
    expect(record.key).toBe(key)
    expect(record.value).toBe(value)
    expect(record.partition).toBeUndefined()
    expect(record.headers).toEqual({
      trace,
      'x-tenant': 'acme',
      'detour-reason': 'exhausted',
      'detour-error-name': 'Error',
      'detour-error-message': 'with stack',
      'detour-error-stack': 'Error: still failing\n    at here',
      'detour-consumer-group': 'billing',
      'detour-failed-at': '2024-05-01T12:34:56.789Z',
      'detour-component': 'retry-worker',
      'detour-original-timestamp': '1700000000000',
    })
    expect(record.headers!.trace).toBe(trace)
  })

  it.each<DeadLetterReason>(['unprocessable', 'deserialization', 'exhausted', 'malformed', 'record-too-large'])('writes reason %s', (reason) => {
    expect(buildDeadLetterRecord(input({ reason })).headers!['detour-reason']).toBe(reason)
  })

  it('writes source coordinates, id, group key, attempts, first error, record coordinates and group policy', () => {
    const groupKey = Buffer.from([0xff, 0x7c])
    const record = buildDeadLetterRecord(
      input({
        source: { topic: 'orders', partition: 3, offset: '9223372036854775807' },
        id: 'orders/3/9223372036854775807',
        groupKey,
        attempts: 5,
        firstErrorMessage: 'first failure',
        firstFailedAt: FIRST,
        record: { topic: 'orders-billing-retry', partition: 3, offset: '17' },
        groupPolicy: 'hold',
      }),
    )
    expect(record.headers).toMatchObject({
      'detour-id': 'orders/3/9223372036854775807',
      'detour-group-key': groupKey,
      'detour-original-topic': 'orders',
      'detour-original-partition': '3',
      'detour-original-offset': '9223372036854775807',
      'detour-attempts': '5',
      'detour-first-error-message': 'first failure',
      'detour-first-failed-at': '2024-05-01T12:00:00.000Z',
      'detour-record-topic': 'orders-billing-retry',
      'detour-record-partition': '3',
      'detour-record-offset': '17',
      'detour-group-policy': 'hold',
    })
  })

  it('writes attempts 0 and omits optional headers that are not given', () => {
    const headers = buildDeadLetterRecord(input({ attempts: 0 })).headers!
    expect(headers['detour-attempts']).toBe('0')
    for (const name of [
      'detour-id',
      'detour-group-key',
      'detour-original-topic',
      'detour-first-error-message',
      'detour-first-failed-at',
      'detour-record-topic',
      'detour-group-policy',
      'detour-error-code',
    ]) {
      expect(headers, name).not.toHaveProperty(name)
    }
  })

  it('replaces stale detour-* headers of the incoming record', () => {
    const headers = buildDeadLetterRecord(input()).headers!
    expect(headers).not.toHaveProperty('detour-attempts')
    expect(headers).not.toHaveProperty('detour-id')
  })

  it('writes the error code of Detour errors', () => {
    const record = buildDeadLetterRecord(input({ reason: 'deserialization', error: new DeserializationError('bad json') }))
    expect(record.headers).toMatchObject({
      'detour-error-name': 'DeserializationError',
      'detour-error-message': 'bad json',
      'detour-error-code': 'DETOUR_DESERIALIZATION',
    })
    const long = buildDeadLetterRecord(input({ error: Object.assign(new Error('x'), { code: 'C'.repeat(500) }) }))
    expect(long.headers!['detour-error-code']).toBe('C'.repeat(128))
  })

  it('truncates the stack to HeaderLimits.stackBytes without splitting multi-byte characters', () => {
    for (const unit of ['a', 'é', '€', '😀']) {
      const stack = `Error: deep\n${unit.repeat(HeaderLimits.stackBytes)}`
      const written = buildDeadLetterRecord(input({ error: errorWithStack(stack) })).headers!['detour-error-stack'] as string
      const bytes = Buffer.from(written, 'utf8')
      expect(bytes.length, unit).toBeLessThanOrEqual(HeaderLimits.stackBytes)
      expect(bytes.length, unit).toBeGreaterThan(HeaderLimits.stackBytes - 32)
      expect(bytes.toString('utf8'), unit).toBe(written) // valid UTF-8
      expect(written, unit).not.toContain('\uFFFD')
      expect(written.startsWith('Error: deep\n')).toBe(true)
      expect(written).toMatch(/…\[truncated \d+ bytes\]$/)
    }
  })

  it('keeps a stack at exactly the limit', () => {
    const stack = 's'.repeat(HeaderLimits.stackBytes)
    expect(buildDeadLetterRecord(input({ error: errorWithStack(stack) })).headers!['detour-error-stack']).toBe(stack)
  })

  it('truncates long error and first-error messages to HeaderLimits.errorMessageBytes', () => {
    const headers = buildDeadLetterRecord(input({ error: new Error('m'.repeat(3000)), firstErrorMessage: 'f'.repeat(3000) })).headers!
    for (const name of ['detour-error-message', 'detour-first-error-message']) {
      const text = headers[name] as string
      expect(Buffer.byteLength(text)).toBeLessThanOrEqual(HeaderLimits.errorMessageBytes)
      expect(text).toMatch(/…\[truncated \d+ bytes\]$/)
    }
  })

  it('withoutValue drops the value and the user headers but keeps the key and Detour headers', () => {
    const record = buildDeadLetterRecord(input({ reason: 'record-too-large', withoutValue: true, id: 'orders/0/1' }))
    expect(record.key).toBe(key)
    expect(record.value).toBeNull()
    expect(record.headers).not.toHaveProperty('trace')
    expect(record.headers).not.toHaveProperty('x-tenant')
    expect(record.headers).toMatchObject({ 'detour-reason': 'record-too-large', 'detour-id': 'orders/0/1' })
  })

  it('describes non-Error throwables, without a stack header', () => {
    const headers = buildDeadLetterRecord(input({ error: { toString: () => 'weird' } })).headers!
    expect(headers['detour-error-name']).toBe('object')
    expect(headers['detour-error-message']).toBe('weird')
    expect(headers).not.toHaveProperty('detour-error-stack')
  })

  it('handles keyless, valueless, headerless records', () => {
    const record = buildDeadLetterRecord(input({ component: 'main-app', message: { key: null, value: null, timestamp: '', headers: undefined } }))
    expect(record.key).toBeNull()
    expect(record.value).toBeNull()
    expect(record.headers).not.toHaveProperty('detour-original-timestamp')
    expect(record.headers!['detour-component']).toBe('main-app')
  })
})

describe('writeDeadLetter', () => {
  /** A send stand-in: records each message, then answers with the next scripted outcome (success when none is left). */
  function sender(...outcomes: unknown[]): { send: (message: Message) => Promise<void>; sent: Message[] } {
    const sent: Message[] = []
    return {
      sent,
      send: async (message) => {
        sent.push(message)
        const outcome = outcomes.shift()
        // eslint-disable-next-line @typescript-eslint/only-throw-error -- brokers' errors reach us as any shape, plain objects included
        if (outcome !== undefined) throw outcome
      },
    }
  }
  const tooLarge = Object.assign(new Error('The request included a message larger than the max message size the server will accept'), {
    name: 'KafkaJSProtocolError',
    type: 'MESSAGE_TOO_LARGE',
    code: 10,
  })
  const dead = input({ id: 'orders/3/17', source: { topic: 'orders', partition: 3, offset: '17' } })
  const full = buildDeadLetterRecord(dead)
  const lean = buildDeadLetterRecord({ ...dead, withoutValue: true })

  it('writes the full record once when the broker takes it', async () => {
    const { send, sent } = sender()
    await expect(writeDeadLetter(send, dead)).resolves.toEqual({ withoutValue: false })
    expect(sent).toEqual([full])
    expect(sent[0]!.value).toBe(value)
    expect(sent[0]!.headers!.trace).toBe(trace)
  })

  it.each<[string, unknown]>([
    ['MESSAGE_TOO_LARGE', tooLarge],
    ['RECORD_LIST_TOO_LARGE', { type: 'RECORD_LIST_TOO_LARGE', code: 18 }],
    ['a wrapped MESSAGE_TOO_LARGE (retries exceeded)', Object.assign(new Error('retries exceeded'), { name: 'KafkaJSNumberOfRetriesExceeded', cause: tooLarge })],
    ['an aggregated MESSAGE_TOO_LARGE', { name: 'KafkaJSAggregateError', errors: [new Error('other'), { originalError: tooLarge }] }],
  ])('on %s, writes it once more without value and user headers', async (_label, error) => {
    const { send, sent } = sender(error)
    await expect(writeDeadLetter(send, dead)).resolves.toEqual({ withoutValue: true })
    expect(sent).toEqual([full, lean])
    const second = sent[1]!
    expect(second.key).toBe(key)
    expect(second.value).toBeNull()
    expect(Object.keys(second.headers!).filter((name) => !name.startsWith('detour-'))).toEqual([])
    // The coordinates say where the original is.
    expect(second.headers).toMatchObject({
      'detour-id': 'orders/3/17',
      'detour-original-topic': 'orders',
      'detour-original-partition': '3',
      'detour-original-offset': '17',
      'detour-reason': 'exhausted',
    })
  })

  it('retries only once: a second failure, too large or not, propagates as it is', async () => {
    const again = { type: 'MESSAGE_TOO_LARGE' }
    const first = sender(tooLarge, again)
    await expect(writeDeadLetter(first.send, dead)).rejects.toBe(again)
    expect(first.sent).toEqual([full, lean])
    const down = new Error('broker down')
    const second = sender(tooLarge, down)
    await expect(writeDeadLetter(second.send, dead)).rejects.toBe(down)
    expect(second.sent).toHaveLength(2)
  })

  it.each<[string, unknown]>([
    ['a retriable broker error', { name: 'KafkaJSProtocolError', type: 'CORRUPT_MESSAGE', code: 2 }],
    ['a connection error', new Error('Connection closed')],
    ['a non-error throwable', 'boom'],
    ['a code 10 without a type', { code: 10 }],
  ])('propagates %s untouched, without a second write', async (_label, error) => {
    const { send, sent } = sender(error)
    await expect(writeDeadLetter(send, dead)).rejects.toBe(error)
    expect(sent).toEqual([full])
  })

  it('writes a withoutValue input once, as it is, and propagates its failure', async () => {
    const ok = sender()
    await expect(writeDeadLetter(ok.send, { ...dead, withoutValue: true })).resolves.toEqual({ withoutValue: true })
    expect(ok.sent).toEqual([lean])
    const refused = sender(tooLarge)
    await expect(writeDeadLetter(refused.send, { ...dead, withoutValue: true })).rejects.toBe(tooLarge)
    expect(refused.sent).toEqual([lean])
  })

  it('resolves only after the broker acknowledged the write', async () => {
    let acknowledge!: () => void
    const acknowledged = new Promise<void>((resolve) => (acknowledge = resolve))
    let settled = false
    const writing = writeDeadLetter(() => acknowledged, dead).then(() => (settled = true))
    await new Promise((resolve) => setTimeout(resolve, 5))
    expect(settled).toBe(false)
    acknowledge()
    await writing
    expect(settled).toBe(true)
  })
})

import { describe, expect, it } from 'vitest'
import { MalformedRecordError } from '../errors/index.js'
import { isValidOffset, isValidTopicName, messageId, parseMessageId } from './message-id.js'

function expectMalformed(id: string): MalformedRecordError {
  let caught: unknown
  try {
    parseMessageId(id)
  } catch (error) {
    caught = error
  }
  expect(caught, `parseMessageId(${JSON.stringify(id)}) should throw`).toBeInstanceOf(MalformedRecordError)
  const error = caught as MalformedRecordError
  expect(error.code).toBe('DETOUR_MALFORMED_RECORD')
  expect(error.name).toBe('MalformedRecordError')
  return error
}

describe('messageId', () => {
  it('formats <topic>/<partition>/<offset>', () => {
    expect(messageId({ topic: 'orders', partition: 3, offset: '42' })).toBe('orders/3/42')
    expect(messageId({ topic: 'orders', partition: 0, offset: '0' })).toBe('orders/0/0')
  })

  it.each([
    ['orders', 0, '0'],
    ['orders.v1', 12, '123456'],
    ['orders-eu_west.v2', 7, '9'],
    ['__consumer_offsets', 49, '1'],
    ['a', 999_999_999, '5'],
    ['-', 1, '2'],
    ['_', 1, '2'],
    ['x'.repeat(249), 0, '1'],
  ])('round-trips topic %s partition %d offset %s', (topic, partition, offset) => {
    const id = messageId({ topic, partition, offset })
    expect(id).toBe(`${topic}/${partition}/${offset}`)
    expect(parseMessageId(id)).toEqual({ topic, partition, offset })
  })

  it('keeps 19-digit offsets beyond 2^53 exactly (no Number round-trip)', () => {
    const offset = '9223372036854775807' // int64 max, far beyond what a JS number holds exactly
    expect(BigInt(offset) > BigInt(Number.MAX_SAFE_INTEGER)).toBe(true)
    const id = messageId({ topic: 'big', partition: 1, offset })
    expect(id).toBe('big/1/9223372036854775807')
    const parsed = parseMessageId(id)
    expect(parsed.offset).toBe(offset)
    expect(typeof parsed.offset).toBe('string')
    expect(parsed.partition).toBe(1)
    expect(messageId(parsed)).toBe(id)

    const justAbove = '9007199254740993' // 2^53 + 1
    expect(parseMessageId(`t/0/${justAbove}`).offset).toBe(justAbove)
  })

  it('returns the partition as a number', () => {
    const parsed = parseMessageId('t/17/5')
    expect(parsed.partition).toBe(17)
    expect(typeof parsed.partition).toBe('number')
  })
})

describe('parseMessageId rejects malformed ids', () => {
  it.each([
    ['empty string', ''],
    ['no slashes', 'orders'],
    ['one slash', 'orders/1'],
    ['empty topic', '/0/1'],
    ['only slashes', '//'],
    ['empty partition', 'orders//1'],
    ['empty offset', 'orders/0/'],
    ['non-numeric partition', 'orders/x/1'],
    ['negative partition', 'orders/-1/1'],
    ['fractional partition', 'orders/1.5/1'],
    ['hex partition', 'orders/0x1/1'],
    ['partition with spaces', 'orders/ 1/1'],
    ['10-digit partition', 'orders/1234567890/1'],
    ['non-numeric offset', 'orders/0/abc'],
    ['negative offset', 'orders/0/-1'],
    ['fractional offset', 'orders/0/1.0'],
    ['exponent offset', 'orders/0/1e3'],
    ['20-digit offset', 'orders/0/12345678901234567890'],
    ['offset with trailing newline', 'orders/0/1\n'],
    ['| in topic', 'orders|x/0/1'],
    ['| in offset', 'orders/0/1|2'],
    ['| before the id', 'key|orders/0/1'],
    ['space in topic', 'my orders/0/1'],
    ['unicode in topic', 'ordérs/0/1'],
    ['slash in topic', 'a/b/0/1'],
    ['topic "."', './0/1'],
    ['topic ".."', '../0/1'],
    ['topic longer than 249', `${'x'.repeat(250)}/0/1`],
  ])('%s', (_label, id) => {
    const error = expectMalformed(id)
    expect(error.message).toContain('Malformed message id')
  })

  it('truncates very long ids in the error message', () => {
    const id = `${'y'.repeat(5000)}/0/1`
    const error = expectMalformed(id)
    expect(error.message.length).toBeLessThan(300)
    expect(error.message).toContain('…')
  })
})

describe('isValidTopicName / isValidOffset', () => {
  it('accepts Kafka topic names', () => {
    for (const name of ['a', 'orders.v1', 'A-b_c.9', 'x'.repeat(249), '...']) expect(isValidTopicName(name)).toBe(true)
  })

  it('rejects names Kafka rejects', () => {
    for (const name of ['', '.', '..', 'x'.repeat(250), 'a b', 'a/b', 'a|b', 'a:b', 'é', 'a\u0000']) {
      expect(isValidTopicName(name), name).toBe(false)
    }
  })

  it('accepts 1..19 decimal digits only', () => {
    expect(isValidOffset('0')).toBe(true)
    expect(isValidOffset('9223372036854775807')).toBe(true)
    for (const offset of ['', '-1', '1.0', '1e3', ' 1', '12345678901234567890', 'abc']) {
      expect(isValidOffset(offset), offset).toBe(false)
    }
  })
})

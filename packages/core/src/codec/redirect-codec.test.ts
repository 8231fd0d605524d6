import { describe, expect, it } from 'vitest'
import { MalformedRecordError } from '../errors/index.js'
import { buildRedirectRecord, buildTombstone, decodeRedirectRecord, parseRedirectKey, redirectKey } from './redirect-codec.js'

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
const source = { topic: 'orders', partition: 4, offset: '9223372036854775807' }
const id = 'orders/4/9223372036854775807'

describe('redirectKey / parseRedirectKey', () => {
  it('lays out <group key>|<id>', () => {
    expect(redirectKey(Buffer.from('customer-1'), 'orders/0/5')).toEqual(Buffer.from('customer-1|orders/0/5'))
  })

  it('uses the id alone for keyless messages', () => {
    expect(redirectKey(null, 'orders/0/5')).toEqual(Buffer.from('orders/0/5'))
    expect(parseRedirectKey(Buffer.from('orders/0/5'))).toEqual({ groupKey: null, id: 'orders/0/5' })
  })

  it('round-trips text and binary group keys', () => {
    for (const groupKey of [Buffer.from('customer-1'), Buffer.from([0xff, 0x00, 0xfe]), Buffer.from('é☕'), Buffer.alloc(0)]) {
      const parsed = parseRedirectKey(redirectKey(groupKey, id))
      expect(parsed.id).toBe(id)
      expect(parsed.groupKey).toEqual(groupKey)
    }
  })

  it('splits on the last | so group keys may contain | bytes', () => {
    const groupKey = Buffer.from([0x7c, 0x01, 0x7c, 0x7c, 0xff, 0x7c])
    const key = redirectKey(groupKey, 'orders/0/5')
    expect(key).toEqual(Buffer.concat([groupKey, Buffer.from('|orders/0/5')]))
    const parsed = parseRedirectKey(key)
    expect(parsed).toEqual({ groupKey, id: 'orders/0/5' })
    expect(parseRedirectKey(Buffer.from('a|b|orders/0/5'))).toEqual({ groupKey: Buffer.from('a|b'), id: 'orders/0/5' })
  })

  it('rejects null, empty and malformed keys', () => {
    expect(expectMalformed(() => parseRedirectKey(null)).message).toBe('Redirect record without a key')
    expect(expectMalformed(() => parseRedirectKey(Buffer.alloc(0))).message).toBe('Redirect record without a key')
    expectMalformed(() => parseRedirectKey(Buffer.from('customer-1')))
    expectMalformed(() => parseRedirectKey(Buffer.from('customer-1|')))
    expectMalformed(() => parseRedirectKey(Buffer.from('k|orders/x/1')))
    expectMalformed(() => parseRedirectKey(Buffer.concat([Buffer.from('k|orders/0/'), Buffer.from([0xff])])))
  })
})

describe('buildRedirectRecord', () => {
  it('writes all Detour headers, to the source partition, with a non-null value', () => {
    const groupKey = Buffer.from([0x00, 0x7c, 0xff])
    const record = buildRedirectRecord({ source, id, groupKey, reason: 'ordering', consumerGroup: 'billing', now: NOW })
    expect(record.partition).toBe(4)
    expect(record.key).toEqual(Buffer.concat([groupKey, Buffer.from(`|${id}`)]))
    expect(record.value).toEqual(Buffer.from(id))
    expect(record.headers).toEqual({
      'detour-id': id,
      'detour-reason': 'ordering',
      'detour-original-topic': 'orders',
      'detour-original-partition': '4',
      'detour-original-offset': '9223372036854775807',
      'detour-consumer-group': 'billing',
      'detour-redirected-at': '2024-05-01T12:34:56.789Z',
      'detour-group-key': groupKey,
    })
  })

  it('omits the group key header for keyless messages', () => {
    const record = buildRedirectRecord({ source, id, groupKey: null, reason: 'failure', consumerGroup: 'g', now: NOW })
    expect(record.key).toEqual(Buffer.from(id))
    expect(record.headers).not.toHaveProperty('detour-group-key')
    expect(record.headers!['detour-reason']).toBe('failure')
    expect(record.value).not.toBeNull()
  })

  it('stamps the current time when none is given', () => {
    const before = Date.now()
    const record = buildRedirectRecord({ source, id, groupKey: null, reason: 'failure', consumerGroup: 'g' })
    const stamped = Date.parse(record.headers!['detour-redirected-at'] as string)
    expect(stamped).toBeGreaterThanOrEqual(before)
    expect(stamped).toBeLessThanOrEqual(Date.now())
  })
})

describe('buildTombstone', () => {
  it('has the same key and partition as the redirect record, a null value and the id header', () => {
    const groupKey = Buffer.from('customer-1')
    const redirect = buildRedirectRecord({ source, id, groupKey, reason: 'failure', consumerGroup: 'g', now: NOW })
    const tombstone = buildTombstone({ partition: 4, id, groupKey })
    expect(tombstone.key).toEqual(redirect.key)
    expect(tombstone.partition).toBe(redirect.partition)
    expect(tombstone.value).toBeNull()
    expect(tombstone.headers).toEqual({ 'detour-id': id, 'detour-group-key': groupKey })
  })

  it('keyless: key is the id, no group key header', () => {
    const tombstone = buildTombstone({ partition: 0, id: 'orders/0/1', groupKey: null })
    expect(tombstone).toEqual({ partition: 0, key: Buffer.from('orders/0/1'), value: null, headers: { 'detour-id': 'orders/0/1' } })
  })
})

describe('decodeRedirectRecord', () => {
  it('reads a redirect record as pending', () => {
    const groupKey = Buffer.from([0x7c, 0xff])
    const record = buildRedirectRecord({ source, id, groupKey, reason: 'failure', consumerGroup: 'g', now: NOW })
    const entry = decodeRedirectRecord({ key: record.key as Buffer, value: record.value as Buffer, headers: record.headers })
    expect(entry).toEqual({ kind: 'pending', groupKey, id })
  })

  it('reads a tombstone as released', () => {
    const tombstone = buildTombstone({ partition: 4, id, groupKey: null })
    expect(decodeRedirectRecord({ key: tombstone.key as Buffer, value: null, headers: tombstone.headers })).toEqual({
      kind: 'released',
      groupKey: null,
      id,
    })
  })

  it('trusts the key when the id header is absent', () => {
    expect(decodeRedirectRecord({ key: Buffer.from('k|orders/0/1'), value: Buffer.from('x'), headers: {} })).toEqual({
      kind: 'pending',
      groupKey: Buffer.from('k'),
      id: 'orders/0/1',
    })
    expect(decodeRedirectRecord({ key: Buffer.from('orders/0/1'), value: null, headers: undefined }).kind).toBe('released')
  })

  it('accepts a Buffer id header that agrees with the key', () => {
    const entry = decodeRedirectRecord({ key: Buffer.from('k|orders/0/1'), value: null, headers: { 'detour-id': Buffer.from('orders/0/1') } })
    expect(entry).toEqual({ kind: 'released', groupKey: Buffer.from('k'), id: 'orders/0/1' })
  })

  it('rejects an id header that disagrees with the key', () => {
    const error = expectMalformed(() =>
      decodeRedirectRecord({ key: Buffer.from('k|orders/0/1'), value: Buffer.from('x'), headers: { 'detour-id': 'orders/0/2' } }),
    )
    expect(error.message).toBe('Redirect record key names id "orders/0/1" but header detour-id says "orders/0/2"')
  })

  it('rejects a null key', () => {
    expectMalformed(() => decodeRedirectRecord({ key: null, value: Buffer.from('x'), headers: { 'detour-id': 'orders/0/1' } }))
  })
})

import type { KafkaMessage } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { DetourConfigError } from '../errors/index.js'
import { defaultGroupKey, displayGroupKey, groupKeyToStoreKey, KEYLESS_GROUP_PREFIX, resolveGroupKey, type GroupKeyFn } from './group-key.js'

function message(key: Buffer | null, headers: KafkaMessage['headers'] = {}): KafkaMessage {
  return { key, value: Buffer.from('v'), timestamp: '1700000000000', attributes: 0, offset: '7', headers: headers ?? {} }
}

describe('resolveGroupKey', () => {
  it('defaults to the message key bytes', () => {
    const key = Buffer.from([0x01, 0xff, 0x7c])
    const resolved = resolveGroupKey(defaultGroupKey, message(key), 't', 0)
    expect(resolved).toBe(key)
    expect(resolved).toEqual(Buffer.from([0x01, 0xff, 0x7c]))
  })

  it('gives keyless messages no group', () => {
    expect(resolveGroupKey(defaultGroupKey, message(null), 't', 0)).toBeNull()
  })

  it('encodes a string from a user function as UTF-8', () => {
    const fn: GroupKeyFn = (m) => `tenant-${m.headers?.tenant?.toString() ?? ''}-é`
    const resolved = resolveGroupKey(fn, message(null, { tenant: Buffer.from('42') }), 't', 0)
    expect(resolved).toEqual(Buffer.from('tenant-42-é', 'utf8'))
    expect(resolved).toHaveLength(12)
  })

  it('passes Buffers from a user function through and honours null', () => {
    const bytes = Buffer.from([0x00, 0xfe])
    expect(resolveGroupKey(() => bytes, message(Buffer.from('k')), 't', 0)).toBe(bytes)
    expect(resolveGroupKey(() => null, message(Buffer.from('k')), 't', 0)).toBeNull()
  })

  it('treats undefined from a JavaScript user function as no group', () => {
    const fn = (() => undefined) as unknown as GroupKeyFn
    expect(resolveGroupKey(fn, message(Buffer.from('k')), 't', 0)).toBeNull()
  })

  it('calls the user function with the message, topic and partition', () => {
    const calls: unknown[][] = []
    const m = message(Buffer.from('k'))
    resolveGroupKey((...args) => (calls.push(args), 'x'), m, 'orders', 5)
    expect(calls).toEqual([[m, 'orders', 5]])
  })

  it('keeps an empty string key as an empty (non-null) group key', () => {
    expect(resolveGroupKey(() => '', message(null), 't', 0)).toEqual(Buffer.alloc(0))
  })
})

describe('resolveGroupKey coercion', () => {
  /** What a JavaScript group-key function may return, whatever its declared type. */
  const returning = (value: unknown): GroupKeyFn => (() => value) as GroupKeyFn
  const resolve = (value: unknown): Buffer | null => resolveGroupKey(returning(value), message(Buffer.from('k')), 'orders', 3)

  it('takes the bytes of a Uint8Array view, not of the buffer behind it', () => {
    const backing = new Uint8Array([0x10, 0x11, 0xff, 0x7c, 0x00, 0x12, 0x13])
    const view = new Uint8Array(backing.buffer, 2, 3)
    const resolved = resolve(view)
    expect(Buffer.isBuffer(resolved)).toBe(true)
    expect(resolved).toEqual(Buffer.from([0xff, 0x7c, 0x00]))
    expect(resolved).toHaveLength(3)
    expect(groupKeyToStoreKey(resolved, 'orders/3/7')).toBe('\u00ff|\u0000')
  })

  it('takes a Buffer slice as it is', () => {
    const slice = Buffer.from('xxcustomer-1yy').subarray(2, 12)
    expect(resolve(slice)).toBe(slice)
    expect(resolve(slice)!.toString()).toBe('customer-1')
  })

  it('makes the same group of a string and of its UTF-8 bytes', () => {
    expect(resolve('é')).toEqual(resolve(new Uint8Array([0xc3, 0xa9])))
  })

  it.each<[string, number | bigint, string]>([
    ['zero', 0, '0'],
    ['negative zero', -0, '0'],
    ['an integer', 42, '42'],
    ['a negative fraction', -1.5, '-1.5'],
    ['a large number', 1e21, '1e+21'],
    ['an unsafe integer (as JavaScript holds it)', Number.MAX_SAFE_INTEGER + 2, '9007199254740992'],
    ['a bigint past 2^63', 12345678901234567890n, '12345678901234567890'],
    ['a negative bigint', -7n, '-7'],
  ])('turns %s into its decimal text', (_label, value, text) => {
    expect(resolve(value)).toEqual(Buffer.from(text, 'utf8'))
  })

  it('makes the number 42, the bigint 42n and the string "42" one group', () => {
    expect(groupKeyToStoreKey(resolve(42), 'x')).toBe('42')
    expect(groupKeyToStoreKey(resolve(42n), 'x')).toBe('42')
    expect(groupKeyToStoreKey(resolve('42'), 'x')).toBe('42')
  })

  it('gives null and undefined no group', () => {
    expect(resolve(null)).toBeNull()
    expect(resolve(undefined)).toBeNull()
    expect(groupKeyToStoreKey(resolve(undefined), 'orders/3/7')).toBe(`${KEYLESS_GROUP_PREFIX}orders/3/7`)
  })

  it.each<[string, unknown, string]>([
    ['a plain object', { id: 1 }, 'an object ([object Object])'],
    ['an array', [1, 2], 'an object ([object Array])'],
    ['a Date', new Date(0), 'an object ([object Date])'],
    ['an ArrayBuffer', new ArrayBuffer(2), 'an object ([object ArrayBuffer])'],
    ['a Uint16Array', new Uint16Array(2), 'an object ([object Uint16Array])'],
    ['NaN', Number.NaN, 'the number NaN'],
    ['Infinity', Number.POSITIVE_INFINITY, 'the number Infinity'],
    ['-Infinity', Number.NEGATIVE_INFINITY, 'the number -Infinity'],
    ['true', true, 'a boolean'],
    ['false', false, 'a boolean'],
    ['a symbol', Symbol('k'), 'a symbol'],
    ['a function', () => 'k', 'a function'],
  ])('refuses %s with a DetourConfigError naming the type and the message', (_label, value, described) => {
    const m = { ...message(Buffer.from('k')), offset: '9223372036854775807' }
    let caught: unknown
    try {
      resolveGroupKey(returning(value), m, 'orders', 3)
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(DetourConfigError)
    expect((caught as DetourConfigError).option).toBe('groupKey')
    expect((caught as DetourConfigError).code).toBe('DETOUR_INVALID_OPTION')
    expect((caught as DetourConfigError).message).toBe(
      `Invalid option "groupKey": must return a string, bytes, a finite number or null; it returned ${described} for orders/3/9223372036854775807`,
    )
  })
})

describe('groupKeyToStoreKey', () => {
  it('maps distinct non-UTF-8 keys to distinct store keys', () => {
    const keys = [
      Buffer.from([0xff]),
      Buffer.from([0xfe]),
      Buffer.from('\uFFFD', 'utf8'), // what [0xff] and [0xfe] become when decoded as UTF-8
      Buffer.from([0xff, 0xfe]),
      Buffer.from([0xc3]),
      Buffer.from([0xc3, 0xa9]), // 'é' in UTF-8
      Buffer.from([0xe9]), // 'é' in latin1
      Buffer.from([0x00]),
      Buffer.alloc(0),
    ]
    const storeKeys = keys.map((key) => groupKeyToStoreKey(key, 't/0/1'))
    expect(new Set(storeKeys).size).toBe(keys.length)
    // The mapping is reversible: one char per byte.
    keys.forEach((key, i) => expect(Buffer.from(storeKeys[i]!, 'latin1')).toEqual(key))
  })

  it('ignores the id for keyed messages: the same key is the same group', () => {
    const key = Buffer.from('customer-1')
    expect(groupKeyToStoreKey(key, 't/0/1')).toBe(groupKeyToStoreKey(Buffer.from('customer-1'), 't/0/99'))
    expect(groupKeyToStoreKey(key, 't/0/1')).toBe('customer-1')
  })

  it('gives every keyless message its own group', () => {
    const a = groupKeyToStoreKey(null, 't/0/1')
    const b = groupKeyToStoreKey(null, 't/0/2')
    const c = groupKeyToStoreKey(null, 't/1/1')
    expect(new Set([a, b, c]).size).toBe(3)
    expect(a).toBe(groupKeyToStoreKey(null, 't/0/1'))
  })

  it('keeps a key equal to the id text apart from the keyless group of that id', () => {
    const id = 't/0/1'
    expect(groupKeyToStoreKey(Buffer.from(id), id)).not.toBe(groupKeyToStoreKey(null, id))
    expect(groupKeyToStoreKey(Buffer.from(id), id)).toBe(id)
  })
})

describe('displayGroupKey', () => {
  it('shows valid UTF-8 as text', () => {
    expect(displayGroupKey(Buffer.from('customer-42'))).toBe('customer-42')
    expect(displayGroupKey(Buffer.from('café ☕'))).toBe('café ☕')
    expect(displayGroupKey(Buffer.alloc(0))).toBe('')
  })

  it('shows invalid UTF-8 as base64', () => {
    expect(displayGroupKey(Buffer.from([0xff]))).toBe('base64:/w==')
    expect(displayGroupKey(Buffer.from([0x61, 0xc3]))).toBe('base64:YcM=')
  })

  it('shows keyless as (none)', () => {
    expect(displayGroupKey(null)).toBe('(none)')
  })

  it('shortens long keys', () => {
    expect(displayGroupKey(Buffer.from('k'.repeat(120)))).toBe('k'.repeat(120))
    expect(displayGroupKey(Buffer.from('k'.repeat(121)))).toBe(`${'k'.repeat(120)}…`)
    const binary = Buffer.alloc(1000, 0xff)
    const shown = displayGroupKey(binary)
    expect(shown).toBe(`base64:${binary.toString('base64').slice(0, 160)}`)
    expect(shown).toHaveLength(7 + 160)
  })
})

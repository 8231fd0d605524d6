import type { KafkaMessage } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { defaultGroupKey, displayGroupKey, groupKeyToStoreKey, resolveGroupKey, type GroupKeyFn } from './group-key.js'

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

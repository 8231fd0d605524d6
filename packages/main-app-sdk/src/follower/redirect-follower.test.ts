import { describe, expect, it } from 'vitest'
import { buildRedirectRecord, buildTombstone, decodeRedirectRecord, groupKeyToStoreKey, type GroupKey } from '@detour/core'
import { fastDecode } from './redirect-follower.js'

const source = (offset: string) => ({ topic: 'orders.v1', partition: 3, offset })
const prefix = Buffer.from('orders.v1/3/', 'latin1')

describe('fastDecode agrees with the full redirect decoder', () => {
  const keys: GroupKey[] = [Buffer.from('customer-1'), Buffer.from([0xff, 0x7c, 0x00, 0x7c]), Buffer.alloc(0), null, Buffer.from('é|ü')]
  for (const groupKey of keys) {
    for (const offset of ['0', '42', '9223372036854775807']) {
      it(`${groupKey === null ? 'keyless' : groupKey.toString('hex') || 'empty'} @ ${offset}`, () => {
        const id = `orders.v1/3/${offset}`
        for (const record of [
          buildRedirectRecord({ source: source(offset), id, groupKey, reason: 'failure', consumerGroup: 'g' }),
          buildTombstone({ partition: 3, id, groupKey }),
        ]) {
          const message = { key: record.key as Buffer, value: (record.value as Buffer | null) ?? null, headers: record.headers }
          const full = decodeRedirectRecord(message)
          const fast = fastDecode(message, prefix)
          expect(fast).toEqual({ pending: full.kind === 'pending', storeKey: groupKeyToStoreKey(full.groupKey, full.id), offset })
        }
      })
    }
  }

  it('leaves everything unusual to the full decoder', () => {
    const id = 'orders.v1/3/7'
    const ok = buildRedirectRecord({ source: source('7'), id, groupKey: Buffer.from('k'), reason: 'failure', consumerGroup: 'g' })
    const base = { key: ok.key as Buffer, value: ok.value as Buffer, headers: ok.headers }
    expect(fastDecode({ ...base, key: null }, prefix)).toBeUndefined()
    expect(fastDecode({ ...base, key: Buffer.from('k|orders.v1/4/7') }, prefix)).toBeUndefined() // other partition
    expect(fastDecode({ ...base, key: Buffer.from('k|orders.v1/3/7x') }, prefix)).toBeUndefined()
    expect(fastDecode({ ...base, key: Buffer.from('k|orders.v1/3/') }, prefix)).toBeUndefined()
    expect(fastDecode({ ...base, headers: { 'detour-id': 'orders.v1/3/8' } }, prefix)).toBeUndefined() // header disagrees
  })
})

import { describe, expect, it } from 'vitest'
import { GroupStore, buildRedirectRecord, buildTombstone, groupKeyToStoreKey, type GroupKey } from '@detour/core'
import { PendingIndex } from './pending-index.js'

const GROUP = 'orders-app'
let offset = 0
const at = (record: { key?: unknown; value?: unknown; headers?: unknown }) => ({
  key: record.key as Buffer,
  value: (record.value ?? null) as Buffer | null,
  headers: (record.headers ?? {}) as Record<string, string | Buffer>,
  offset: String(offset++),
})
const redirect = (partition: number, sourceOffset: string, key: GroupKey, consumerGroup = GROUP, reason: 'failure' | 'ordering' = 'failure') =>
  at(
    buildRedirectRecord({
      source: { topic: 'orders', partition, offset: sourceOffset },
      id: `orders/${partition}/${sourceOffset}`,
      groupKey: key,
      reason,
      consumerGroup,
      now: new Date('2024-05-01T12:00:00.000Z'),
    }),
  )
const tombstone = (partition: number, sourceOffset: string, key: GroupKey, consumerGroup = GROUP) =>
  at(buildTombstone({ partition, id: `orders/${partition}/${sourceOffset}`, groupKey: key, consumerGroup }))

describe('PendingIndex', () => {
  it('keeps pending ids per group in log order with what the redirect record says', () => {
    const index = new PendingIndex(GROUP)
    const k = Buffer.from('customer-7')
    expect(index.apply('orders', 0, redirect(0, '5', k))).toBe('pending')
    expect(index.apply('orders', 0, redirect(0, '9', k, GROUP, 'ordering'))).toBe('pending')
    expect(index.apply('orders', 0, redirect(0, '7', null))).toBe('pending')
    const groups = index.groups()
    expect(groups.map((g) => g.ids.map((e) => e.id))).toEqual([['orders/0/5', 'orders/0/9'], ['orders/0/7']])
    expect(groups[0]!.ids[1]).toMatchObject({ reason: 'ordering', redirectedAt: '2024-05-01T12:00:00.000Z', offset: '9', partition: 0, sourceTopic: 'orders' })
    expect(groups[0]!.groupKey).toEqual(k)
    expect(groups[1]!.groupKey).toBeNull()
  })

  it('releases with tombstones, keeps a re-added id in its place, counts what it ignores', () => {
    const index = new PendingIndex(GROUP)
    const k = Buffer.from([0xff, 0x7c])
    index.apply('orders', 1, redirect(1, '1', k))
    index.apply('orders', 1, redirect(1, '2', k))
    expect(index.apply('orders', 1, redirect(1, '1', k))).toBe('already-pending')
    expect(index.groups()[0]!.ids.map((e) => e.id)).toEqual(['orders/1/1', 'orders/1/2'])
    expect(index.apply('orders', 1, tombstone(1, '1', k))).toBe('released')
    expect(index.apply('orders', 1, tombstone(1, '1', k))).toBe('unknown-tombstone')
    expect(index.apply('orders', 1, redirect(1, '3', k, 'another-group'))).toBe('foreign')
    expect(index.apply('orders', 1, { key: Buffer.from('garbage'), value: Buffer.from('x'), headers: {}, offset: '99' })).toBe('malformed')
    // An id of another partition on this partition's redirect topic is malformed, as for the follower.
    expect(index.apply('orders', 1, redirect(2, '4', k))).toBe('malformed')
    expect(index.ignored('orders')).toEqual({ malformed: 2, foreign: 1, unknownTombstones: 1 })
    expect(index.find('orders/1/2')?.group.ids.map((e) => e.id)).toEqual(['orders/1/2'])
    expect(index.find('orders/1/1')).toBeUndefined()
    index.apply('orders', 1, tombstone(1, '2', k))
    expect(index.groups()).toEqual([])
  })

  it('agrees with core GroupStore fed the same records', () => {
    const index = new PendingIndex(GROUP)
    const store = new GroupStore()
    let seed = 7
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
    const live: Array<{ offset: string; key: GroupKey }> = []
    for (let i = 0; i < 2000; i++) {
      const release = live.length > 0 && random() < 0.45
      if (release) {
        const [entry] = live.splice(Math.floor(random() * live.length), 1)
        const record = tombstone(0, entry!.offset, entry!.key)
        index.apply('orders', 0, record)
        store.release('orders', 0, groupKeyToStoreKey(entry!.key, `orders/0/${entry!.offset}`), entry!.offset)
      } else {
        const key = random() < 0.1 ? null : Buffer.from(`k${Math.floor(random() * 20)}`)
        const entry = { offset: String(i), key }
        live.push(entry)
        index.apply('orders', 0, redirect(0, entry.offset, key))
        store.add('orders', 0, groupKeyToStoreKey(key, `orders/0/${entry.offset}`), entry.offset)
      }
    }
    const groups = index.groups()
    expect(groups.reduce((n, g) => n + g.ids.length, 0)).toBe(store.pendingCount)
    for (const group of groups) {
      const storeKey = groupKeyToStoreKey(group.groupKey, group.ids[0]!.id)
      expect(group.ids.map((e) => e.id)).toEqual(store.pendingIds('orders', 0, storeKey))
    }
  })
})

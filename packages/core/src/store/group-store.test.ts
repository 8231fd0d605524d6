import { describe, expect, it } from 'vitest'
import { DetourConfigError } from '../errors/index.js'
import { groupKeyToStoreKey } from '../model/group-key.js'
import { GroupStore } from './group-store.js'

const T = 'orders'

function store(maxPendingIds?: number): GroupStore {
  const s = new GroupStore(maxPendingIds === undefined ? {} : { maxPendingIds })
  s.resetPartition(T, 0)
  s.resetPartition(T, 1)
  return s
}

describe('GroupStore basics', () => {
  it('adds, checks and releases a pending id', () => {
    const s = store()
    expect(s.hasPending(T, 0, 'k')).toBe(false)
    expect(s.add(T, 0, 'k', 'orders/0/5')).toBe(true)
    expect(s.hasPending(T, 0, 'k')).toBe(true)
    expect(s.isPending(T, 0, 'k', 'orders/0/5')).toBe(true)
    expect(s.isPending(T, 0, 'k', 'orders/0/6')).toBe(false)
    expect(s.isPending(T, 0, 'other', 'orders/0/5')).toBe(false)
    expect(s.pendingIds(T, 0, 'k')).toEqual(['orders/0/5'])
    expect(s.pendingCount).toBe(1)
    expect(s.release(T, 0, 'k', 'orders/0/5')).toBe(true)
    expect(s.hasPending(T, 0, 'k')).toBe(false)
    expect(s.isPending(T, 0, 'k', 'orders/0/5')).toBe(false)
    expect(s.pendingIds(T, 0, 'k')).toEqual([])
    expect(s.pendingCount).toBe(0)
  })

  it('is idempotent on add', () => {
    const s = store()
    expect(s.add(T, 0, 'k', 'orders/0/5')).toBe(true)
    expect(s.add(T, 0, 'k', 'orders/0/5')).toBe(false)
    expect(s.add(T, 0, 'k', 'orders/0/6')).toBe(true)
    expect(s.add(T, 0, 'k', 'orders/0/6')).toBe(false)
    expect(s.add(T, 0, 'k', 'orders/0/5')).toBe(false)
    expect(s.pendingCount).toBe(2)
    expect(s.partitionPending(T, 0)).toBe(2)
    expect(s.pendingIds(T, 0, 'k')).toEqual(['orders/0/5', 'orders/0/6'])
  })

  it('returns false when releasing an unknown id and changes nothing', () => {
    const s = store()
    expect(s.release(T, 0, 'k', 'orders/0/1')).toBe(false)
    s.add(T, 0, 'k', 'orders/0/1')
    expect(s.release(T, 0, 'k', 'orders/0/2')).toBe(false) // single-id form
    expect(s.release(T, 0, 'other', 'orders/0/1')).toBe(false)
    expect(s.release(T, 1, 'k', 'orders/1/1')).toBe(false)
    s.add(T, 0, 'k', 'orders/0/3')
    expect(s.release(T, 0, 'k', 'orders/0/2')).toBe(false) // Set form
    expect(s.release(T, 0, 'k', 'orders/0/1')).toBe(true)
    expect(s.release(T, 0, 'k', 'orders/0/1')).toBe(false) // twice
    expect(s.pendingCount).toBe(1)
    expect(s.pendingIds(T, 0, 'k')).toEqual(['orders/0/3'])
  })

  it('keeps insertion order across single-id ↔ Set transitions', () => {
    const s = store()
    const id = (n: number): string => `orders/0/${n}`
    s.add(T, 0, 'k', id(30))
    s.add(T, 0, 'k', id(4)) // → Set
    s.add(T, 0, 'k', id(100))
    expect(s.pendingIds(T, 0, 'k')).toEqual([id(30), id(4), id(100)])
    s.release(T, 0, 'k', id(4))
    expect(s.pendingIds(T, 0, 'k')).toEqual([id(30), id(100)])
    s.release(T, 0, 'k', id(30)) // → single id
    expect(s.pendingIds(T, 0, 'k')).toEqual([id(100)])
    expect(s.hasPending(T, 0, 'k')).toBe(true)
    s.add(T, 0, 'k', id(7)) // → Set again
    s.add(T, 0, 'k', id(30))
    expect(s.pendingIds(T, 0, 'k')).toEqual([id(100), id(7), id(30)])
    s.release(T, 0, 'k', id(7))
    s.release(T, 0, 'k', id(30))
    s.release(T, 0, 'k', id(100))
    expect(s.hasPending(T, 0, 'k')).toBe(false)
    expect(s.pendingIds(T, 0, 'k')).toEqual([])
    expect(s.stats().groups).toBe(0)
  })

  it('keeps 19-digit offsets exactly', () => {
    const s = store()
    s.add(T, 1, 'k', 'orders/1/9223372036854775806')
    s.add(T, 1, 'k', 'orders/1/9223372036854775807')
    expect(s.pendingIds(T, 1, 'k')).toEqual(['orders/1/9223372036854775806', 'orders/1/9223372036854775807'])
    expect(s.isPending(T, 1, 'k', 'orders/1/9223372036854775808')).toBe(false)
  })

  it('counts pending ids per partition and in total', () => {
    const s = store()
    s.add(T, 0, 'a', 'orders/0/1')
    s.add(T, 0, 'a', 'orders/0/2')
    s.add(T, 0, 'b', 'orders/0/3')
    s.add(T, 1, 'a', 'orders/1/1')
    expect(s.partitionPending(T, 0)).toBe(3)
    expect(s.partitionPending(T, 1)).toBe(1)
    expect(s.partitionPending(T, 2)).toBe(0)
    expect(s.pendingCount).toBe(4)
    expect(s.stats()).toEqual({ pendingIds: 4, groups: 3, partitions: 2, utilisation: 4 / 100_000 })
  })

  it('answers for an untracked partition without starting to track it', () => {
    const s = new GroupStore()
    expect(s.hasPartition(T, 0)).toBe(false)
    expect(s.release(T, 0, 'k', 'orders/0/1')).toBe(false)
    expect(s.hasPending(T, 0, 'k')).toBe(false)
    expect(s.isPending(T, 0, 'k', 'orders/0/1')).toBe(false)
    expect(s.pendingIds(T, 0, 'k')).toEqual([])
    expect(s.partitionPending(T, 0)).toBe(0)
    expect(s.partitionGroups(T, 0)).toBe(0)
    // Only add creates a slot: lookups and releases leave the store as it was.
    expect(s.hasPartition(T, 0)).toBe(false)
    expect(s.pendingCount).toBe(0)
    expect(s.stats()).toEqual({ pendingIds: 0, groups: 0, partitions: 0, utilisation: 0 })
  })

  it('tracks a partition first seen by add (a partition added to the topic at runtime)', () => {
    const s = store() // partitions 0 and 1 are tracked; 2 appears later
    expect(s.hasPartition(T, 2)).toBe(false)
    expect(s.add(T, 2, 'k', 'orders/2/40')).toBe(true)
    expect(s.hasPartition(T, 2)).toBe(true)
    expect(s.add(T, 2, 'k', 'orders/2/40')).toBe(false)
    expect(s.add(T, 2, 'k', 'orders/2/41')).toBe(true)
    expect(s.pendingIds(T, 2, 'k')).toEqual(['orders/2/40', 'orders/2/41'])
    expect(s.partitionPending(T, 2)).toBe(2)
    expect(s.stats()).toEqual({ pendingIds: 2, groups: 1, partitions: 3, utilisation: 2 / 100_000 })
    // A topic the store never heard of gets its slot too, without touching the others.
    expect(s.add('payments', 0, 'k', 'payments/0/1')).toBe(true)
    expect(s.hasPending(T, 0, 'k')).toBe(false)
    expect(s.stats()).toEqual({ pendingIds: 3, groups: 2, partitions: 4, utilisation: 3 / 100_000 })
    expect(s.release(T, 2, 'k', 'orders/2/40')).toBe(true)
    expect(s.release(T, 2, 'k', 'orders/2/41')).toBe(true)
    // Emptied by releases, the partition stays tracked (only drop forgets it).
    expect(s.hasPartition(T, 2)).toBe(true)
    expect(s.stats()).toEqual({ pendingIds: 1, groups: 1, partitions: 4, utilisation: 1 / 100_000 })
  })

  it('partitionGroups counts the groups with pending ids of one partition', () => {
    const s = store()
    expect(s.partitionGroups(T, 0)).toBe(0)
    s.add(T, 0, 'a', 'orders/0/1')
    s.add(T, 0, 'a', 'orders/0/2')
    s.add(T, 0, 'b', 'orders/0/3')
    s.add(T, 1, 'c', 'orders/1/1')
    expect([s.partitionGroups(T, 0), s.partitionGroups(T, 1), s.partitionGroups(T, 2), s.partitionGroups('other', 0)]).toEqual([2, 1, 0, 0])
    s.release(T, 0, 'a', 'orders/0/1')
    expect(s.partitionGroups(T, 0)).toBe(2) // 'a' still has orders/0/2
    s.release(T, 0, 'a', 'orders/0/2')
    expect(s.partitionGroups(T, 0)).toBe(1)
    s.resetPartition(T, 1)
    expect(s.partitionGroups(T, 1)).toBe(0)
    s.dropPartition(T, 0)
    expect(s.partitionGroups(T, 0)).toBe(0)
  })

  it('resetPartition empties a partition and adjusts the total', () => {
    const s = store()
    s.add(T, 0, 'a', 'orders/0/1')
    s.add(T, 0, 'a', 'orders/0/2')
    s.add(T, 1, 'a', 'orders/1/1')
    s.resetPartition(T, 0)
    expect(s.hasPartition(T, 0)).toBe(true)
    expect(s.partitionPending(T, 0)).toBe(0)
    expect(s.hasPending(T, 0, 'a')).toBe(false)
    expect(s.pendingCount).toBe(1)
    expect(s.hasPending(T, 1, 'a')).toBe(true)
    expect(s.add(T, 0, 'a', 'orders/0/1')).toBe(true)
    expect(s.pendingCount).toBe(2)
  })

  it('dropPartition forgets a partition and adjusts the total; dropping twice is harmless', () => {
    const s = store()
    s.add(T, 0, 'a', 'orders/0/1')
    s.add(T, 1, 'a', 'orders/1/1')
    s.add(T, 1, 'b', 'orders/1/2')
    s.dropPartition(T, 1)
    expect(s.hasPartition(T, 1)).toBe(false)
    expect(s.pendingCount).toBe(1)
    expect(s.partitionPending(T, 1)).toBe(0)
    expect(s.pendingIds(T, 1, 'a')).toEqual([])
    expect(s.stats()).toEqual({ pendingIds: 1, groups: 1, partitions: 1, utilisation: 1 / 100_000 })
    s.dropPartition(T, 1)
    s.dropPartition('never', 9)
    expect(s.stats()).toEqual({ pendingIds: 1, groups: 1, partitions: 1, utilisation: 1 / 100_000 })
    // Assigned again later: add tracks it afresh, without the ids it had before the drop.
    expect(s.add(T, 1, 'a', 'orders/1/3')).toBe(true)
    expect(s.pendingIds(T, 1, 'a')).toEqual(['orders/1/3'])
    expect(s.isPending(T, 1, 'a', 'orders/1/1')).toBe(false)
    expect(s.stats()).toEqual({ pendingIds: 2, groups: 2, partitions: 2, utilisation: 2 / 100_000 })
  })

  it('keeps partitions of different topics independent', () => {
    const s = new GroupStore()
    s.resetPartition('a', 0)
    s.resetPartition('a.b', 0)
    s.resetPartition('b', 0)
    s.add('a', 0, 'k', 'a/0/1')
    expect(s.hasPending('a', 0, 'k')).toBe(true)
    expect(s.hasPending('a.b', 0, 'k')).toBe(false)
    expect(s.hasPending('b', 0, 'k')).toBe(false)
    expect(s.release('b', 0, 'k', 'b/0/1')).toBe(false)
    s.add('b', 0, 'k', 'b/0/1')
    expect(s.pendingIds('a', 0, 'k')).toEqual(['a/0/1'])
    expect(s.pendingIds('b', 0, 'k')).toEqual(['b/0/1'])
    s.dropPartition('a', 0)
    expect(s.hasPending('b', 0, 'k')).toBe(true)
    expect(s.pendingCount).toBe(1)
  })

  it('keeps binary group keys (store keys) apart', () => {
    const s = store()
    const ff = groupKeyToStoreKey(Buffer.from([0xff]), 'orders/0/1')
    const fe = groupKeyToStoreKey(Buffer.from([0xfe]), 'orders/0/2')
    const keyless = groupKeyToStoreKey(null, 'orders/0/3')
    s.add(T, 0, ff, 'orders/0/1')
    expect(s.hasPending(T, 0, fe)).toBe(false)
    expect(s.hasPending(T, 0, groupKeyToStoreKey(Buffer.from('\uFFFD'), 'x'))).toBe(false)
    expect(s.hasPending(T, 0, keyless)).toBe(false)
    s.add(T, 0, keyless, 'orders/0/3')
    expect(s.hasPending(T, 0, groupKeyToStoreKey(null, 'orders/0/4'))).toBe(false)
    expect(s.hasPending(T, 0, groupKeyToStoreKey(null, 'orders/0/3'))).toBe(true)
  })
})

describe('GroupStore capacity', () => {
  it('reports utilisation relative to maxPendingIds and never refuses an id', () => {
    const s = store(3)
    expect(s.maxPendingIds).toBe(3)
    expect(s).not.toHaveProperty('isFull') // the owner decides from stats(); the store has no opinion
    s.add(T, 0, 'a', 'orders/0/1')
    s.add(T, 1, 'b', 'orders/1/1')
    expect(s.stats()).toEqual({ pendingIds: 2, groups: 2, partitions: 2, utilisation: 2 / 3 })
    s.add(T, 0, 'a', 'orders/0/2')
    expect(s.stats().utilisation).toBe(1)
    // Past the maximum: still added, utilisation above 1.
    expect(s.add(T, 0, 'c', 'orders/0/3')).toBe(true)
    expect(s.add(T, 5, 'd', 'orders/5/1')).toBe(true)
    expect(s.pendingCount).toBe(5)
    expect(s.isPending(T, 5, 'd', 'orders/5/1')).toBe(true)
    expect(s.stats()).toEqual({ pendingIds: 5, groups: 4, partitions: 3, utilisation: 5 / 3 })
    s.release(T, 0, 'c', 'orders/0/3')
    s.release(T, 0, 'a', 'orders/0/1')
    expect(s.stats().utilisation).toBe(1)
    s.dropPartition(T, 1)
    s.dropPartition(T, 5)
    expect(s.stats()).toEqual({ pendingIds: 1, groups: 1, partitions: 1, utilisation: 1 / 3 })
  })

  it('defaults maxPendingIds to 100000', () => {
    expect(new GroupStore().maxPendingIds).toBe(100_000)
    expect(new GroupStore({ maxPendingIds: undefined }).maxPendingIds).toBe(100_000)
  })

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('rejects maxPendingIds %s', (maxPendingIds) => {
    let caught: unknown
    try {
      new GroupStore({ maxPendingIds })
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(DetourConfigError)
    expect((caught as DetourConfigError).option).toBe('maxPendingIds')
    expect((caught as DetourConfigError).message).toBe(`Invalid option "maxPendingIds": must be a positive integer, got ${String(maxPendingIds)}`)
  })
})

/** mulberry32: a tiny seeded PRNG so a failing run can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

describe('GroupStore against a reference model', () => {
  const topics = ['orders', 'orders.v2']
  const partitions = [0, 1, 2]
  const groupKeys = ['a', 'b', 'c', '\u00ff', '\u00fe', groupKeyToStoreKey(null, 'orders/0/1'), '']

  function run(
    seed: number,
    withResets: boolean,
  ): { added: number; released: number; largestGroup: number; overMaxSeen: boolean; slotsCreatedByAdd: number } {
    const seen = { added: 0, released: 0, largestGroup: 0, overMaxSeen: false, slotsCreatedByAdd: 0 }
    const random = prng(seed)
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!
    const s = new GroupStore({ maxPendingIds: 40 })
    const model = new Map<string, string[]>() // `${topic}/${partition}` + '\u0000' + group key → ids in insertion order
    const tracked = new Set<string>()
    const slot = (topic: string, partition: number, key: string): string => `${topic}/${partition}\u0000${key}`
    // Partition 2 of each topic is not reset up front: its slot comes from the first add (a partition
    // added at runtime), and after a drop the next add brings a slot back.
    for (const topic of topics) for (const partition of partitions.slice(0, 2)) {
      s.resetPartition(topic, partition)
      tracked.add(`${topic}/${partition}`)
    }

    // Plain comparisons per op; `expect` (slow, but with a readable diff) only when something differs.
    const snapshot = (fromStore: boolean): unknown[] => {
      const out: unknown[] = []
      let total = 0
      let groups = 0
      for (const topic of topics) {
        for (const partition of partitions) {
          let partitionTotal = 0
          let partitionGroups = 0
          for (const key of groupKeys) {
            const ids = model.get(slot(topic, partition, key)) ?? []
            partitionTotal += ids.length
            if (ids.length > 0) partitionGroups++
            out.push(fromStore ? [s.pendingIds(topic, partition, key), s.hasPending(topic, partition, key)] : [ids, ids.length > 0])
            for (const probe of ids) out.push(fromStore ? s.isPending(topic, partition, key, probe) : true)
          }
          out.push(fromStore ? s.partitionPending(topic, partition) : partitionTotal)
          out.push(fromStore ? s.partitionGroups(topic, partition) : partitionGroups)
          out.push(fromStore ? s.hasPartition(topic, partition) : tracked.has(`${topic}/${partition}`))
          total += partitionTotal
          groups += partitionGroups
        }
      }
      out.push(fromStore ? s.pendingCount : total)
      out.push(fromStore ? s.stats() : { pendingIds: total, groups, partitions: tracked.size, utilisation: total / 40 })
      return out
    }
    const check = (step: number, op: string): void => {
      const actual = snapshot(true)
      const expected = snapshot(false)
      if (JSON.stringify(actual) !== JSON.stringify(expected)) expect(actual, `step ${step} after ${op}`).toEqual(expected)
    }

    for (let step = 0; step < 10_000; step++) {
      const topic = pick(topics)
      const partition = pick(partitions)
      const key = pick(groupKeys)
      const ids = model.get(slot(topic, partition, key)) ?? []
      const isTracked = tracked.has(`${topic}/${partition}`)
      const roll = random()
      let op: string
      if (withResets && roll < 0.01) {
        op = `reset ${topic}/${partition}`
        s.resetPartition(topic, partition)
        tracked.add(`${topic}/${partition}`)
        for (const k of groupKeys) model.delete(slot(topic, partition, k))
      } else if (withResets && roll < 0.02) {
        op = `drop ${topic}/${partition}`
        s.dropPartition(topic, partition)
        tracked.delete(`${topic}/${partition}`)
        for (const k of groupKeys) model.delete(slot(topic, partition, k))
      } else if (roll < 0.55) {
        const id = `${topic}/${partition}/${Math.floor(random() * 12)}`
        op = `add ${key} ${id}`
        const expected = !ids.includes(id)
        const added = s.add(topic, partition, key, id)
        if (added !== expected) expect(added, `step ${step} ${op}`).toBe(expected)
        if (!isTracked) seen.slotsCreatedByAdd++
        tracked.add(`${topic}/${partition}`)
        if (expected) {
          model.set(slot(topic, partition, key), [...ids, id])
          seen.added++
          seen.largestGroup = Math.max(seen.largestGroup, ids.length + 1)
        }
      } else {
        const id = ids.length > 0 && roll < 0.9 ? pick(ids) : `${topic}/${partition}/${Math.floor(random() * 12)}`
        op = `release ${key} ${id}`
        const expected = ids.includes(id)
        const released = s.release(topic, partition, key, id)
        if (released !== expected) expect(released, `step ${step} ${op}`).toBe(expected)
        if (expected) {
          seen.released++
          const rest = ids.filter((x) => x !== id)
          if (rest.length > 0) model.set(slot(topic, partition, key), rest)
          else model.delete(slot(topic, partition, key))
        }
      }
      for (const probe of ids) {
        const pending = (model.get(slot(topic, partition, key)) ?? []).includes(probe)
        if (s.isPending(topic, partition, key, probe) !== pending) expect(s.isPending(topic, partition, key, probe), `step ${step} ${op}: ${probe}`).toBe(pending)
      }
      check(step, op)
      seen.overMaxSeen ||= s.stats().utilisation >= 1
    }
    return seen
  }

  it('matches the model over 10000 random add/release ops', () => {
    const seen = run(0xdec0de, false)
    // The mix really exercised every path: many real adds and releases, Set-form groups, slots created
    // by add, a store at or past maxPendingIds.
    expect(seen.added).toBeGreaterThan(2000)
    expect(seen.released).toBeGreaterThan(2000)
    expect(seen.largestGroup).toBeGreaterThanOrEqual(3)
    expect(seen.slotsCreatedByAdd).toBe(2) // partition 2 of each topic, once
    expect(seen.overMaxSeen).toBe(true)
  })

  it('matches the model over 10000 random ops with partition resets and revocations', () => {
    const seen = run(20240501, true)
    expect(seen.added).toBeGreaterThan(2000)
    expect(seen.released).toBeGreaterThan(1000)
    expect(seen.largestGroup).toBeGreaterThanOrEqual(3)
    expect(seen.slotsCreatedByAdd).toBeGreaterThan(10) // after drops too
  })
})

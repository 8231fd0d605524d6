import { describe, expect, it } from 'vitest'
import type { KafkaMessage } from 'kafkajs'
import { detourTopics } from '@detour/core'
import { retryEntry, unitTopics } from '../test-support/entries.js'
import { PartitionScheduler } from './partition-scheduler.js'
import { createRetryEntry, type RetryEntry } from './retry-entry.js'

const topics = unitTopics
const entry = (offset: string, key: string | null, sourceOffset = offset): RetryEntry => retryEntry(offset, key, { sourceOffset })

function scheduler(): { s: PartitionScheduler; started: string[] } {
  const started: string[] = []
  const s = new PartitionScheduler(topics.retry, 0, { start: (e) => started.push(e.offset) })
  return { s, started }
}

describe('PartitionScheduler', () => {
  it('starts only the head of each group and the next one when the head resolves', () => {
    const { s, started } = scheduler()
    const [a0, b1, a2, b3, c4] = [entry('0', 'a'), entry('1', 'b'), entry('2', 'a'), entry('3', 'b'), entry('4', 'c')]
    for (const e of [a0, b1, a2, b3, c4]) expect(s.add(e)).toBe(true)
    expect(started).toEqual(['0', '1', '4'])
    expect(s.buffered).toBe(5)
    s.resolve(b1)
    expect(started).toEqual(['0', '1', '4', '3'])
    expect(s.commitOffset()).toBe('0')
    s.resolve(a0)
    expect(started).toEqual(['0', '1', '4', '3', '2'])
    expect(s.commitOffset()).toBe('2')
    s.resolve(c4)
    expect(s.commitOffset()).toBe('2')
    s.resolve(a2)
    expect(s.commitOffset()).toBe('3')
    s.resolve(b3)
    expect(s.commitOffset()).toBe('5')
    expect(s.buffered).toBe(0)
  })

  it('refuses to resolve an entry that is not the active head of its group', () => {
    const { s } = scheduler()
    const [a0, a1] = [entry('0', 'a'), entry('1', 'a')]
    s.add(a0)
    s.add(a1)
    expect(s.resolve(a1)).toBe(false)
    expect(a1.state).toBe('queued')
    expect(s.resolve(a0)).toBe(true)
    expect(s.resolve(a0)).toBe(false)
  })

  it('treats keyless records as groups of one and malformed records as independent', () => {
    const { s, started } = scheduler()
    s.add(entry('0', null))
    s.add(entry('1', null))
    const bad = { ...entry('2', 'a'), message: { offset: '2', headers: {} } as unknown as KafkaMessage }
    s.add(createRetryEntry(topics.retry, 0, bad.message, topics, 'app'))
    s.add(createRetryEntry(topics.retry, 0, { ...bad.message, offset: '3' }, topics, 'app'))
    expect(started).toEqual(['0', '1', '2', '3'])
  })

  it('never puts a malformed record in the group of a real key, whatever its bytes', () => {
    const { s, started } = scheduler()
    // A key whose bytes spell a malformed record's private group name; its message is held.
    const held = entry('0', '\u0001malformed/1')
    s.add(held)
    s.hold(held)
    const bad = createRetryEntry(topics.retry, 0, { offset: '1', headers: {} } as unknown as KafkaMessage, topics, 'app')
    expect(bad.groupKey).not.toBe(held.groupKey)
    s.add(bad)
    // The malformed record does not wait behind the held group.
    expect(started).toEqual(['0', '1'])
  })

  it('marks records of another consumer group, source topic or source partition malformed', () => {
    const foreign = entry('0', 'a')
    expect(createRetryEntry(topics.retry, 0, foreign.message, topics, 'other-app').malformed?.message).toMatch(/consumer group "app"/)
    const otherTopics = detourTopics('payments', 'app')
    expect(createRetryEntry(otherTopics.retry, 0, foreign.message, otherTopics, 'app').malformed?.message).toMatch(/source topic "orders"/)
    // Records of source partition N belong on retry partition N (co-partitioning).
    expect(createRetryEntry(topics.retry, 1, foreign.message, topics, 'app').malformed?.message).toMatch(/source partition 0 is on partition 1/)
    expect(foreign.malformed).toBeUndefined()
  })

  it('keeps a held entry unresolved: its group waits and the commit stays at it', () => {
    const { s, started } = scheduler()
    const [a0, b1, a2] = [entry('0', 'a'), entry('1', 'b'), entry('2', 'a')]
    s.add(a0)
    s.add(b1)
    s.add(a2)
    expect(s.hold(a0)).toBe(true)
    s.resolve(b1)
    expect(started).toEqual(['0', '1'])
    expect(s.commitOffset()).toBe('0')
    expect(s.resolve(a0)).toBe(true)
    expect(started).toEqual(['0', '1', '2'])
    expect(s.commitOffset()).toBe('2')
  })

  it('counts the entries of held groups as blocked until the group is released', () => {
    const { s, started } = scheduler()
    const [a0, a1, b2, a3] = [entry('0', 'a'), entry('1', 'a'), entry('2', 'b'), entry('3', 'a')]
    s.add(a0)
    s.add(a1)
    s.add(b2)
    expect(s.blocked).toBe(0)
    expect(s.hold(a0)).toBe(true)
    expect(s.blocked).toBe(2)
    s.add(a3)
    expect(s.blocked).toBe(3)
    s.resolve(b2)
    expect(s.blocked).toBe(3)
    expect(s.buffered).toBe(3)
    s.resolve(a0)
    expect(s.blocked).toBe(0)
    expect(started).toEqual(['0', '2', '1'])
    expect(s.hold(a1)).toBe(true)
    expect(s.blocked).toBe(2)
    s.drop()
    expect(s.blocked).toBe(0)
  })

  it('ignores records at or below an offset already seen (fetches restart from the commit after a rebalance)', () => {
    const { s, started } = scheduler()
    s.add(entry('5', 'a'))
    s.add(entry('6', 'b'))
    expect(s.add(entry('5', 'a'))).toBe(false)
    expect(s.add(entry('6', 'c'))).toBe(false)
    expect(s.add(entry('7', 'c'))).toBe(true)
    expect(started).toEqual(['5', '6', '7'])
  })

  it('computes offsets beyond 2^53 exactly', () => {
    const { s } = scheduler()
    const big = entry('9007199254740993', 'a')
    s.add(big)
    expect(s.commitOffset()).toBe('9007199254740993')
    s.resolve(big)
    expect(s.commitOffset()).toBe('9007199254740994')
    expect(s.add(entry('9007199254740993', 'b'))).toBe(false)
  })

  it('commits nothing before the first record, and skips gaps (compaction, transaction markers)', () => {
    const { s } = scheduler()
    expect(s.commitOffset()).toBeUndefined()
    const e = entry('10', 'a')
    s.add(e)
    const f = entry('14', 'b')
    s.add(f)
    s.resolve(e)
    expect(s.commitOffset()).toBe('14')
    s.resolve(f)
    expect(s.commitOffset()).toBe('15')
  })

  it('drop() aborts its signals, returns the unresolved entries and ignores later calls', () => {
    const parent = { soft: new AbortController(), hard: new AbortController() }
    const s = new PartitionScheduler(topics.retry, 0, { start: () => {} }, { soft: parent.soft.signal, hard: parent.hard.signal })
    const [a0, a1, b2] = [entry('0', 'a'), entry('1', 'a'), entry('2', 'b')]
    s.add(a0)
    s.add(a1)
    s.add(b2)
    s.resolve(b2)
    expect(s.drop().map((e) => e.offset)).toEqual(['0', '1'])
    expect(s.phase).toBe('dropped')
    expect(s.signals.soft.aborted && s.signals.attempts.aborted && s.signals.hard.aborted).toBe(true)
    expect(s.resolve(a0)).toBe(false)
    expect(s.add(entry('3', 'c'))).toBe(false)
    expect(s.drop()).toEqual([])
  })

  it('revoke() stops new records and attempts but still resolves what running work finishes', () => {
    const { s, started } = scheduler()
    const [a0, a1, b2] = [entry('0', 'a'), entry('1', 'a'), entry('2', 'b')]
    for (const e of [a0, a1, b2]) s.add(e)
    s.revoke()
    expect(s.phase).toBe('revoking')
    expect(s.signals.soft.aborted && s.signals.attempts.aborted).toBe(true)
    // Writes of a handler that finished may still complete.
    expect(s.signals.hard.aborted).toBe(false)
    expect(s.accepts('3')).toBe(false)
    expect(s.add(entry('3', 'c'))).toBe(false)
    expect(s.hold(b2)).toBe(false)
    // a0's handler finished: resolved, the commit moves; a1 is started and ends at once (soft is aborted).
    expect(s.resolve(a0)).toBe(true)
    expect(started).toEqual(['0', '2', '1'])
    expect(s.commitOffset()).toBe('1')
    expect(s.drop().map((e) => e.offset)).toEqual(['1', '2'])
  })

  it('follows the worker signals', () => {
    const parent = { soft: new AbortController(), attempts: new AbortController(), hard: new AbortController() }
    const s = new PartitionScheduler(topics.retry, 0, { start: () => {} }, {
      soft: parent.soft.signal,
      attempts: parent.attempts.signal,
      hard: parent.hard.signal,
    })
    parent.soft.abort()
    expect(s.signals.soft.aborted).toBe(true)
    expect(s.signals.attempts.aborted).toBe(false)
    expect(s.signals.hard.aborted).toBe(false)
    parent.attempts.abort()
    expect(s.signals.attempts.aborted).toBe(true)
    parent.hard.abort()
    expect(s.signals.hard.aborted).toBe(true)
  })

  it('accepts() says whether add() would take an offset', () => {
    const { s } = scheduler()
    expect(s.accepts('5')).toBe(true)
    s.add(entry('5', 'a'))
    expect(s.accepts('5')).toBe(false)
    expect(s.accepts('6')).toBe(true)
  })

  it('handles a long group queue (FIFO compaction)', () => {
    const { s, started } = scheduler()
    const entries = Array.from({ length: 3000 }, (_, i) => entry(String(i), 'k'))
    for (const e of entries) s.add(e)
    for (const e of entries) expect(s.resolve(e)).toBe(true)
    expect(started).toHaveLength(3000)
    expect(started.at(-1)).toBe('2999')
    expect(s.commitOffset()).toBe('3000')
  })
})

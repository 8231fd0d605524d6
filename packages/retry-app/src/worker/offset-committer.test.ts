import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import { noopLogger } from '@detour/core'
import { OffsetCommitter, type CommitClient } from './offset-committer.js'
import { parseOwnerMetadata } from './owner-metadata.js'
import { Takeover } from './takeover.js'
import type { CommittedOffset } from './worker-admin.js'

/** A kafkajs consumer stand-in: stores commits and emits COMMIT_OFFSETS unless told it is not running. */
class FakeConsumer implements CommitClient {
  readonly commits: Array<Array<{ topic: string; partition: number; offset: string; metadata: string }>> = []
  running = true
  failWith: Error | undefined
  delayMs = 0
  private listeners = new Set<() => void>()
  async commitOffsets(offsets: Array<{ topic: string; partition: number; offset: string; metadata: string }>): Promise<void> {
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs))
    if (this.failWith) throw this.failWith
    if (!this.running) return
    this.commits.push(offsets)
    for (const listener of this.listeners) listener()
  }
  onCommitted(listener: () => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }
}

describe('OffsetCommitter', () => {
  it('commits with the owner metadata and remembers what it committed', async () => {
    const consumer = new FakeConsumer()
    const committer = new OffsetCommitter(consumer, 'instance-a', noopLogger)
    const target = { topic: 't', partition: 0, offset: '5', state: 'active' } as const
    expect(committer.changed([target])).toEqual([target])
    expect(await committer.commit([target])).toEqual({ kind: 'committed' })
    expect(consumer.commits).toEqual([[{ topic: 't', partition: 0, offset: '5', metadata: 'detour:owner=instance-a;state=active' }]])
    expect(parseOwnerMetadata(consumer.commits[0]![0]!.metadata)).toEqual({ owner: 'instance-a', state: 'active' })
    expect(committer.committedOffset('t', 0)).toBe('5')
    expect(committer.changed([target])).toEqual([])
    // Same offset, new state: committed again (a release).
    expect(committer.changed([{ ...target, state: 'released' }])).toHaveLength(1)
    committer.forgetAll()
    expect(committer.changed([target])).toEqual([target])
  })

  it('says not-running when kafkajs returned without committing (no COMMIT_OFFSETS), and failed on an error', async () => {
    const consumer = new FakeConsumer()
    const committer = new OffsetCommitter(consumer, 'a', noopLogger)
    const target = { topic: 't', partition: 1, offset: '2', state: 'active' } as const
    consumer.running = false
    expect(await committer.commit([target])).toEqual({ kind: 'not-running' })
    expect(committer.committedOffset('t', 1)).toBeUndefined()
    const error = new Error('REBALANCE_IN_PROGRESS')
    consumer.failWith = error
    expect(await committer.commit([target])).toEqual({ kind: 'failed', error })
    expect(committer.changed([target])).toEqual([target])
  })

  it('runs one commit at a time, in call order (a release is never overtaken by an older active commit)', async () => {
    const consumer = new FakeConsumer()
    consumer.delayMs = 20
    const committer = new OffsetCommitter(consumer, 'a', noopLogger)
    const first = committer.commit([{ topic: 't', partition: 0, offset: '1', state: 'active' }])
    consumer.delayMs = 0
    const second = committer.commit([{ topic: 't', partition: 0, offset: '1', state: 'released' }])
    await Promise.all([first, second])
    expect(consumer.commits.map((c) => c[0]!.metadata)).toEqual(['detour:owner=a;state=active', 'detour:owner=a;state=released'])
  })

  it('parses only its own metadata format', () => {
    expect(parseOwnerMetadata(null)).toBeUndefined()
    expect(parseOwnerMetadata('')).toBeUndefined()
    expect(parseOwnerMetadata('something else')).toBeUndefined()
    expect(parseOwnerMetadata('detour:owner=x;state=paused')).toBeUndefined()
    expect(parseOwnerMetadata('detour:owner=x;state=released')).toEqual({ owner: 'x', state: 'released' })
  })

  it("F3: the holder re-asserts its unchanged claim, so a previous owner's late release does not stay the last word", async () => {
    // The broker's committed offset (and metadata) of the worker group for retry partition 0.
    let stored: CommittedOffset | undefined
    let now = 0
    const client = (instance: string): OffsetCommitter => {
      const emitter = new EventEmitter()
      return new OffsetCommitter(
        {
          commitOffsets: async (offsets) => {
            stored = { offset: offsets[0]!.offset, metadata: offsets[0]!.metadata }
            emitter.emit('c')
          },
          onCommitted: (listener) => {
            emitter.on('c', listener)
            return () => emitter.off('c', listener)
          },
        },
        instance,
        noopLogger,
        () => now,
      )
    }
    const a = client('A')
    const b = client('B')
    const target = (offset: string, state: 'active' | 'released') => ({ topic: 't', partition: 0, offset, state })
    await a.commit([target('5', 'active')])
    // A revoked; B timed out waiting for A's release, claimed the partition and went on to offset 9.
    await b.commit([target('5', 'active')])
    await b.commit([target('9', 'active')])
    // A's release lands now, in the new generation (the broker does not check the assignment).
    await a.commit([target('5', 'released')])
    expect(parseOwnerMetadata(stored!.metadata)).toEqual({ owner: 'A', state: 'released' })
    // Nothing changed in B's view: not committed again at once…
    expect(b.changed([target('9', 'active')], 5000)).toEqual([])
    // …but once the claim is as old as the re-assertion interval, it is.
    now += 5000
    const again = b.changed([target('9', 'active')], 5000)
    expect(again).toEqual([target('9', 'active')])
    await b.commit(again)
    expect(parseOwnerMetadata(stored!.metadata)).toEqual({ owner: 'B', state: 'active' })
    expect(stored!.offset).toBe('9')
    // Another rebalance gives partition 0 to C: it waits for B instead of starting at once.
    const c = new Takeover({ admin: { committedOffsets: async () => new Map([[0, stored!]]) }, instanceId: 'C', handlerTimeoutMs: 20, graceMs: 10, pollIntervalMs: 5, logger: noopLogger })
    expect(await c.whenFree('t', 0, new AbortController().signal)).toMatchObject({ waited: true, previousOwner: 'B' })
  })
})

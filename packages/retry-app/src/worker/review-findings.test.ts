// Adversarial review: demonstrations of findings (stand-ins only, no broker).
import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import { noopLogger } from '@detour/core'
import { unitTopics } from '../test-support/entries.js'
import { OffsetCommitter } from './offset-committer.js'
import { formatOwnerMetadata, parseOwnerMetadata } from './owner-metadata.js'
import { Takeover } from './takeover.js'
import type { CommittedOffset } from './worker-admin.js'

const retry = unitTopics.retry

describe('F3: a late `released` commit of the old owner overwrites the new owner\'s claim', () => {
  it('a third instance then starts at once while the claiming owner is still active', async () => {
    // The broker's committed offset (and metadata) of the worker group for retry partition 0.
    let stored: CommittedOffset | undefined
    const client = (instance: string) => {
      const emitter = new EventEmitter()
      return {
        emitter,
        committer: new OffsetCommitter(
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
        ),
      }
    }
    const a = client('A')
    const b = client('B')
    const target = (offset: string, state: 'active' | 'released') => ({ topic: retry, partition: 0, offset, state })
    await a.committer.commit([target('5', 'active')])
    // Rebalance: A revoked (handlers settling, its release commit delayed: coordinator failover, a commit
    // retried by kafkajs' retrier, or queued behind another commit in A's chain); B timed out waiting and claimed.
    await b.committer.commit([target('5', 'active')])
    // B went on to offset 9; its record 9 is held (or in a long backoff): its commit offset stays at 9.
    await b.committer.commit([target('9', 'active')])
    // A's release lands now, in the new generation (the broker does not check the assignment).
    await a.committer.commit([target('5', 'released')])
    expect(parseOwnerMetadata(stored!.metadata)).toEqual({ owner: 'A', state: 'released' })
    // B's commit loop does not commit again: nothing changed in its own view.
    expect(b.committer.changed([target('9', 'active')])).toEqual([])
    // Another rebalance gives partition 0 to C: it starts at once, while B's handlers may still run.
    const c = new Takeover({ admin: { committedOffsets: async () => new Map([[0, stored!]]) }, instanceId: 'C', handlerTimeoutMs: 30_000, logger: noopLogger })
    expect(await c.whenFree(retry, 0, new AbortController().signal)).toMatchObject({ waited: false })
    // …and C's first fetch starts at 5 (regressed) — below what B purged (up to 9): C's inspection reports
    // "records deleted before they were retried" (false alarm: error event + counter).
    expect(stored!.offset).toBe('5')
    expect(formatOwnerMetadata('A', 'released')).toBe(stored!.metadata)
  })
})


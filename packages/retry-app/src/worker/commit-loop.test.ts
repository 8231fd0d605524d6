import { describe, expect, it } from 'vitest'
import { Registry } from 'prom-client'
import { noopLogger } from '@detour/core'
import { RetryMetrics } from '../metrics/retry-metrics.js'
import { retryEntry, unitTopics } from '../test-support/entries.js'
import { CommitLoop } from './commit-loop.js'
import { OffsetCommitter } from './offset-committer.js'
import type { AssignedPartition } from './partition-assignments.js'
import { PartitionScheduler } from './partition-scheduler.js'
import type { CommittedEvent } from './types.js'
import { WorkTracker } from './work-tracker.js'

/** A partition of this instance with entries at these offsets (the first `resolved` of them resolved). */
function claimedPartition(partition: number, offsets: string[], resolved: number): AssignedPartition {
  const scheduler = new PartitionScheduler(unitTopics.retry, partition, { start: () => {} })
  const entries = offsets.map((offset, i) => retryEntry(offset, `k${i}`, { partition }))
  for (const entry of entries) scheduler.add(entry)
  for (const entry of entries.slice(0, resolved)) scheduler.resolve(entry)
  return { key: `p${partition}`, scheduler, topics: unitTopics, takenOver: Promise.resolve(), phase: 'active', claimed: true, claim: undefined }
}

function setup(runs: AssignedPartition[], options: { fail?: Error; stable?: boolean } = {}) {
  const commits: Array<Array<{ partition: number; offset: string; metadata: string }>> = []
  const purges: Array<[number, string]> = []
  const committed: CommittedEvent[] = []
  const errors: string[] = []
  const listeners = new Set<() => void>()
  const committer = new OffsetCommitter(
    {
      commitOffsets: async (offsets) => {
        if (options.fail) throw options.fail
        commits.push(offsets.map(({ partition, offset, metadata }) => ({ partition, offset, metadata })))
        for (const listener of listeners) listener()
      },
      onCommitted: (listener) => {
        listeners.add(listener)
        return () => listeners.delete(listener)
      },
    },
    'me',
    noopLogger,
  )
  const background = new WorkTracker()
  const loop = new CommitLoop({
    intervalMs: 10,
    committer,
    retention: {
      purge: async (_topic, _source, partition, offset) => {
        purges.push([partition, offset])
      },
    },
    claimed: () => runs,
    consumerStable: () => options.stable ?? true,
    background,
    metrics: new RetryMetrics(new Registry()),
    logger: noopLogger,
    onCommitted: (event) => committed.push(event),
    reportError: (message) => errors.push(message),
  })
  return { loop, commits, purges, committed, errors, background }
}

describe('CommitLoop', () => {
  it('commits each claimed partition at its lowest unresolved record, only when it moved, and purges below it', async () => {
    const runs = [claimedPartition(0, ['0', '1', '2'], 1), claimedPartition(1, ['5'], 1)]
    const { loop, commits, purges, committed, background } = setup(runs)
    await loop.tick()
    expect(commits).toEqual([
      [
        { partition: 0, offset: '1', metadata: 'detour:owner=me;state=active' },
        { partition: 1, offset: '6', metadata: 'detour:owner=me;state=active' },
      ],
    ])
    expect(committed[0]!.offsets.map((o) => o.state)).toEqual(['active', 'active'])
    await background.idle(100)
    expect(purges).toEqual([
      [0, '1'],
      [1, '6'],
    ])
    await loop.tick()
    expect(commits).toHaveLength(1)
    expect(loop.committedOffset(unitTopics.retry, 0)).toBe('1')
    loop.forgetCommitted()
    await loop.tick()
    expect(commits).toHaveLength(2)
  })

  it('skips commits while the group rebalances, and reports failures without throwing', async () => {
    const runs = [claimedPartition(0, ['0'], 1)]
    const rebalancing = setup(runs, { stable: false })
    await rebalancing.loop.tick()
    expect(rebalancing.commits).toEqual([])
    const rebalanceError = Object.assign(new Error('rebalance'), { type: 'REBALANCE_IN_PROGRESS' })
    const refused = setup(runs, { fail: rebalanceError })
    await refused.loop.tick()
    expect(refused.errors).toEqual([])
    const broken = setup(runs, { fail: new Error('broker down') })
    await broken.loop.tick()
    expect(broken.errors).toEqual(['Committing retry offsets failed; retrying at the next interval'])
  })

  it('the final commit releases partitions whose work settled, and keeps the others active', async () => {
    const settled = claimedPartition(0, ['0', '1'], 2)
    const busy = claimedPartition(1, ['3'], 0)
    busy.scheduler.work.track(new Promise(() => {}))
    const { loop, commits } = setup([settled, busy])
    expect(await loop.final()).toBe(true)
    expect(commits).toEqual([
      [
        { partition: 0, offset: '2', metadata: 'detour:owner=me;state=released' },
        { partition: 1, offset: '3', metadata: 'detour:owner=me;state=active' },
      ],
    ])
    expect(await setup([settled], { fail: new Error('gone') }).loop.final()).toBe(false)
  })

  it('runs every interval until its signal aborts', async () => {
    const runs = [claimedPartition(0, ['0'], 1)]
    const { loop, commits } = setup(runs)
    const controller = new AbortController()
    loop.start(controller.signal)
    expect(loop.started).toBe(true)
    await new Promise((resolve) => setTimeout(resolve, 40))
    controller.abort()
    await loop.stopped()
    expect(commits).toHaveLength(1)
  })
})

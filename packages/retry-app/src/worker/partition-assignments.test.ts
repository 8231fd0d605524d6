import { describe, expect, it } from 'vitest'
import { Registry } from 'prom-client'
import { noopLogger, type TopicPartition } from '@detour/core'
import { RetryMetrics } from '../metrics/retry-metrics.js'
import { retryMessage, unitTopics } from '../test-support/entries.js'
import type { CommitResult, CommitTarget } from './offset-committer.js'
import { PartitionAssignments, type AssignmentsContext } from './partition-assignments.js'
import type { PartitionScheduler } from './partition-scheduler.js'
import type { RetryEntry } from './retry-entry.js'
import type { TakeoverResult } from './takeover.js'
import type { TakeoverEvent } from './types.js'
import { WorkTracker } from './work-tracker.js'

const retry = unitTopics.retry

/** A promise the test resolves. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve: (value: T) => void = () => {}
  const promise = new Promise<T>((r) => (resolve = r))
  return { promise, resolve }
}

const tick = (ms = 5): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

function setup(options: { handlerTimeoutMs?: number } = {}) {
  const log: string[] = []
  const commits: CommitTarget[][] = []
  const takeovers = new Map<number, { promise: Promise<TakeoverResult>; resolve: (result: TakeoverResult) => void }>()
  const barriers: number[] = []
  const started: Array<{ entry: RetryEntry; scheduler: PartitionScheduler }> = []
  const released: CommitTarget[] = []
  const takenOver: TakeoverEvent[] = []
  const background = new WorkTracker()
  const registry = new Registry()
  const context: AssignmentsContext = {
    topicsByRetryTopic: new Map([[retry, unitTopics]]),
    groupId: 'app',
    handlerTimeoutMs: options.handlerTimeoutMs ?? 200,
    commitIntervalMs: 10,
    signals: {},
    fetch: {
      pause: (partitions: readonly TopicPartition[]) => log.push(`pause ${partitions.map((p) => p.partition).join(',')}`),
      resume: (partitions: readonly TopicPartition[]) => log.push(`resume ${partitions.map((p) => p.partition).join(',')}`),
    },
    consumerStable: () => true,
    takeover: {
      whenFree: (_topic, partition) => {
        const waiting = deferred<TakeoverResult>()
        takeovers.set(partition, waiting)
        log.push(`takeover ${partition}`)
        return waiting.promise
      },
    },
    committer: {
      commit: async (targets: readonly CommitTarget[]): Promise<CommitResult> => {
        commits.push([...targets])
        log.push(`commit ${targets.map((t) => `${t.partition}@${t.offset}:${t.state}`).join(',')}`)
        return { kind: 'committed' }
      },
      forget: (_topic, partition) => log.push(`forget ${partition}`),
    },
    committedOffsets: async () => {
      log.push('read committed')
      return new Map([[0, { offset: '0', metadata: null }]])
    },
    retention: { checkAssigned: async () => {}, forget: () => {} },
    resolution: {
      barrier: async (_source, partition) => {
        barriers.push(partition)
        log.push(`barrier ${partition}`)
      },
    },
    buffer: { isPaused: () => false, forget: () => {}, removed: () => {} },
    held: { removePartition: () => {} },
    background,
    metrics: new RetryMetrics(registry),
    logger: noopLogger,
    start: (entry, scheduler) => started.push({ entry, scheduler }),
    onTakenOver: (event) => takenOver.push(event),
    onReleased: (target) => released.push(target),
    reportError: (message) => log.push(`error ${message}`),
  }
  return { assignments: new PartitionAssignments(context), log, commits, takeovers, barriers, started, released, takenOver, background }
}

const free: TakeoverResult = { waited: false, committed: undefined }

describe('PartitionAssignments', () => {
  it('pauses a new partition until its committed offset is inspected, then buffers its records until the takeover, the claim and the barrier', async () => {
    const { assignments, log, takeovers, started } = setup()
    expect(assignments.onJoin({ [retry]: [0], 'other-topic': [0] })).toEqual({ assigned: [{ topic: retry, partition: 0 }], revoked: [] })
    expect(log[0]).toBe('pause 0')
    await tick()
    expect(log).toEqual(['pause 0', 'read committed', 'resume 0', 'takeover 0'])
    // Records fetched meanwhile are buffered: their entries start, but wait for the barrier.
    expect(assignments.accept(retry, 0, [retryMessage('0', 'a'), retryMessage('1', 'b')])).toBe(2)
    expect(assignments.accept(retry, 0, [retryMessage('1', 'b')])).toBe(0)
    expect(started.map((s) => s.entry.offset)).toEqual(['0', '1'])
    let passed = false
    void started[0]!.entry.barrier!.then(() => (passed = true))
    await tick()
    expect(passed).toBe(false)
    expect(assignments.all()[0]).toMatchObject({ phase: 'waiting', claimed: false })
    takeovers.get(0)!.resolve(free)
    await tick()
    expect(passed).toBe(true)
    // The claim (state=active at the first record) comes before the barrier; one barrier per batch.
    expect(log.slice(4)).toEqual(['commit 0@0:active', 'barrier 0'])
    expect(assignments.all()[0]).toMatchObject({ phase: 'active', claimed: true })
    expect([...assignments.claimed()]).toHaveLength(1)
    // A later batch: a barrier of its own, no second claim.
    assignments.accept(retry, 0, [retryMessage('2', 'c')])
    await tick()
    expect(log.slice(6)).toEqual(['barrier 0'])
  })

  it('reports a takeover that waited', async () => {
    const { assignments, takeovers, takenOver } = setup()
    assignments.onJoin({ [retry]: [0] })
    await tick()
    takeovers.get(0)!.resolve({ waited: true, outcome: 'released', previousOwner: 'other', waitedMs: 700, committed: undefined })
    await tick()
    expect(takenOver).toEqual([{ topic: retry, partition: 0, outcome: 'released', previousOwner: 'other', waitedMs: 700 }])
  })

  it('hands a revoked partition over once its handlers settled: released at the lowest unresolved record', async () => {
    const { assignments, log, takeovers, started, released, background } = setup()
    assignments.onJoin({ [retry]: [0] })
    await tick()
    takeovers.get(0)!.resolve(free)
    assignments.accept(retry, 0, [retryMessage('0', 'a'), retryMessage('1', 'b')])
    await tick()
    // a's handler still runs; b's handler finished.
    const running = deferred()
    const [a, b] = started
    a!.scheduler.work.track(running.promise)
    b!.scheduler.resolve(b!.entry)
    expect(assignments.onJoin({})).toEqual({ assigned: [], revoked: [{ topic: retry, partition: 0 }] })
    expect(a!.scheduler.phase).toBe('revoking')
    expect(a!.scheduler.signals.attempts.aborted).toBe(true)
    expect(assignments.size).toBe(0)
    expect(assignments.all()).toHaveLength(1)
    await tick(20)
    expect(released).toEqual([])
    // a's handler succeeded after all: resolved (its tombstone written), then the release commits past it.
    a!.scheduler.resolve(a!.entry)
    running.resolve()
    await background.idle(1000)
    expect(released).toEqual([{ topic: retry, partition: 0, offset: '2', state: 'released' }])
    expect(log.slice(-2)).toEqual(['commit 0@2:released', 'forget 0'])
    expect(assignments.all()).toEqual([])
  })

  it('does not release a partition whose handlers outlive handlerTimeoutMs, nor one it never claimed', async () => {
    const { assignments, takeovers, started, released, commits, background } = setup({ handlerTimeoutMs: 30 })
    assignments.onJoin({ [retry]: [0, 1] })
    await tick()
    takeovers.get(0)!.resolve(free)
    assignments.accept(retry, 0, [retryMessage('0', 'a')])
    await tick()
    started[0]!.scheduler.work.track(new Promise(() => {}))
    // Partition 1 never got past its takeover: nothing of this instance to release there.
    assignments.onJoin({})
    await background.idle(1000)
    expect(released).toEqual([])
    expect(commits.filter((c) => c[0]!.state === 'released')).toEqual([])
  })

  it('a partition assigned back while it is handed over waits for its old handlers first', async () => {
    const { assignments, log, takeovers, started, background } = setup()
    assignments.onJoin({ [retry]: [0] })
    await tick()
    takeovers.get(0)!.resolve(free)
    assignments.accept(retry, 0, [retryMessage('0', 'a')])
    await tick()
    const running = deferred()
    started[0]!.scheduler.work.track(running.promise)
    assignments.onJoin({})
    takeovers.delete(0)
    assignments.onJoin({ [retry]: [0] })
    await tick(20)
    expect(takeovers.has(0)).toBe(false)
    running.resolve()
    await background.idle(1000)
    await tick()
    expect(takeovers.has(0)).toBe(true)
    // The old hand-over did not release (or forget) what the new assignment owns.
    expect(log.filter((l) => l.includes('released') || l.startsWith('forget'))).toEqual([])
  })
})

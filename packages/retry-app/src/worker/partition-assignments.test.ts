import { describe, expect, it } from 'vitest'
import { Registry } from 'prom-client'
import { noopLogger, type TopicPartition } from '@detour/core'
import { RetryMetrics } from '../metrics/retry-metrics.js'
import { retryMessage, unitTopics } from '../test-support/entries.js'
import type { CommitResult, CommitTarget } from './offset-committer.js'
import { formatOwnerMetadata } from './owner-metadata.js'
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

function setup(options: { handlerTimeoutMs?: number; metadata?: () => string | null } = {}) {
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
    instanceId: 'me',
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
      return new Map([[0, { offset: '0', metadata: options.metadata?.() ?? null }]])
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

  it('F2: a partition assigned back waits for its old handlers however long past handlerTimeoutMs they run', async () => {
    const { assignments, takeovers, started } = setup({ handlerTimeoutMs: 30 })
    assignments.onJoin({ [retry]: [0] })
    await tick()
    takeovers.get(0)!.resolve(free)
    assignments.accept(retry, 0, [retryMessage('0', 'k', { sourceOffset: '10' })])
    await tick()
    // The handler of k@10 ignores its abort signal (or its side effect takes longer than handlerTimeoutMs).
    const oldHandler = deferred()
    const old = started[0]!.scheduler
    old.work.track(oldHandler.promise)
    takeovers.delete(0)
    assignments.onJoin({}) // revoked…
    assignments.onJoin({ [retry]: [0] }) // …and assigned back in the next generation
    await tick(120)
    // Four times handlerTimeoutMs later: no takeover, so no record of the partition may start.
    expect(takeovers.has(0)).toBe(false)
    assignments.accept(retry, 0, [retryMessage('0', 'k', { sourceOffset: '10' }), retryMessage('1', 'k', { sourceOffset: '11' })])
    const fresh = started.filter((s) => s.scheduler !== old)
    let passed = false
    void fresh[0]!.entry.barrier!.then(() => (passed = true))
    await tick(20)
    expect(passed).toBe(false)
    oldHandler.resolve()
    await tick(20)
    takeovers.get(0)!.resolve(free)
    await tick()
    expect(passed).toBe(true)
    expect(old.work.size).toBe(0)
  })

  it('F2: the wait for the old handlers ends (aborted) when the new assignment is revoked too', async () => {
    const { assignments, takeovers, started } = setup({ handlerTimeoutMs: 30 })
    assignments.onJoin({ [retry]: [0] })
    await tick()
    takeovers.get(0)!.resolve(free)
    assignments.accept(retry, 0, [retryMessage('0', 'k')])
    await tick()
    started[0]!.scheduler.work.track(new Promise(() => {}))
    assignments.onJoin({})
    assignments.onJoin({ [retry]: [0] })
    const second = assignments.get(retry, 0)!
    assignments.onJoin({})
    await expect(second.takenOver).rejects.toThrow(/Aborted/)
  })

  it('F1: a regained membership takes a kept partition over again: old work stopped, then takeover, claim and barrier before any attempt', async () => {
    const { assignments, log, takeovers, started } = setup()
    assignments.onJoin({ [retry]: [0] })
    await tick()
    takeovers.get(0)!.resolve(free)
    assignments.accept(retry, 0, [retryMessage('0', 'k', { sourceOffset: '10' }), retryMessage('1', 'k', { sourceOffset: '11' })])
    await started[0]!.entry.barrier
    const before = assignments.get(retry, 0)!.scheduler
    expect(log.filter((l) => l.startsWith('takeover') || l.startsWith('barrier') || l.includes(':active'))).toEqual(['takeover 0', 'commit 0@0:active', 'barrier 0'])

    // kafkajs crashed (it leaves the group before it restarts the consumer): the work stops at once.
    expect(assignments.lose()).toEqual([{ topic: retry, partition: 0 }])
    expect(before.signals.soft.aborted).toBe(true)
    expect(before.signals.attempts.aborted).toBe(true)
    expect(assignments.accept(retry, 0, [retryMessage('2', 'k')])).toBe(0)
    // kafkajs restarted it under a new member id and got partition 0 back: a new assignment, not a kept one.
    takeovers.delete(0)
    expect(assignments.onJoin({ [retry]: [0] }, { regained: true })).toEqual({ assigned: [{ topic: retry, partition: 0 }], revoked: [{ topic: retry, partition: 0 }] })
    const after = assignments.get(retry, 0)!
    expect(after.scheduler).not.toBe(before)
    expect(after).toMatchObject({ phase: 'waiting', claimed: false })
    await tick(20)
    // kafkajs refetches from the committed offset: k@10 waits for the takeover (the other member's release), a new claim and a new barrier.
    assignments.accept(retry, 0, [retryMessage('0', 'k', { sourceOffset: '10' }), retryMessage('1', 'k', { sourceOffset: '11' })])
    const fresh = started.filter((s) => s.scheduler === after.scheduler)
    expect(fresh.map((s) => s.entry.offset)).toEqual(['0'])
    let passed = false
    void fresh[0]!.entry.barrier!.then(() => (passed = true))
    await tick(20)
    expect(passed).toBe(false)
    expect(takeovers.has(0)).toBe(true)
    takeovers.get(0)!.resolve(free)
    await tick()
    expect(passed).toBe(true)
    expect(log.filter((l) => l.startsWith('takeover') || l.startsWith('barrier') || l.includes(':active'))).toEqual([
      'takeover 0',
      'commit 0@0:active',
      'barrier 0',
      'takeover 0',
      'commit 0@0:active',
      'barrier 0',
    ])
  })

  it('F1: a join that does not regain the membership keeps its partitions as they are', async () => {
    const { assignments, takeovers } = setup()
    assignments.onJoin({ [retry]: [0] })
    await tick()
    takeovers.get(0)!.resolve(free)
    const before = assignments.get(retry, 0)!.scheduler
    expect(assignments.onJoin({ [retry]: [0] })).toEqual({ assigned: [], revoked: [] })
    expect(assignments.get(retry, 0)!.scheduler).toBe(before)
    expect(before.signals.soft.aborted).toBe(false)
  })

  it('F3: does not release a revoked partition that its new owner has claimed already (the release would overwrite the claim)', async () => {
    let metadata: string | null = formatOwnerMetadata('me', 'active')
    const { assignments, takeovers, started, released, commits, background } = setup({ metadata: () => metadata })
    assignments.onJoin({ [retry]: [0] })
    await tick()
    takeovers.get(0)!.resolve(free)
    assignments.accept(retry, 0, [retryMessage('0', 'a')])
    await tick()
    const running = deferred()
    started[0]!.scheduler.work.track(running.promise)
    assignments.onJoin({})
    // The new owner gave up waiting and claimed the partition before this instance's handlers settled.
    metadata = formatOwnerMetadata('new-owner', 'active')
    started[0]!.scheduler.resolve(started[0]!.entry)
    running.resolve()
    await background.idle(1000)
    expect(released).toEqual([])
    expect(commits.filter((c) => c[0]!.state === 'released')).toEqual([])
  })
})

// Adversarial review: demonstrations of findings (stand-ins only, no broker).
import { EventEmitter } from 'node:events'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { IMemberAssignment } from 'kafkajs'
import { Registry } from 'prom-client'
import { noopLogger, type TopicPartition } from '@detour/core'
import { RetryMetrics } from '../metrics/retry-metrics.js'
import { retryMessage, unitTopics } from '../test-support/entries.js'
import { ConcurrencyLimiter } from './concurrency-limiter.js'
import { ConsumerWatch, type WatchedConsumer } from './consumer-watch.js'
import { OffsetCommitter } from './offset-committer.js'
import { formatOwnerMetadata, parseOwnerMetadata } from './owner-metadata.js'
import { PartitionAssignments, type AssignmentsContext } from './partition-assignments.js'
import type { PartitionScheduler } from './partition-scheduler.js'
import type { RetryEntry } from './retry-entry.js'
import { Takeover, type TakeoverResult } from './takeover.js'
import type { CommittedOffset } from './worker-admin.js'
import { WorkTracker } from './work-tracker.js'

const retry = unitTopics.retry
const tick = (ms = 5): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

const events = {
  GROUP_JOIN: 'consumer.group_join',
  REBALANCING: 'consumer.rebalancing',
  CRASH: 'consumer.crash',
  HEARTBEAT: 'consumer.heartbeat',
} as const

/** kafkajs consumer stand-in: the test emits its instrumentation events (payloads as kafkajs 2.2.4 builds them). */
class FakeConsumer {
  readonly emitter = new EventEmitter()
  readonly events = events
  on(event: string, listener: (event: { payload: unknown }) => void): () => void {
    this.emitter.on(event, listener)
    return () => this.emitter.off(event, listener)
  }
  join(memberId: string, memberAssignment: IMemberAssignment): void {
    this.emitter.emit(events.GROUP_JOIN, { payload: { memberId, memberAssignment } })
  }
  crash(restart: boolean): void {
    this.emitter.emit(events.CRASH, { payload: { error: new Error('KafkaJSNumberOfRetriesExceeded'), restart } })
  }
}

function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve: (value: T) => void = () => {}
  const promise = new Promise<T>((r) => (resolve = r))
  return { promise, resolve }
}

/** The worker's wiring of the watch and the assignments (retry-worker.ts:125, 183, 513), with stand-ins for the rest. */
function worker(options: { handlerTimeoutMs?: number } = {}) {
  const consumer = new FakeConsumer()
  const log: string[] = []
  const takeovers: Array<{ partition: number; resolve: (r: TakeoverResult) => void }> = []
  const started: Array<{ entry: RetryEntry; scheduler: PartitionScheduler }> = []
  const holder: { watch?: ConsumerWatch } = {}
  const context: AssignmentsContext = {
    topicsByRetryTopic: new Map([[retry, unitTopics]]),
    groupId: 'app',
    handlerTimeoutMs: options.handlerTimeoutMs ?? 200,
    commitIntervalMs: 10,
    signals: {},
    fetch: {
      pause: (p: readonly TopicPartition[]) => log.push(`pause ${p.map((x) => x.partition).join(',')}`),
      resume: (p: readonly TopicPartition[]) => log.push(`resume ${p.map((x) => x.partition).join(',')}`),
    },
    consumerStable: () => holder.watch?.stable ?? false,
    takeover: {
      whenFree: (_topic, partition) => {
        const d = deferred<TakeoverResult>()
        takeovers.push({ partition, resolve: d.resolve })
        log.push(`takeover ${partition}`)
        return d.promise
      },
    },
    committer: {
      commit: async (targets) => {
        log.push(`commit ${targets.map((t) => `${t.partition}@${t.offset}:${t.state}`).join(',')}`)
        return { kind: 'committed' }
      },
      forget: () => {},
    },
    committedOffsets: async () => new Map([[0, { offset: '0', metadata: null }]]),
    retention: { checkAssigned: async () => {}, forget: () => {} },
    resolution: {
      barrier: async (_s, partition) => {
        log.push(`barrier ${partition}`)
      },
    },
    buffer: { isPaused: () => false, forget: () => {}, removed: () => {} },
    held: { removePartition: () => {} },
    background: new WorkTracker(),
    metrics: new RetryMetrics(new Registry()),
    logger: noopLogger,
    start: (entry, scheduler) => started.push({ entry, scheduler }),
    onTakenOver: () => {},
    onReleased: () => {},
    reportError: (message) => log.push(`error ${message}`),
  }
  const assignments = new PartitionAssignments(context)
  const joins: Array<{ assigned: TopicPartition[]; revoked: TopicPartition[] }> = []
  const watch = new ConsumerWatch(
    consumer as unknown as WatchedConsumer,
    { onJoin: (assignment) => joins.push(assignments.onJoin(assignment)), onCrash: () => {} },
    noopLogger,
  )
  holder.watch = watch
  return { consumer, watch, assignments, log, takeovers, started, joins }
}

afterEach(() => {
  vi.useRealTimers()
})

describe('F1: a lost and regained membership is taken for a kept partition', () => {
  it('after a kafkajs crash (LeaveGroup) and rejoin as a NEW member, partition 0 continues with no takeover, claim or barrier', async () => {
    const { consumer, watch, assignments, log, takeovers, started, joins } = worker()
    consumer.join('member-A1', { [retry]: [0] })
    await tick()
    takeovers[0]!.resolve({ waited: false, committed: undefined })
    assignments.accept(retry, 0, [retryMessage('0', 'k', { sourceOffset: '10' }), retryMessage('1', 'k', { sourceOffset: '11' })])
    await started[0]!.entry.barrier
    const before = assignments.get(retry, 0)!.scheduler
    expect(log.filter((l) => l.startsWith('takeover') || l.startsWith('barrier') || l.includes(':active'))).toEqual(['takeover 0', 'commit 0@0:active', 'barrier 0'])

    // kafkajs crashes (runner.js:166 → index.js:257 disconnect → runner.stop → consumerGroup.leave()):
    // this member LEAVES the group, the group rebalances without it, another worker gets partition 0,
    // waits handlerTimeoutMs + 2 s for a release that never comes, claims it and processes group k.
    consumer.crash(true)
    expect(watch.stable).toBe(false)
    // kafkajs restarts with a new ConsumerGroup (memberId null → a new member id) and gets partition 0 back.
    consumer.join('member-A2', { [retry]: [0] })

    // The worker sees nothing but "kept": no revocation, no takeover (so no wait for the other worker's
    // release), no new claim, no new barrier; the same in-memory scheduler, its entries' barriers long passed,
    // and the gate is open at once.
    expect(joins[1]).toEqual({ assigned: [], revoked: [] })
    expect(assignments.get(retry, 0)!.scheduler).toBe(before)
    await tick(20)
    expect(takeovers).toHaveLength(1)
    expect(log.filter((l) => l.startsWith('barrier'))).toEqual(['barrier 0'])
    expect(watch.stable).toBe(true)
    // Entry 0 of group k (still unresolved here) may be attempted at once; its only guard is isPending() on
    // a follower store that no barrier has synchronised with the other worker's tombstones.
    expect(started[0]!.entry.state).toBe('active')
  })

  it('an evicted member stays "stable" however long it has not heartbeat (kafkajs rejoins on UNKNOWN_MEMBER_ID without REBALANCING)', () => {
    vi.useFakeTimers()
    const { consumer, watch } = worker()
    consumer.join('member-A1', { [retry]: [0] })
    expect(watch.stable).toBe(true)
    // No HEARTBEAT for 10 minutes (sessionTimeout is 30 s): the coordinator evicted this member long ago
    // and gave its partitions to others, yet attempts keep starting here.
    vi.advanceTimersByTime(10 * 60_000)
    expect(watch.lastHeartbeat).toBeUndefined()
    expect(watch.stable).toBe(true)
  })
})

describe('F2: a partition assigned back to the same instance overlaps with its still-running old handler', () => {
  it('the new scheduler starts group k after handlerTimeoutMs although the old handler of group k has not returned', async () => {
    const { consumer, assignments, takeovers, started } = worker({ handlerTimeoutMs: 30 })
    consumer.join('m', { [retry]: [0] })
    await tick()
    takeovers[0]!.resolve({ waited: false, committed: undefined })
    assignments.accept(retry, 0, [retryMessage('0', 'k', { sourceOffset: '10' })])
    await tick()
    // The handler of k@10 ignores its abort signal (or its side effect takes longer than handlerTimeoutMs).
    const oldHandler = deferred()
    started[0]!.scheduler.work.track(oldHandler.promise)
    consumer.join('m', {}) // revoked…
    consumer.join('m', { [retry]: [0] }) // …and assigned back in the next generation
    await tick(80)
    // Own metadata → free at once; kafkajs refetches from the committed offset; k@10 is still pending.
    expect(takeovers).toHaveLength(2)
    takeovers[1]!.resolve({ waited: false, committed: undefined })
    assignments.accept(retry, 0, [retryMessage('0', 'k', { sourceOffset: '10' }), retryMessage('1', 'k', { sourceOffset: '11' })])
    await tick()
    const fresh = started.filter((s) => s.scheduler !== started[0]!.scheduler)
    expect(fresh.map((s) => s.entry.offset)).toEqual(['0'])
    await fresh[0]!.entry.barrier
    // The second run of k@10 is released to the processor while the first one still runs in this very
    // process; once it resolves, k@11 runs, and the old k@10 may finish after it (a stale replay).
    expect(started[0]!.scheduler.work.size).toBe(1)
  })
})

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

describe('F1 end to end (parts wired as retry-worker.ts wires them): a stale replay after a rejoin', () => {
  it('A re-runs k@10 after B processed k@10 and k@11, because no takeover or barrier follows the rejoin', async () => {
    const { GroupStore, groupKeyToStoreKey } = await import('@detour/core')
    const { Resolution } = await import('./resolution.js')
    const { RetryProcessor } = await import('./retry-processor.js')
    const { HandOffWriter } = await import('./hand-off-writer.js')
    const processed: string[] = []
    // A's follower store: k@10 and k@11 pending. A's follower lags after the outage (its own consumer was
    // restarted too): it has not applied B's tombstones yet. Only a barrier would make A wait for them.
    const store = new GroupStore()
    const resolution = new Resolution({
      follower: { running: true, start: async () => {}, stop: async () => {}, waitForPosition: async () => {}, position: () => 0n },
      store,
      writeBarrier: async () => 0n,
      logger: noopLogger,
    })
    const w = worker()
    let failFirst = true
    const processor = new RetryProcessor(
      {
        handler: async ({ message }) => {
          processed.push(`A:${message.offset}`)
          if (failFirst) {
            failFirst = false
            throw new Error('downstream unavailable')
          }
        },
        classify: undefined,
        backoff: () => 50,
        maxAttempts: 5,
        maxRetryDurationMs: 60_000,
        exhaustedPolicy: 'hold',
        handlerTimeoutMs: 1000,
        groupId: 'app',
      },
      {
        limiter: new ConcurrencyLimiter(4),
        writer: new HandOffWriter({ send: async () => [{ topicName: 'r', partition: 0, errorCode: 0, baseOffset: '1000' }] }, () => 1, noopLogger, () => {}),
        gate: { whenOpen: (_e, signal) => w.watch.whenStable(signal), isOpen: () => w.watch.stable },
        resolution,
        metrics: new RetryMetrics(new Registry()),
        logger: noopLogger,
      },
    )
    const outcomes: string[] = []
    w.consumer.join('member-A1', { [retry]: [0] })
    await tick()
    w.takeovers[0]!.resolve({ waited: false, committed: undefined })
    for (const sourceOffset of ['10', '11']) {
      store.add('orders', 0, groupKeyToStoreKey(Buffer.from('k'), `orders/0/${sourceOffset}`), `orders/0/${sourceOffset}`)
    }
    w.assignments.accept(retry, 0, [retryMessage('0', 'k', { sourceOffset: '10' }), retryMessage('1', 'k', { sourceOffset: '11' })])
    const head = w.started[0]!
    const run = processor.process(head.entry, head.scheduler).then((o) => {
      outcomes.push(o.kind)
      if (o.kind === 'resolved') head.scheduler.resolve(head.entry)
    })
    // A's first attempt of k@10 fails; A backs off 50 ms. The consumer crashes (network trouble) before it ends.
    await tick(20)
    w.consumer.crash(true)
    // Meanwhile (A out of the group longer than the takeover timeout) B processes k@10 then k@11.
    processed.push('B:10', 'B:11')
    // A's consumer is restarted by kafkajs and gets partition 0 back.
    w.consumer.join('member-A2', { [retry]: [0] })
    await run
    expect(processed).toEqual(['A:10', 'B:10', 'B:11', 'A:10'])
    // k@10 processed again after k@11 was processed, and k@11 is not processed again after it: a stale replay.
    expect(w.log.filter((l) => l.startsWith('barrier') || l.startsWith('takeover'))).toEqual(['takeover 0', 'barrier 0'])
    expect(outcomes).toEqual(['resolved'])
  })
})

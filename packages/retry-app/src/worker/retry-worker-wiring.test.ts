// The worker's parts wired as retry-worker.ts wires them (stand-ins for Kafka): membership losses.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { Registry } from 'prom-client'
import { noopLogger, type TopicPartition } from '@detour/core'
import { RetryMetrics } from '../metrics/retry-metrics.js'
import { retryMessage, unitTopics } from '../test-support/entries.js'
import { FakeConsumer } from '../test-support/fake-consumer.js'
import { ConcurrencyLimiter } from './concurrency-limiter.js'
import { ConsumerWatch, type WatchedConsumer } from './consumer-watch.js'
import { PartitionAssignments, type AssignmentsContext } from './partition-assignments.js'
import type { PartitionScheduler } from './partition-scheduler.js'
import type { RetryEntry } from './retry-entry.js'
import type { TakeoverResult } from './takeover.js'
import { WorkTracker } from './work-tracker.js'

const retry = unitTopics.retry
const tick = (ms = 5): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

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
    instanceId: 'me',
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
    { onJoin: (assignment, info) => joins.push(assignments.onJoin(assignment, info)), onCrash: () => {}, onLost: () => assignments.lose() },
    noopLogger,
  )
  holder.watch = watch
  return { consumer, watch, assignments, log, takeovers, started, joins }
}

afterEach(() => {
  vi.useRealTimers()
})

describe('retry worker wiring: a lost and regained membership', () => {
  it('F1: A does not re-run k@10 after B processed k@10 and k@11: the crash stops its work, and the rejoin goes through takeover and barrier', async () => {
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
    w.consumer.join({ [retry]: [0] }, 'member-A1')
    await tick()
    w.takeovers[0]!.resolve({ waited: false, committed: undefined })
    for (const sourceOffset of ['10', '11']) {
      store.add('orders', 0, groupKeyToStoreKey(Buffer.from('k'), `orders/0/${sourceOffset}`), `orders/0/${sourceOffset}`)
    }
    w.assignments.accept(retry, 0, [retryMessage('0', 'k', { sourceOffset: '10' }), retryMessage('1', 'k', { sourceOffset: '11' })])
    const head = w.started[0]!
    const run = processor.process(head.entry, head.scheduler).then((o: { kind: string }) => {
      outcomes.push(o.kind)
      if (o.kind === 'resolved') head.scheduler.resolve(head.entry)
    })
    // A's first attempt of k@10 fails; A backs off 50 ms. The consumer crashes (network trouble) before it ends.
    await tick(20)
    w.consumer.crash(true)
    // Meanwhile (A out of the group longer than the takeover timeout) B processes k@10 then k@11.
    processed.push('B:10', 'B:11')
    // A's consumer is restarted by kafkajs and gets partition 0 back.
    w.consumer.join({ [retry]: [0] }, 'member-A2')
    await run
    // A's attempt of k@10 ended at the crash (its backoff aborted): nothing ran after B's k@11.
    expect(processed).toEqual(['A:10', 'B:10', 'B:11'])
    expect(outcomes).toEqual(['stopped'])
    // The rejoin is a new assignment of partition 0: a second takeover, and no attempt before it, a claim and a barrier.
    expect(w.joins[1]).toEqual({ assigned: [{ topic: retry, partition: 0 }], revoked: [{ topic: retry, partition: 0 }] })
    await tick(20)
    expect(w.log.filter((l) => l.startsWith('barrier') || l.startsWith('takeover'))).toEqual(['takeover 0', 'barrier 0', 'takeover 0'])
    w.takeovers[1]!.resolve({ waited: false, committed: undefined })
    w.assignments.accept(retry, 0, [retryMessage('0', 'k', { sourceOffset: '10' }), retryMessage('1', 'k', { sourceOffset: '11' })])
    await w.started.at(-1)!.entry.barrier
    expect(w.log.filter((l) => l.startsWith('barrier') || l.startsWith('takeover'))).toEqual(['takeover 0', 'barrier 0', 'takeover 0', 'barrier 0'])
  })
})

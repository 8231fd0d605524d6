import { describe, expect, it } from 'vitest'
import type { Message, RecordMetadata } from 'kafkajs'
import { Registry } from 'prom-client'
import { DetourTimeoutError, GroupStore, UnprocessableMessageError, headerString, noopLogger, type RetryEnvelope } from '@detour/core'
import { RetryMetrics } from '../metrics/retry-metrics.js'
import { retryEntry } from '../test-support/entries.js'
import { ConcurrencyLimiter } from './concurrency-limiter.js'
import { HandOffWriter } from './hand-off-writer.js'
import { PartitionScheduler } from './partition-scheduler.js'
import { Resolution } from './resolution.js'
import type { RetryEntry } from './retry-entry.js'
import { RetryProcessor, type AttemptGate, type RetryProcessorSettings } from './retry-processor.js'
import type { RetryHandlerPayload } from './retry-worker-options.js'

/** A producer that records what it sends and answers with increasing offsets. */
class RecordingProducer {
  readonly sent: Array<{ topic: string; message: Message }> = []
  /** Set by a test: each send waits for it. */
  gate: Promise<void> | undefined
  private offset = 0
  async send(record: { topic: string; messages: Message[] }): Promise<RecordMetadata[]> {
    if (this.gate) await this.gate
    for (const message of record.messages) this.sent.push({ topic: record.topic, message })
    return [{ topicName: record.topic, partition: 0, errorCode: 0, baseOffset: String(this.offset++) }]
  }
  tombstones(): string[] {
    return this.sent.filter((s) => s.message.value === null).map((s) => headerString(s.message.headers, 'detour-id') ?? '?')
  }
}

/** Durable resolution as a set of pending ids. */
class PendingIds {
  readonly pending = new Set<string>()
  readonly checks: string[] = []
  readonly resolvedAt: Array<[string, bigint | undefined]> = []
  isPending(envelope: RetryEnvelope): boolean {
    this.checks.push(envelope.id)
    return this.pending.has(envelope.id)
  }
  resolved(envelope: RetryEnvelope, offset: bigint | undefined): void {
    this.pending.delete(envelope.id)
    this.resolvedAt.push([envelope.id, offset])
  }
}

/** A gate that is open, or closed until `open()`. */
class ToggleGate implements AttemptGate {
  private waiters: Array<() => void> = []
  constructor(public openNow = true) {}
  whenOpen(_entry: RetryEntry, signal: AbortSignal): Promise<void> {
    if (this.openNow) return Promise.resolve()
    return new Promise((resolve, reject) => {
      this.waiters.push(resolve)
      signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true })
    })
  }
  isOpen(): boolean {
    return this.openNow
  }
  open(): void {
    this.openNow = true
    for (const wake of this.waiters.splice(0)) wake()
  }
}

function setup(
  handler: (payload: RetryHandlerPayload) => Promise<void>,
  settings: Partial<RetryProcessorSettings> = {},
): { processor: RetryProcessor; producer: RecordingProducer; ids: PendingIds; gate: ToggleGate; limiter: ConcurrencyLimiter; scheduler: PartitionScheduler; registry: Registry } {
  const registry = new Registry()
  const producer = new RecordingProducer()
  const ids = new PendingIds()
  const gate = new ToggleGate()
  const limiter = new ConcurrencyLimiter(4)
  const processor = new RetryProcessor(
    {
      handler,
      classify: undefined,
      backoff: () => 5,
      maxAttempts: 3,
      maxRetryDurationMs: 60_000,
      exhaustedPolicy: 'release',
      handlerTimeoutMs: 1000,
      groupId: 'app',
      ...settings,
    },
    { limiter, writer: new HandOffWriter(producer, () => 1, noopLogger, () => {}), gate, resolution: ids, metrics: new RetryMetrics(registry), logger: noopLogger },
  )
  const scheduler = new PartitionScheduler('orders-app-retry', 0, { start: () => {} })
  return { processor, producer, ids, gate, limiter, scheduler, registry }
}

function pendingEntry(ids: PendingIds, offset: string, key: string | null): RetryEntry {
  const entry = retryEntry(offset, key)
  entry.barrier = Promise.resolve()
  ids.pending.add(entry.envelope!.id)
  return entry
}

async function metric(registry: Registry, name: string): Promise<number> {
  const values = (await registry.getSingleMetric(name)?.get())?.values ?? []
  return values.reduce((sum, v) => sum + v.value, 0)
}

describe('RetryProcessor', () => {
  it('passes the handler an abort signal with the source coordinates, and tombstones on success', async () => {
    const seen: RetryHandlerPayload[] = []
    const { processor, producer, ids, scheduler } = setup(async (payload) => {
      seen.push(payload)
    })
    const entry = pendingEntry(ids, '7', 'k')
    expect(await processor.process(entry, scheduler)).toEqual({ kind: 'resolved', resolution: 'succeeded' })
    expect(seen).toHaveLength(1)
    expect(seen[0]!.signal).toBeInstanceOf(AbortSignal)
    expect(seen[0]!.signal.aborted).toBe(false)
    expect(seen[0]).toMatchObject({ topic: 'orders', partition: 0, message: { offset: '7' } })
    expect(producer.tombstones()).toEqual([entry.envelope!.id])
    expect(headerString(producer.sent[0]!.message.headers, 'detour-consumer-group')).toBe('app')
    expect(ids.resolvedAt).toEqual([[entry.envelope!.id, 0n]])
  })

  it('does not call the handler for an id that is no longer pending: tombstone again, already-resolved', async () => {
    let calls = 0
    const { processor, producer, ids, scheduler, registry } = setup(async () => {
      calls++
    })
    const entry = pendingEntry(ids, '3', 'k')
    ids.pending.clear()
    expect(await processor.process(entry, scheduler)).toEqual({ kind: 'resolved', resolution: 'already-resolved' })
    expect(calls).toBe(0)
    expect(producer.tombstones()).toEqual([entry.envelope!.id])
    expect(await metric(registry, 'detour_retry_duplicates_skipped_total')).toBe(1)
  })

  it('asks whether the id is pending right before every attempt (an operator may release it during a backoff)', async () => {
    let calls = 0
    const { processor, ids, scheduler } = setup(
      async () => {
        calls++
        // Released elsewhere while this attempt fails and backs off.
        ids.pending.clear()
        throw new Error('flaky')
      },
      { backoff: () => 20 },
    )
    const entry = pendingEntry(ids, '3', 'k')
    expect(await processor.process(entry, scheduler)).toEqual({ kind: 'resolved', resolution: 'already-resolved' })
    expect(calls).toBe(1)
    expect(ids.checks).toEqual([entry.envelope!.id, entry.envelope!.id])
  })

  it('waits for the barrier and the gate before the first attempt', async () => {
    let calls = 0
    const { processor, ids, gate, scheduler } = setup(async () => {
      calls++
    })
    const entry = pendingEntry(ids, '1', 'k')
    let openBarrier: () => void = () => {}
    entry.barrier = new Promise<void>((resolve) => (openBarrier = resolve))
    gate.openNow = false
    const outcome = processor.process(entry, scheduler)
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(calls).toBe(0)
    openBarrier()
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(calls).toBe(0)
    expect(ids.checks).toEqual([])
    gate.open()
    expect(await outcome).toMatchObject({ kind: 'resolved', resolution: 'succeeded' })
    expect(calls).toBe(1)
  })

  it('times out an attempt: aborts its signal, counts a transient failure, and starts the next attempt only after the handler returned', async () => {
    const events: string[] = []
    let firstSignal: AbortSignal | undefined
    let release: () => void = () => {}
    const { processor, ids, scheduler, registry, limiter } = setup(
      async ({ signal }) => {
        if (!firstSignal) {
          firstSignal = signal
          events.push('first started')
          // Ignores its signal and returns only when told.
          await new Promise<void>((resolve) => (release = resolve))
          events.push('first returned')
          return
        }
        events.push('second started')
      },
      { handlerTimeoutMs: 30, backoff: () => 0 },
    )
    const entry = pendingEntry(ids, '1', 'k')
    const outcome = processor.process(entry, scheduler)
    await new Promise((resolve) => setTimeout(resolve, 150))
    expect(firstSignal?.aborted).toBe(true)
    expect(firstSignal?.reason).toBeInstanceOf(DetourTimeoutError)
    expect(entry.lastError).toBeInstanceOf(DetourTimeoutError)
    // The timed-out handler still runs: it keeps its concurrency slot, and the retry waits for it.
    expect(events).toEqual(['first started'])
    expect(limiter.inUse).toBe(1)
    expect(scheduler.work.size).toBe(1)
    release()
    expect(await outcome).toMatchObject({ kind: 'resolved', resolution: 'succeeded' })
    expect(events).toEqual(['first started', 'first returned', 'second started'])
    expect(entry.attempts).toBe(2)
    expect(await metric(registry, 'detour_retry_handler_timeouts_total')).toBe(1)
    expect(limiter.inUse).toBe(0)
  })

  it('a timeout is transient even for a classifier that would dead-letter every error', async () => {
    const { processor, ids, scheduler, producer } = setup(() => new Promise<void>((resolve) => setTimeout(resolve, 60)), {
      handlerTimeoutMs: 20,
      maxAttempts: 2,
      classify: () => 'unprocessable',
    })
    const entry = pendingEntry(ids, '1', 'k')
    const outcome = await processor.process(entry, scheduler)
    expect(outcome).toMatchObject({ kind: 'resolved', resolution: 'dead-lettered', deadLetter: { reason: 'exhausted', attempts: 2 } })
    const [deadLetter] = producer.sent.filter((s) => s.message.value !== null)
    expect(headerString(deadLetter!.message.headers, 'detour-error-name')).toBe('DetourTimeoutError')
  })

  it('aborts the running handler\'s signal when the partition is revoked, and stops without resolving', async () => {
    let signal: AbortSignal | undefined
    const { processor, ids, scheduler, producer } = setup(async (payload) => {
      signal = payload.signal
      await new Promise<void>((_resolve, reject) => payload.signal.addEventListener('abort', () => reject(payload.signal.reason as Error)))
    })
    const entry = pendingEntry(ids, '1', 'k')
    const outcome = processor.process(entry, scheduler)
    await new Promise((resolve) => setTimeout(resolve, 10))
    scheduler.revoke()
    expect(await outcome).toEqual({ kind: 'stopped' })
    expect(signal?.aborted).toBe(true)
    expect(producer.sent).toEqual([])
  })

  it('dead-letters a non-retriable error and tombstones it; holds an exhausted one under hold', async () => {
    const unprocessable = setup(async () => {
      throw new UnprocessableMessageError('bad')
    })
    const a = pendingEntry(unprocessable.ids, '1', 'k')
    expect(await unprocessable.processor.process(a, unprocessable.scheduler)).toMatchObject({ kind: 'resolved', resolution: 'dead-lettered', deadLetter: { reason: 'unprocessable' } })
    expect(unprocessable.producer.tombstones()).toEqual([a.envelope!.id])

    const held = setup(
      async () => {
        throw new Error('down')
      },
      { exhaustedPolicy: 'hold', maxAttempts: 2 },
    )
    const b = pendingEntry(held.ids, '2', 'k')
    expect(await held.processor.process(b, held.scheduler)).toMatchObject({ kind: 'held', deadLetter: { reason: 'exhausted', attempts: 2 } })
    expect(held.producer.tombstones()).toEqual([])
    expect(held.ids.pending.has(b.envelope!.id)).toBe(true)
  })

  it('dead-letters a malformed record after the barrier, without asking about pending ids', async () => {
    const { processor, producer, ids, scheduler } = setup(async () => {})
    const entry = retryEntry('4', 'k')
    const bad = { ...entry, envelope: undefined, malformed: new Error('garbled') as never, barrier: Promise.resolve() }
    expect(await processor.process(bad, scheduler)).toMatchObject({ kind: 'resolved', resolution: 'malformed' })
    expect(headerString(producer.sent[0]!.message.headers, 'detour-reason')).toBe('malformed')
    expect(ids.checks).toEqual([])
  })

  it('release() writes the tombstone of a held entry and marks it resolved', async () => {
    const { processor, producer, ids, scheduler } = setup(async () => {})
    const entry = pendingEntry(ids, '9', null)
    await processor.release(entry, scheduler)
    expect(producer.tombstones()).toEqual([entry.envelope!.id])
    expect(ids.pending.size).toBe(0)
  })

  it('a revocation during a failing barrier ends the entry as stopped (no "group stuck" error for every buffered entry)', async () => {
    const { processor, scheduler } = setup(async () => {})
    const revoked = new AbortController()
    const resolution = new Resolution({
      follower: { running: true, start: async () => {}, stop: async () => {}, waitForPosition: async () => {}, position: () => 0n },
      store: new GroupStore(),
      writeBarrier: async () => {
        revoked.abort()
        throw new Error('KafkaJSNumberOfRetriesExceeded: Connection error')
      },
      logger: noopLogger,
    })
    const entry = retryEntry('0', 'k')
    entry.barrier = resolution.barrier('orders', 0, revoked.signal)
    const signals = { soft: revoked.signal, attempts: revoked.signal, hard: new AbortController().signal }
    expect(await processor.process(entry, { signals, work: scheduler.work })).toEqual({ kind: 'stopped' })
  })

  it("F4: an operator's release is work of its partition: a revocation or a stop waits for its tombstone write", async () => {
    const { processor, producer, ids, scheduler } = setup(async () => {})
    const entry = pendingEntry(ids, '3', 'k')
    let open: () => void = () => {}
    producer.gate = new Promise<void>((resolve) => (open = resolve))
    const release = processor.release(entry, scheduler)
    await new Promise((resolve) => setTimeout(resolve, 5))
    // The revocation's hand-over (and a stop) wait on scheduler.work: the release is in it.
    expect(scheduler.work.size).toBe(1)
    expect(await scheduler.work.idle(20)).toBe(1)
    open()
    await release
    expect(await scheduler.work.idle(1000)).toBe(0)
    expect(producer.tombstones()).toEqual([entry.envelope!.id])
  })

  it('F8: a handler that fails once a revocation aborted its signal ends as stopped: no classification, no dead letter, no tombstone', async () => {
    let abort: () => void = () => {}
    const { processor, producer, ids, scheduler } = setup(
      ({ signal }) =>
        new Promise<void>((_resolve, reject) => {
          // Its downstream call rejects when the signal aborts; the error even looks unprocessable.
          signal.addEventListener('abort', () => reject(new UnprocessableMessageError('request aborted')), { once: true })
          abort = () => scheduler.revoke()
        }),
    )
    const entry = pendingEntry(ids, '4', 'k')
    const outcome = processor.process(entry, scheduler)
    await new Promise((resolve) => setTimeout(resolve, 5))
    abort()
    expect(await outcome).toEqual({ kind: 'stopped' })
    expect(producer.sent).toEqual([])
    expect(ids.pending.has(entry.envelope!.id)).toBe(true)
  })
})

import type { EachMessagePayload, Message } from 'kafkajs'
import { RETRY_TOPIC_CONFIG, buildRedirectRecord, buildRetryRecord, decodeRetryRecord, detourTopics, messageId } from '@detour/core'
import { createRetryWorker } from '@detour/retry-app'
import { randomName } from '@detour/testkit'
import { alternate, figure } from '../suite/figure.js'
import type { Benchmark, BenchContext } from '../suite/types.js'
import { Span, fill, sleep, startConsumer, within } from '../support/kafka.js'
import { failurePlan, payload } from '../support/prng.js'

const KEYS = 1000
const HANDLER_MS = 5
const FAILURE_RATE = 0.1
const SEED = 20_251_121
const VALUE_BYTES = 100

class TransientError extends Error {
  constructor() {
    super('downstream unavailable')
    this.name = 'TransientError'
  }
}

/**
 * Retry worker: one retry partition holding N retry records over 1,000 keys; the handler takes 5 ms
 * and fails 10% of attempts (seeded: the same attempts fail on both sides). The worker runs groups
 * concurrently (per-key order kept) with zero backoff. The baseline is the same partition processed
 * strictly one message at a time by a raw kafkajs `eachMessage` consumer retrying in place.
 */
export const retryWorker: Benchmark = {
  name: 'retry-worker',
  title: 'Retry worker: msgs/s with 1,000 keys in one partition, 5 ms handler, 10% failures vs one-at-a-time',
  async run(ctx: BenchContext) {
    const total = ctx.quick ? 500 : 2000
    const reps = ctx.quick ? 1 : 3
    const consumerGroup = randomName('bench-worker-app')
    const source = randomName('bench-worker')
    const topics = detourTopics(source, consumerGroup)
    // The redirect topic is compacted, as Detour requires (and checks, where the broker has an admin API).
    for (const topic of [topics.source, topics.retry, topics.redirect, topics.error]) await ctx.broker.createTopic(topic, 1, { compact: topic === topics.redirect, config: topic === topics.retry ? RETRY_TOPIC_CONFIG : undefined })
    const fails = failurePlan(SEED, FAILURE_RATE)

    // What the main app would have written for source messages 0..N-1 of partition 0 (all failures).
    const redirects: Message[] = []
    const retries: Message[] = []
    const now = new Date()
    const error = new TransientError()
    for (let i = 0; i < total; i++) {
      const src = { topic: source, partition: 0, offset: String(i) }
      const id = messageId(src)
      const key = Buffer.from(`customer-${i % KEYS}`)
      const common = { source: src, id, groupKey: key, reason: 'failure' as const, consumerGroup, now }
      redirects.push(buildRedirectRecord(common))
      retries.push(
        buildRetryRecord({ ...common, error, message: { key, value: payload(VALUE_BYTES, i), headers: { 'x-trace': `trace-${i}` }, timestamp: String(now.getTime()) } }),
      )
    }
    // Verdicts depend on the source offset (not on the random topic name), so every run fails the same attempts.
    const attemptsNeeded = (offset: string): number => {
      let attempt = 1
      while (fails(offset, attempt)) attempt++
      return attempt
    }
    const handlerCalls = retries.reduce((sum, _r, i) => sum + attemptsNeeded(String(i)), 0)
    ctx.log(`  pre-filling ${topics.retry}: ${total} retry records (${Math.min(KEYS, total)} keys), ${handlerCalls} handler calls needed (${handlerCalls - total} failures)`)
    await fill(ctx.kafka, topics.redirect, redirects)
    await fill(ctx.kafka, topics.retry, retries)
    const timeoutMs = 300_000

    /** The application's handler: 5 ms of work, then the seeded verdict for this attempt. */
    const makeHandler = (attempts: Map<string, number>) => async (offset: string): Promise<void> => {
      const attempt = (attempts.get(offset) ?? 0) + 1
      attempts.set(offset, attempt)
      await sleep(HANDLER_MS)
      if (fails(offset, attempt)) throw new TransientError()
    }

    const baseline = async (): Promise<number> => {
      const span = new Span(total)
      const handle = makeHandler(new Map())
      const consumer = await startConsumer(ctx.kafka, topics.retry, {
        eachMessage: async ({ message }) => {
          span.start()
          const { source: origin } = decodeRetryRecord(message)
          for (;;) {
            try {
              await handle(origin.offset)
              break
            } catch {
              // retry in place, at once: the partition waits
            }
          }
          span.finish()
        },
      }, ctx.consumerConfig)
      try {
        await within(span.done.promise, timeoutMs, () => `one-at-a-time consumer finished ${span.count}/${total}`)
        return span.rate
      } finally {
        await consumer.disconnect()
      }
    }

    const worker = async (): Promise<number> => {
      const span = new Span(total)
      const handle = makeHandler(new Map())
      const w = createRetryWorker({
        kafka: ctx.kafka,
        groupId: consumerGroup,
        topics: [source],
        workerGroupId: randomName('bench-worker-grp'),
        topicAdmin: ctx.broker.topicAdmin,
        consumerConfig: ctx.consumerConfig,
        backoff: { type: 'constant', delayMs: 0 },
        maxAttempts: 50,
        handler: async ({ message }: EachMessagePayload) => {
          span.start()
          await handle(message.offset) // the worker passes the source offset
        },
      })
      w.on('resolved', (event) => {
        if (event.kind === 'succeeded') span.finish()
        else span.done.reject(new Error(`unexpected resolution "${event.kind}" of ${event.id ?? '?'}`))
      })
      await w.start()
      try {
        await within(span.done.promise, timeoutMs, () => `worker resolved ${span.count}/${total}`)
        return span.rate
      } finally {
        await w.stop()
      }
    }

    const { detour, baseline: base } = await alternate(reps, 1, { detour: worker, baseline }, ctx.log)
    return [
      figure({
        name: 'retry-worker',
        unit: 'msgs/s',
        values: detour,
        baselines: base,
        baselineUnit: 'msgs/s (raw kafkajs eachMessage, one message at a time, retrying in place)',
        goal: { on: 'ratio', op: '>=', target: 10 },
        workload: `1 retry partition, ${total} retry records over ${Math.min(KEYS, total)} keys; handler await sleep(${HANDLER_MS} ms), ${FAILURE_RATE * 100}% of attempts fail (seeded, ${handlerCalls} calls in all); zero backoff; worker maxInFlight 64 (default); timed from the first handler call to the last success (worker: tombstone acked)`,
      }),
    ]
  },
}

import type { EachMessagePayload } from 'kafkajs'
import { messageId } from '@detour/core'
import { createRetryWorker } from '@detour/retry-app'
import { randomName } from '@detour/testkit'
import { alternate, figure } from '../suite/figure.js'
import type { Benchmark, BenchContext } from '../suite/types.js'
import { startDetourApp } from '../support/detour-app.js'
import { deferred, sleep, startConsumer, within } from '../support/kafka.js'
import { percentile } from '../support/stats.js'

const PARTITIONS = 4
const INTERVAL_MS = 10

class TransientError extends Error {
  constructor() {
    super('downstream unavailable')
    this.name = 'TransientError'
  }
}

interface LatencySample {
  readonly p50: number
  readonly p99: number
}

function summarise(latencies: readonly number[]): LatencySample {
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99) }
}

/**
 * Retry latency: the main app (Detour-wrapped consumer) and the retry worker in one process. Every
 * message fails once in the main app; the worker's first attempt succeeds (zero backoff). Latency =
 * from the main handler's throw to the worker handler's success for the same id. Messages are produced
 * at a steady pace. For context, the same pace through one raw kafkajs hop (produce, then consume) on
 * the same broker with the same consumer settings.
 */
export const retryLatency: Benchmark = {
  name: 'retry-latency',
  title: 'Retry latency: main-app failure to successful retry in the worker (p50/p99)',
  async run(ctx: BenchContext) {
    const total = ctx.quick ? 60 : 300
    const reps = ctx.quick ? 1 : 5
    const timeoutMs = 120_000

    const paced = async (send: (i: number) => Promise<void>): Promise<void> => {
      const producer = ctx.kafka.producer({ allowAutoTopicCreation: false })
      await producer.connect()
      try {
        const start = performance.now()
        for (let i = 0; i < total; i++) {
          const wait = start + i * INTERVAL_MS - performance.now()
          if (wait > 0) await sleep(wait)
          await send(i)
        }
      } finally {
        await producer.disconnect()
      }
    }

    const detour = async (): Promise<LatencySample> => {
      const source = randomName('bench-latency')
      await ctx.broker.createTopic(source, PARTITIONS)
      const failedAt = new Map<string, number>()
      const latencies: number[] = []
      const done = deferred<void>()
      const ready = deferred<void>()
      const app = await startDetourApp(ctx, {
        topic: source,
        handler: async ({ topic, partition, message }) => {
          failedAt.set(messageId({ topic, partition, offset: message.offset }), performance.now())
          throw new TransientError()
        },
        beforeConsume: (d) => d.once('ready', () => ready.resolve()),
      })
      const worker = createRetryWorker({
        kafka: ctx.kafka,
        groupId: app.groupId,
        topics: [source],
        topicAdmin: ctx.broker.topicAdmin,
        consumerConfig: ctx.consumerConfig,
        backoff: { type: 'constant', delayMs: 0 },
        handler: async ({ topic, partition, message }: EachMessagePayload) => {
          const at = failedAt.get(messageId({ topic, partition, offset: message.offset }))
          if (at === undefined) throw new Error(`retry of a message that never failed: ${topic}/${partition}/${message.offset}`)
          latencies.push(performance.now() - at)
          if (latencies.length === total) done.resolve()
        },
      })
      try {
        await worker.start()
        await within(ready.promise, timeoutMs, () => 'the main app did not become ready')
        const producer = ctx.kafka.producer({ allowAutoTopicCreation: false })
        await producer.connect()
        try {
          await paced(async (i) => {
            await producer.send({ topic: source, messages: [{ partition: i % PARTITIONS, key: `customer-${i}`, value: `payload-${i}` }] })
          })
        } finally {
          await producer.disconnect()
        }
        await within(done.promise, timeoutMs, () => `${latencies.length}/${total} retries succeeded`)
        return summarise(latencies)
      } finally {
        await worker.stop()
        await app.stop()
      }
    }

    const rawHop = async (): Promise<LatencySample> => {
      const topic = randomName('bench-hop')
      await ctx.broker.createTopic(topic, PARTITIONS)
      const sentAt = new Map<string, number>()
      const latencies: number[] = []
      const done = deferred<void>()
      const consumer = await startConsumer(ctx.kafka, topic, {
        eachMessage: async ({ message }) => {
          const at = sentAt.get(String(message.key))
          if (at === undefined) return
          latencies.push(performance.now() - at)
          if (latencies.length === total) done.resolve()
        },
      }, ctx.consumerConfig)
      try {
        const producer = ctx.kafka.producer({ allowAutoTopicCreation: false })
        await producer.connect()
        try {
          await paced(async (i) => {
            const key = `customer-${i}`
            sentAt.set(key, performance.now())
            await producer.send({ topic, acks: -1, messages: [{ partition: i % PARTITIONS, key, value: `payload-${i}` }] })
          })
        } finally {
          await producer.disconnect()
        }
        await within(done.promise, timeoutMs, () => `${latencies.length}/${total} messages consumed`)
        return summarise(latencies)
      } finally {
        await consumer.disconnect()
      }
    }

    const { detour: d, baseline: b } = await alternate(reps, 1, { detour, baseline: rawHop }, ctx.log)
    const workload = `${total} messages at 1 per ${INTERVAL_MS} ms over ${PARTITIONS} partitions, distinct keys; every message fails once in the main app, the worker's first attempt succeeds; zero backoff; main app + worker in one process; maxWaitTimeInMs 100 everywhere`
    const baselineUnit = 'ms (one raw kafkajs hop at the same pace: send → eachMessage)'
    const note = 'lower is better; ratio = Detour / one raw hop'
    return [
      figure({ name: 'retry-latency-p50', unit: 'ms', values: d.map((s) => s.p50), baselines: b.map((s) => s.p50), baselineUnit, workload, note }),
      figure({ name: 'retry-latency-p99', unit: 'ms', values: d.map((s) => s.p99), baselines: b.map((s) => s.p99), baselineUnit, workload, note }),
    ]
  },
}

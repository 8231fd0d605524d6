import type { Message, Producer } from 'kafkajs'
import { RETRY_TOPIC_CONFIG, buildRedirectRecord, buildRetryRecord, detourTopics, messageId } from '@detour/core'
import { randomName } from '@detour/testkit'
import { alternate, figure } from '../suite/figure.js'
import type { Benchmark, BenchContext } from '../suite/types.js'
import { startDetourApp } from '../support/detour-app.js'
import { Span, fill, within } from '../support/kafka.js'
import { payload } from '../support/prng.js'

const PARTITIONS = 8
const VALUE_BYTES = 100
const BATCH = 100

/** The error every attempt throws: transient by default (not a programming error). */
class TransientError extends Error {
  constructor() {
    super('downstream unavailable')
    this.name = 'TransientError'
  }
}

/**
 * Redirect path: the handler always throws a transient error, so every message is redirected (redirect
 * record acked, then retry record acked). The baseline writes the same two records per message with raw
 * kafkajs, awaited one after the other like the SDK does; a batched raw write of the same records is
 * reported for context.
 */
export const redirectPath: Benchmark = {
  name: 'redirect-path',
  title: 'Redirect path: msgs/s when every message is redirected vs raw produce of the same records',
  async run(ctx: BenchContext) {
    const perPartition = ctx.quick ? 50 : 250
    const total = perPartition * PARTITIONS
    const reps = ctx.quick ? 2 : 7
    const source = randomName('bench-redirect')
    // Stamped now: a real broker's retention (7 days) would delete records stamped long ago before they are read.
    const TIMESTAMP = String(Date.now())
    await ctx.broker.createTopic(source, PARTITIONS)
    // Distinct keys: every message reaches the handler (none waits behind a pending id of its key).
    const inputs = Array.from({ length: total }, (_, i) => ({
      partition: i % PARTITIONS,
      offset: String(Math.floor(i / PARTITIONS)),
      key: Buffer.from(`customer-${i}`),
      value: payload(VALUE_BYTES, i),
      headers: { 'x-trace': Buffer.from(`trace-${i}`) },
    }))
    ctx.log(`  pre-filling ${source}: ${total} records`)
    await fill(
      ctx.kafka,
      source,
      inputs.map((m): Message => ({ partition: m.partition, key: m.key, value: m.value, headers: m.headers, timestamp: TIMESTAMP })),
    )
    const timeoutMs = 300_000

    /** What the SDK writes for each source message (built like the SDK builds it, with the same error). */
    const recordsFor = (groupId: string): Array<{ redirect: Message; retry: Message }> => {
      const error = new TransientError()
      return inputs.map((m) => {
        const src = { topic: source, partition: m.partition, offset: m.offset }
        const id = messageId(src)
        const common = { source: src, id, groupKey: m.key, reason: 'failure' as const, consumerGroup: groupId }
        return {
          redirect: buildRedirectRecord(common),
          retry: buildRetryRecord({ ...common, error, message: { key: m.key, value: m.value, headers: m.headers, timestamp: TIMESTAMP } }),
        }
      })
    }

    /** Fresh retry/redirect topics (co-partitioned) for a raw run. */
    const rawTopics = async (): Promise<{ groupId: string; retry: string; redirect: string }> => {
      const groupId = randomName('bench-rawgrp')
      const topics = detourTopics(source, groupId)
      await ctx.broker.createTopic(topics.redirect, PARTITIONS, { compact: true })
      await ctx.broker.createTopic(topics.retry, PARTITIONS, { config: RETRY_TOPIC_CONFIG })
      return { groupId, retry: topics.retry, redirect: topics.redirect }
    }

    const withProducer = async (work: (producer: Producer) => Promise<number>): Promise<number> => {
      const producer = ctx.kafka.producer({ allowAutoTopicCreation: false })
      await producer.connect()
      try {
        return await work(producer)
      } finally {
        await producer.disconnect()
      }
    }

    const rawSequential = async (): Promise<number> => {
      const topics = await rawTopics()
      const records = recordsFor(topics.groupId)
      return withProducer(async (producer) => {
        const t0 = performance.now()
        for (const { redirect, retry } of records) {
          await producer.send({ topic: topics.redirect, acks: -1, messages: [redirect] })
          await producer.send({ topic: topics.retry, acks: -1, messages: [retry] })
        }
        return total / ((performance.now() - t0) / 1000)
      })
    }

    const rawBatched = async (): Promise<number> => {
      const topics = await rawTopics()
      const records = recordsFor(topics.groupId)
      return withProducer(async (producer) => {
        const t0 = performance.now()
        for (let i = 0; i < records.length; i += BATCH) {
          const chunk = records.slice(i, i + BATCH)
          await producer.send({ topic: topics.redirect, acks: -1, messages: chunk.map((r) => r.redirect) })
          await producer.send({ topic: topics.retry, acks: -1, messages: chunk.map((r) => r.retry) })
        }
        return total / ((performance.now() - t0) / 1000)
      })
    }

    const detour = async (): Promise<number> => {
      const span = new Span(total)
      const app = await startDetourApp(ctx, {
        topic: source,
        handler: async () => {
          throw new TransientError()
        },
        around: (wrapped) => async (p) => {
          span.start()
          await wrapped(p)
          span.finish()
        },
      })
      try {
        await within(span.done.promise, timeoutMs, () => `Detour redirected ${span.count}/${total}`)
        const pending = app.detour.stats().pendingIds
        if (pending !== total) throw new Error(`expected ${total} pending ids after the run, found ${pending}`)
        return span.rate
      } finally {
        await app.stop()
      }
    }

    /** `detour.eachBatch`: one transaction per batch; done when every id is pending (the writes are acknowledged). */
    const detourEachBatch = async (): Promise<number> => {
      let t0: number | undefined
      const app = await startDetourApp(ctx, {
        topic: source,
        api: 'eachBatch',
        handler: async () => {
          t0 ??= performance.now()
          throw new TransientError()
        },
      })
      try {
        const deadline = Date.now() + timeoutMs
        while (app.detour.stats().pendingIds < total) {
          if (Date.now() > deadline) throw new Error(`Detour (eachBatch) redirected ${app.detour.stats().pendingIds}/${total}`)
          await new Promise((resolve) => setTimeout(resolve, 10))
        }
        return total / ((performance.now() - (t0 ?? performance.now())) / 1000)
      } finally {
        await app.stop()
      }
    }

    const batched: number[] = []
    const eachBatchValues: number[] = []
    const { detour: values, baseline } = await alternate(
      reps,
      1,
      {
        detour: async (rep) => {
          const perMessage = await detour()
          const perBatch = await detourEachBatch()
          if (rep >= 0) eachBatchValues.push(perBatch)
          return perMessage
        },
        baseline: async (rep) => {
          const sequential = await rawSequential()
          const b = await rawBatched()
          if (rep >= 0) batched.push(b)
          return sequential
        },
      },
      ctx.log,
    )
    const workload = `${PARTITIONS} partitions × ${perPartition} records (distinct keys, value ${VALUE_BYTES} B, 1 header); handler always throws a transient error; 2 acked writes (redirect, retry) per message`
    return [
      figure({
        name: 'redirect-path',
        unit: 'msgs/s',
        values,
        baselines: baseline,
        baselineUnit: 'msgs/s (raw kafkajs: the same 2 records per message, each send awaited)',
        goal: { on: 'ratio', op: '>=', target: 0.5 },
        workload,
      }),
      figure({
        name: 'redirect-path-each-batch',
        unit: 'msgs/s',
        values: eachBatchValues,
        baselines: baseline,
        baselineUnit: 'msgs/s (raw kafkajs: the same 2 records per message, each send awaited)',
        goal: { on: 'ratio', op: '>=', target: 0.5 },
        workload: `${workload}; detour.eachBatch: the hand-offs of a batch in one transaction`,
      }),
      figure({
        name: 'redirect-path-raw-batched',
        unit: 'msgs/s',
        values: batched,
        workload: `${workload}; raw kafkajs, ${BATCH} messages per send (context for the sequential figures)`,
        note: 'context only: no ordering guarantee per message; not what an ordered hand-off can do',
      }),
    ]
  },
}

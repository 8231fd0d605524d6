import type { Message } from 'kafkajs'
import { RETRY_TOPIC_CONFIG, buildRedirectRecord, messageId } from '@detour/core'
import type { Detour } from '@detour/main-app-sdk'
import { randomName } from '@detour/testkit'
import { alternate, figure } from '../suite/figure.js'
import type { Benchmark, BenchContext } from '../suite/types.js'
import { startDetourApp } from '../support/detour-app.js'
import { Span, deferred, fill, startConsumer, within } from '../support/kafka.js'

const PARTITIONS = 16

/** Key, value, header names and values: the record's payload bytes (before Kafka's framing). */
function recordBytes(record: Message): number {
  const size = (v: Buffer | string | null | undefined): number => (v === null || v === undefined ? 0 : Buffer.isBuffer(v) ? v.length : Buffer.byteLength(v))
  let bytes = size(record.key) + size(record.value)
  for (const [name, value] of Object.entries(record.headers ?? {})) {
    for (const v of Array.isArray(value) ? value : [value]) bytes += Buffer.byteLength(name) + size(v)
  }
  return bytes
}

interface RebuildSample {
  /** Redirect records applied per second, start to ready. */
  readonly rate: number
  /** Time from `detour.start()` (or the raw consumer's connect) to ready (or the last record). */
  readonly ms: number
}

/**
 * Rebuild: a redirect topic pre-filled with N pending ids (no tombstones) is replayed into the group
 * store. Detour: from `detour.start()` until `ready` (start, follower join, consumer join, replay past
 * the high watermarks taken at assignment). Raw: a plain kafkajs consumer (`eachBatch`, as the
 * follower) from `connect()` until it has read every record. Both include one connect and group join.
 */
export const rebuild: Benchmark = {
  name: 'rebuild',
  title: 'Rebuild: records/s replaying the redirect topic into the store vs raw kafkajs consumption',
  async run(ctx: BenchContext) {
    const total = ctx.quick ? 20_000 : 100_000
    const perPartition = total / PARTITIONS
    const reps = ctx.quick ? 2 : 9
    const consumerGroup = randomName('bench-rebuild-app')
    const source = randomName('bench-rebuild')
    // Fixed Detour topic names, so every repetition (each in a fresh consumer group, to avoid waiting
    // for the previous member's session to expire) replays the same pre-filled redirect topic.
    const naming = { retry: `${source}-retry`, redirect: `${source}-redirect`, error: `${source}-dlt` }
    await ctx.broker.createTopic(source, PARTITIONS)
    await ctx.broker.createTopic(naming.retry, PARTITIONS, { config: RETRY_TOPIC_CONFIG })
    await ctx.broker.createTopic(naming.redirect, PARTITIONS, { compact: true })
    await ctx.broker.createTopic(naming.error, PARTITIONS)
    const records: Message[] = []
    const now = new Date()
    for (let i = 0; i < total; i++) {
      const src = { topic: source, partition: i % PARTITIONS, offset: String(1_000_000_000 + Math.floor(i / PARTITIONS)) }
      records.push(
        buildRedirectRecord({ source: src, id: messageId(src), groupKey: Buffer.from(`customer-${i}`), reason: 'failure', consumerGroup, now }),
      )
    }
    const bytes = records.reduce((sum, r) => sum + recordBytes(r), 0) / total
    ctx.log(`  pre-filling ${naming.redirect}: ${total} redirect records (~${Math.round(bytes)} B each before framing), ${perPartition} per partition`)
    await fill(ctx.kafka, naming.redirect, records, 1000)
    const timeoutMs = 300_000

    const raw = async (): Promise<RebuildSample> => {
      const span = new Span(total)
      const t0 = performance.now()
      span.first = t0
      const consumer = await startConsumer(ctx.kafka, naming.redirect, {
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          span.finish(batch.messages.length)
        },
      }, ctx.consumerConfig)
      try {
        await within(span.done.promise, timeoutMs, () => `raw consumer read ${span.count}/${total}`)
        return { rate: span.rate, ms: span.seconds * 1000 }
      } finally {
        await consumer.disconnect()
      }
    }

    const detour = async (): Promise<RebuildSample> => {
      const ready = deferred<number>()
      const t0 = performance.now()
      const app = await startDetourApp(ctx, {
        topic: source,
        handler: async () => {},
        detour: { topicNaming: naming },
        beforeConsume: (d: Detour) => d.once('ready', () => ready.resolve(performance.now())),
      })
      try {
        const t1 = await within(ready.promise, timeoutMs, () => `Detour not ready; ${app.detour.stats().pendingIds}/${total} ids applied`)
        const pending = app.detour.stats().pendingIds
        if (pending !== total) throw new Error(`ready with ${pending} pending ids, expected ${total}`)
        const seconds = (t1 - t0) / 1000
        return { rate: total / seconds, ms: seconds * 1000 }
      } finally {
        await app.stop()
      }
    }

    const { detour: d, baseline: b } = await alternate(reps, 1, { detour, baseline: raw }, ctx.log)
    const workload = `redirect topic: ${PARTITIONS} partitions × ${perPartition} redirect records = ${total} pending ids (distinct keys, ~${Math.round(bytes)} B + framing each); eachBatch, maxWaitTimeInMs 100; timed from detour.start() / consumer.connect() to ready / last record`
    return [
      figure({
        name: 'rebuild',
        unit: 'records/s',
        values: d.map((s) => s.rate),
        baselines: b.map((s) => s.rate),
        baselineUnit: 'records/s (raw kafkajs eachBatch reading the topic from the beginning)',
        goal: { on: 'ratio', op: '>=', target: 0.9 },
        workload,
      }),
      figure({
        name: 'rebuild-time-to-ready',
        unit: 'ms',
        values: d.map((s) => s.ms),
        baselines: b.map((s) => s.ms),
        baselineUnit: 'ms (raw kafkajs: connect to last record)',
        workload: `${total} pending ids; ${workload}`,
        note: 'lower is better; ratio = Detour / raw time',
      }),
    ]
  },
}

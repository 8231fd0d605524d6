import type { Message } from 'kafkajs'
import { randomName } from '@detour/testkit'
import { alternate, figure } from '../suite/figure.js'
import type { Benchmark, BenchContext } from '../suite/types.js'
import { startDetourApp } from '../support/detour-app.js'
import { Span, fill, startConsumer, within } from '../support/kafka.js'
import { payload } from '../support/prng.js'
import { measureWrapperOverhead } from './wrapper-overhead.js'

const PARTITIONS = 8
const VALUE_BYTES = 100
const KEYS = 5000

/**
 * Happy path: every message succeeds. The same pre-filled topic is read from the beginning by a raw
 * kafkajs `eachMessage` consumer and by a consumer whose handler Detour wraps (each repetition in a
 * fresh consumer group). Throughput is counted from the first message to the last.
 */
export const happyPath: Benchmark = {
  name: 'happy-path',
  title: 'Happy path: msgs/s through the wrapped eachMessage vs raw kafkajs',
  async run(ctx: BenchContext) {
    const perPartition = ctx.quick ? 2_500 : 20_000
    const total = perPartition * PARTITIONS
    const reps = ctx.quick ? 2 : 9
    const topic = randomName('bench-happy')
    await ctx.broker.createTopic(topic, PARTITIONS)
    const messages: Message[] = Array.from({ length: total }, (_, i) => ({
      partition: i % PARTITIONS,
      key: `customer-${i % KEYS}`,
      value: payload(VALUE_BYTES, i),
      headers: { 'x-trace': `trace-${i}` },
    }))
    ctx.log(`  pre-filling ${topic}: ${total} records`)
    await fill(ctx.kafka, topic, messages)
    const noop = async (): Promise<void> => {}
    const timeoutMs = 120_000

    const raw = async (): Promise<number> => {
      const span = new Span(total)
      const consumer = await startConsumer(ctx.kafka, topic, {
        eachMessage: async () => {
          span.start()
          await noop()
          span.finish()
        },
      }, ctx.consumerConfig)
      try {
        await within(span.done.promise, timeoutMs, () => `raw consumer read ${span.count}/${total}`)
        return span.rate
      } finally {
        await consumer.disconnect()
      }
    }

    const detour = async (): Promise<number> => {
      const span = new Span(total)
      const app = await startDetourApp(ctx, {
        topic,
        handler: noop,
        around: (wrapped) => async (payload) => {
          span.start()
          await wrapped(payload)
          span.finish()
        },
      })
      try {
        await within(span.done.promise, timeoutMs, () => `Detour consumer read ${span.count}/${total}`)
        return span.rate
      } finally {
        await app.stop()
      }
    }

    const { detour: values, baseline } = await alternate(reps, 1, { detour, baseline: raw }, ctx.log)
    const calls = ctx.quick ? 200_000 : 1_000_000
    ctx.log(`  wrapper CPU overhead: ${calls} calls per loop`)
    const overhead = await measureWrapperOverhead(ctx, calls, reps)
    for (const o of overhead) ctx.log(`    ${JSON.stringify(o)}`)
    return [
      figure({
        name: 'happy-path',
        unit: 'msgs/s',
        values,
        baselines: baseline,
        baselineUnit: 'msgs/s (raw kafkajs eachMessage)',
        goal: { on: 'ratio', op: '>=', target: 0.95 },
        workload: `${PARTITIONS} partitions × ${perPartition} records (key ~13 B, value ${VALUE_BYTES} B, 1 header), no-op handler, eachMessage, maxWaitTimeInMs 100; timed from the first message to the last`,
      }),
      figure({
        name: 'happy-path-wrapper-cpu',
        unit: 'ns/msg',
        values: overhead.map((o) => o.wrappedNs - o.rawNs),
        workload: `CPU added per successful message by the wrapper, without Kafka: ${calls} awaited calls of the wrapped no-op handler minus the bare one, synthetic payloads (5,000 keys, 8 partitions, rebuilt)`,
        note: 'context for the happy-path ratio: compare with 1e9 / raw msgs/s, the per-message cost of kafkajs itself',
      }),
    ]
  },
}

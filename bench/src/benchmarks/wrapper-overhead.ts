import type { EachMessagePayload, KafkaMessage } from 'kafkajs'
import { createDetour } from '@detour/main-app-sdk'
import { randomName } from '@detour/testkit'
import type { BenchContext } from '../suite/types.js'

export interface OverheadSample {
  /** ns per call of the no-op handler itself (awaited). */
  readonly rawNs: number
  /** ns per call of the same handler wrapped by Detour (awaited). */
  readonly wrappedNs: number
}

/**
 * The CPU the wrapper adds per successful message, without Kafka: a started Detour, partitions
 * rebuilt, and the wrapped no-op handler called in a loop on synthetic payloads (keys from 5,000
 * customers), against the bare no-op handler in the same loop. Explains the happy-path ratio.
 */
export async function measureWrapperOverhead(ctx: BenchContext, calls: number, reps: number): Promise<OverheadSample[]> {
  const partitions = 8
  const topic = randomName('bench-overhead')
  await ctx.broker.createTopic(topic, partitions)
  const groupId = randomName('bench-overhead-app')
  // The consumer is never connected: Detour only needs it for its group events.
  const consumer = ctx.kafka.consumer({ groupId, ...ctx.consumerConfig })
  const detour = createDetour({
    kafka: ctx.kafka,
    consumer,
    groupId,
    topics: [topic],
    topicAdmin: ctx.broker.topicAdmin,
    followerConfig: { maxWaitTimeInMs: ctx.consumerConfig.maxWaitTimeInMs },
  })
  const noop = async (): Promise<void> => {}
  const wrapped = detour.eachMessage(noop)
  const payloads: EachMessagePayload[] = Array.from({ length: 10_000 }, (_, i) => {
    const message: KafkaMessage = {
      key: Buffer.from(`customer-${i % 5000}`),
      value: Buffer.alloc(100, 97),
      timestamp: String(Date.now()),
      attributes: 0,
      offset: String(1_000_000 + i),
      headers: { 'x-trace': Buffer.from(`trace-${i}`) },
    }
    return { topic, partition: i % partitions, message, heartbeat: async () => {}, pause: () => () => {} }
  })
  const loop = async (handler: (payload: EachMessagePayload) => Promise<void>): Promise<number> => {
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < calls; i++) await handler(payloads[i % payloads.length] as EachMessagePayload)
    return Number(process.hrtime.bigint() - t0) / calls
  }
  try {
    await detour.start()
    // First message of each partition waits for its rebuild (empty redirect topic: one offsets request).
    for (const payload of payloads.slice(0, partitions)) await wrapped(payload)
    await loop(noop)
    await loop(wrapped)
    const samples: OverheadSample[] = []
    for (let rep = 0; rep < reps; rep++) {
      const rawNs = await loop(noop)
      const wrappedNs = await loop(wrapped)
      samples.push({ rawNs, wrappedNs })
    }
    return samples
  } finally {
    await detour.stop()
  }
}

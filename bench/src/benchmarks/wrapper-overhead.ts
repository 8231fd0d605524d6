import { EventEmitter } from 'node:events'
import { AssignerProtocol, type Consumer, type EachMessagePayload, type KafkaMessage } from 'kafkajs'
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
  // No consumer connects: Detour only needs a consumer's group events and its group description, so a
  // stand-in announces this member's assignment (every partition) and confirms it to the ownership check.
  const consumer = assignedConsumer(groupId, topic, partitions)
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
    consumer.join()
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

/** A consumer stand-in that is a member of `groupId` owning every partition of `topic` (see above). */
function assignedConsumer(groupId: string, topic: string, partitions: number): Consumer & { join(): void } {
  const emitter = new EventEmitter()
  const memberId = 'bench-member'
  const assignment = { [topic]: Array.from({ length: partitions }, (_, p) => p) }
  const events = { GROUP_JOIN: 'consumer.group_join', HEARTBEAT: 'consumer.heartbeat', CRASH: 'consumer.crash', STOP: 'consumer.stop', CONNECT: 'consumer.connect' }
  const stub = {
    events,
    on(event: string, listener: (...args: unknown[]) => void) {
      emitter.on(event, listener)
      return () => emitter.off(event, listener)
    },
    async disconnect() {},
    async stop() {},
    async describeGroup() {
      const memberAssignment = AssignerProtocol.MemberAssignment.encode({ version: 0, assignment, userData: Buffer.alloc(0) })
      return { groupId, state: 'Stable', protocol: 'RoundRobinAssigner', protocolType: 'consumer', errorCode: 0, members: [{ memberId, memberAssignment }] }
    },
    join() {
      emitter.emit(events.GROUP_JOIN, { payload: { groupId, memberId, memberAssignment: assignment } })
    },
  }
  return stub as unknown as Consumer & { join(): void }
}

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { EachMessagePayload, Kafka } from 'kafkajs'
import { startBroker, testKafka, waitFor, type TestBroker } from '@detour/testkit'
import { setupTopics, startApp, startFakeWorker, type AppHandle } from './test-support/harness.js'

/**
 * Two SDK instances in one consumer group; partitions move between them while keys are failing and
 * waiting. Per key, the first processing of each sequence number must come in order, and all must come.
 */
describe('two instances across rebalances', () => {
  let broker: TestBroker
  let kafka: Kafka

  beforeAll(async () => {
    broker = await startBroker()
    kafka = testKafka(broker)
  })
  afterAll(async () => {
    await broker.stop()
  })

  it('keeps per-key order and loses nothing while partitions move between instances', async (ctx) => {
    const { topic, groupId, topics } = await setupTopics(broker, 4)
    const keys = Array.from({ length: 24 }, (_, i) => `key-${i}`)
    const nextSeq = new Map<string, number>()
    const processed: Array<{ key: string; seq: number; by: string }> = []
    const record = (by: string) => (payload: EachMessagePayload) => {
      const [key, seq] = (payload.message.value?.toString() ?? '').split(':')
      processed.push({ key: key!, seq: Number(seq), by })
    }
    // The main app fails every 5th message of a key (transiently); the worker always succeeds.
    const handler = (name: string) => async (payload: EachMessagePayload): Promise<void> => {
      const seq = Number(payload.message.value?.toString().split(':')[1])
      if (seq % 5 === 2) throw new Error('dependency down')
      record(name)(payload)
    }
    const producer = kafka.producer()
    await producer.connect()
    const wave = async (perKey: number): Promise<void> => {
      const messages = []
      for (let i = 0; i < perKey; i++) {
        for (const key of keys) {
          const seq = nextSeq.get(key) ?? 0
          nextSeq.set(key, seq + 1)
          messages.push({ key, value: `${key}:${seq}` })
        }
      }
      await producer.send({ topic, messages })
    }
    const apps: AppHandle[] = []
    apps.push(await startApp(broker, kafka, { name: 'one', topic, groupId, handler: handler('one') }))
    const worker = await startFakeWorker(broker, kafka, topics, (payload) => {
      record('worker')(payload)
      return true
    })
    try {
      await wave(5)
      apps.push(await startApp(broker, kafka, { name: 'two', topic, groupId, handler: handler('two') }))
      await wave(5)
      await waitFor(() => apps[1]!.detour.stats().partitions.length > 0, 'instance two to get partitions', 30_000)
      await wave(5)
      // Instance one has had partitions all along: on a busy machine its first messages may still be on their way.
      await waitFor(() => processed.some((p) => p.by === 'one'), 'instance one to process messages', 30_000)
      await apps[0]!.stop() // partitions move to instance two
      await wave(5)
      const total = keys.length * 20
      await waitFor(
        () => new Set(processed.map((p) => `${p.key}:${p.seq}`)).size === total && apps[1]!.detour.stats().pendingIds === 0,
        `all ${total} messages processed and no pending ids`,
        60_000,
      )
      for (const key of keys) {
        const firstSeen: number[] = []
        const seen = new Set<number>()
        for (const p of processed) {
          if (p.key !== key || seen.has(p.seq)) continue
          seen.add(p.seq)
          firstSeen.push(p.seq)
        }
        expect(firstSeen, `order of ${key}`).toEqual(Array.from({ length: 20 }, (_, i) => i))
      }
      expect(processed.some((p) => p.by === 'two')).toBe(true)
      expect(processed.some((p) => p.by === 'one')).toBe(true)
    } finally {
      for (const app of apps) for (const why of app.restarted) await ctx.annotate(`instance ${app.name} was restarted: ${why}`)
      for (const app of apps) await app.stop()
      await worker.stop()
      await producer.disconnect()
    }
  })
})

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { EachMessagePayload, Kafka } from 'kafkajs'
import { buildTombstone, parseRedirectKey } from '@detour/core'
import { collectMessages, resolveBrokerMode, skippedBecause, sleep, startBroker, testKafka, waitFor, type BrokerNeed, type TestBroker } from '@detour/testkit'
import { entry, produce, setupTopics, startApp, startFakeWorker, type LogEntry } from './test-support/harness.js'

/**
 * The redirect topic is compacted so that released ids disappear and restarts stay fast. After real
 * compaction has removed the released ids (their pending records and, once `delete.retention.ms` passed,
 * their tombstones), a fresh instance must rebuild exactly the pending state the running one had. Only a
 * broker that compacts can show this (the mock never does).
 */
const needs: BrokerNeed[] = ['compaction']
const choice = await resolveBrokerMode({ needs })

describe.skipIf(choice.unavailable !== undefined)(skippedBecause('rebuild from a compacted redirect topic', choice.unavailable), () => {
  let broker: TestBroker
  let kafka: Kafka

  beforeAll(async () => {
    broker = await startBroker({ needs })
    kafka = testKafka(broker)
  })
  afterAll(async () => {
    await broker?.stop()
  })

  it('a fresh instance rebuilds the same pending ids after compaction removed the released ones', async (ctx) => {
    const { topic, groupId, topics } = await setupTopics(broker, 1)
    // Compaction within seconds: short segments (rolled by new records), any dirt is worth cleaning, and
    // tombstones go in the next cleaning.
    await broker.createTopic(topics.redirect, 1, {
      compact: true,
      config: { 'segment.ms': '100', 'min.cleanable.dirty.ratio': '0.01', 'delete.retention.ms': '0' },
    })
    const log: LogEntry[] = []
    const failsFirst = new Set(['A', 'C', 'E', 'H'])
    const handler = async (payload: EachMessagePayload): Promise<void> => {
      if (failsFirst.has(payload.message.value?.toString() ?? '')) throw new Error('transient')
      log.push(entry('main', payload))
    }
    const first = await startApp(broker, kafka, { topic, groupId, handler })
    const keys = ['k1', 'k2', 'k3', 'k5', 'k6']
    const pendingOf = (app: typeof first): string[][] => keys.map((key) => app.detour.pendingIds(topic, 0, key))
    let second: typeof first | undefined
    try {
      await produce(kafka, topic, [
        { key: 'k1', value: 'A' },
        { key: 'k1', value: 'B' },
        { key: 'k2', value: 'C' },
        { key: 'k2', value: 'D' },
        { key: 'k3', value: 'E' },
        { key: 'k5', value: 'H' },
        { key: 'k5', value: 'I' },
        { key: 'k6', value: 'J' },
      ])
      await waitFor(() => log.some((e) => e.value === 'J') && first.detour.stats().pendingIds === 7, 'J processed and 7 ids pending')
      // The retry worker succeeds with k2 and k3 entirely and with the first id of k5; k1 and I stay pending.
      const release = new Set(['C', 'D', 'E', 'H'])
      const worker = await startFakeWorker(broker, kafka, topics, (payload) => release.has(payload.message.value?.toString() ?? ''))
      try {
        await waitFor(() => worker.tombstones.length === 4 && first.detour.stats().pendingIds === 3, 'four ids released, three pending')
      } finally {
        await worker.stop()
      }
      const before = pendingOf(first)
      expect(before).toEqual([[`${topic}/0/0`, `${topic}/0/1`], [], [], [`${topic}/0/6`], []])
      const pendingBefore = first.detour.stats().pendingIds

      // Compaction: keep adding records so segments roll (harmless ones: tombstones of ids that were never
      // pending), until reading the topic shows the released ids gone, pending records and tombstones alike.
      const producer = kafka.producer()
      await producer.connect()
      let filler = 0
      const tombstoneOf = (n: number) => buildTombstone({ partition: 0, id: `${topic}/0/${900_000 + n}`, groupKey: Buffer.from('filler'), consumerGroup: groupId })
      let stopFiller = false
      const fill = (async () => {
        while (!stopFiller) {
          await producer.send({ topic: topics.redirect, messages: [tombstoneOf(filler++)] })
          await sleep(500)
        }
      })()
      const started = Date.now()
      let remaining: string[] = []
      try {
        await waitFor(
          async () => {
            const mark = `${topic}/0/${900_000 + filler++}`
            await producer.send({ topic: topics.redirect, messages: [tombstoneOf(filler - 1)] })
            const records = await collectMessages(kafka, topics.redirect, (c) => c.some((r) => parseRedirectKey(r.message.key).id === mark), 30_000)
            remaining = records
              .filter((r) => !parseRedirectKey(r.message.key).groupKey?.equals(Buffer.from('filler')))
              .map((r) => `${parseRedirectKey(r.message.key).id}:${r.message.value === null ? 'released' : 'pending'}`)
            return remaining.length === 3
          },
          'compaction to remove the released ids from the redirect topic',
          60_000,
          500,
        )
      } finally {
        stopFiller = true
        await fill
        await producer.disconnect()
      }
      await ctx.annotate(`compaction removed the released ids in ${((Date.now() - started) / 1000).toFixed(1)} s`)
      expect(remaining).toEqual([`${topic}/0/0:pending`, `${topic}/0/1:pending`, `${topic}/0/6:pending`])
      // The running instance read the same records as they came: its state did not change.
      expect(pendingOf(first)).toEqual(before)

      await first.stop()
      second = await startApp(broker, kafka, { name: 'fresh', topic, groupId, handler })
      await waitFor(() => second!.detour.ready, 'the fresh instance to rebuild')
      expect(pendingOf(second)).toEqual(before)
      expect(second.detour.stats().pendingIds).toBe(pendingBefore)
      expect(second.detour.stats().lastRebuildMs).toBeTypeOf('number')
    } finally {
      await first.stop()
      await second?.stop()
    }
  })
})

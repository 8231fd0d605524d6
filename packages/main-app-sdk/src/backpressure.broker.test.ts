import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Kafka } from 'kafkajs'
import { collectMessages, startBroker, testKafka, waitFor, type TestBroker } from '@detour/testkit'
import { produce, setupTopics, startApp, startFakeWorker } from './test-support/harness.js'

describe('backpressure when the group store is full', () => {
  let broker: TestBroker
  let kafka: Kafka

  beforeAll(async () => {
    broker = await startBroker()
    kafka = testKafka(broker)
  })
  afterAll(async () => {
    await broker.stop()
  })

  it('pauses the partition instead of evicting pending ids, and resumes when tombstones make room', async () => {
    const { topic, groupId, topics } = await setupTopics(broker, 1)
    const warnings: string[] = []
    const app = await startApp(broker, kafka, {
      topic,
      groupId,
      detour: {
        maxPendingIds: 3,
        logger: { debug() {}, info() {}, error() {}, warn: (message) => warnings.push(message) },
      },
      handler: async () => {
        throw new Error('always transient')
      },
    })
    try {
      await produce(kafka, topic, Array.from({ length: 6 }, (_, i) => ({ key: `k${i}`, value: `v${i}` })))
      await waitFor(() => app.detour.stats().pausedPartitions === 1, 'the partition to pause')
      expect(app.detour.stats().pendingIds).toBe(3)
      expect(warnings.some((w) => /Group store full/.test(w))).toBe(true)
      const gauge = await app.detour.registry.getSingleMetricAsString('detour_paused_partitions')
      expect(gauge).toMatch(/detour_paused_partitions 1/)
      const early = await collectMessages(kafka, topics.retry, (c) => c.length >= 3)
      expect(early).toHaveLength(3)

      // The worker releases ids; the paused partition resumes and every message is redirected in order.
      const worker = await startFakeWorker(broker, kafka, topics)
      try {
        await waitFor(() => worker.tombstones.length === 6 && app.detour.stats().pendingIds === 0, 'all six to pass through')
      } finally {
        await worker.stop()
      }
      expect(app.detour.stats().pausedPartitions).toBe(0)
      const retry = await collectMessages(kafka, topics.retry, (c) => c.length >= 6)
      expect(retry.map((r) => r.message.value?.toString())).toEqual(['v0', 'v1', 'v2', 'v3', 'v4', 'v5'])
    } finally {
      await app.stop()
    }
  })

  it('shuts down in the documented order (consumer first) while a partition waits for room: the wait ends, nothing hangs', async () => {
    const { topic, groupId, topics } = await setupTopics(broker, 1)
    const app = await startApp(broker, kafka, {
      topic,
      groupId,
      detour: { maxPendingIds: 1 },
      handler: async () => {
        throw new Error('always transient')
      },
    })
    let stopped = false
    try {
      await produce(kafka, topic, [
        { key: 'k0', value: 'v0' },
        { key: 'k1', value: 'v1' },
      ])
      await waitFor(() => app.detour.stats().pausedPartitions === 1, 'the partition to wait for room')
      const started = Date.now()
      // consumer.disconnect() waits for the eachMessage in progress: the wait for room must end first.
      await app.stop()
      stopped = true
      expect(Date.now() - started).toBeLessThan(15_000)
      expect(app.detour.state).toBe('stopped')
      // v1 was neither redirected nor committed: a restart delivers it again.
      const retry = await collectMessages(kafka, topics.retry, (c) => c.length >= 1)
      expect(retry.map((r) => r.message.value?.toString())).toEqual(['v0'])
    } finally {
      if (!stopped) await app.stop()
    }
  })
})

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Admin, Kafka, Producer } from 'kafkajs'
import { ApiKeys, KafkaErrorCodes, rejoinConsumerTiming, sleep, startBroker, testKafka, waitFor, type TestBroker } from '@detour/testkit'
import { committedOffset, createScenario, header, metricValue, readRecords, recordingHandler, redirect, testWorker } from '../test-support/harness.js'

describe('rebalance', () => {
  let broker: TestBroker
  let kafka: Kafka
  let producer: Producer
  let admin: Admin

  beforeAll(async () => {
    broker = await startBroker()
    kafka = testKafka(broker)
    producer = kafka.producer()
    admin = kafka.admin()
    await Promise.all([producer.connect(), admin.connect()])
  })

  afterAll(async () => {
    await Promise.all([producer?.disconnect(), admin?.disconnect()])
    await broker?.stop()
  })

  it('drops the state of revoked partitions: a handler that finishes after the revocation neither releases nor commits', async () => {
    const scenario = await createScenario(broker, 2)
    const [p0, p1] = await redirect(producer, scenario, [
      { partition: 0, offset: 1, key: 'a' },
      { partition: 1, offset: 1, key: 'b' },
    ])
    // Short sessions on the embedded broker: its rebalance waits on them.
    const consumerConfig = rejoinConsumerTiming(broker)
    const gates: Array<() => void> = []
    const first = recordingHandler(() => new Promise<void>((resolve) => gates.push(resolve)))
    const one = testWorker(kafka, broker, scenario, { handler: first.handler, consumerConfig })
    const revoked: Array<{ topic: string; partition: number }> = []
    one.on('rebalanced', (event) => revoked.push(...event.revoked))
    await one.start()
    await waitFor(() => first.calls.length === 2, 'both handlers to start in the first worker', 10_000)

    const second = recordingHandler()
    const two = testWorker(kafka, broker, scenario, { handler: second.handler, consumerConfig })
    // The embedded broker answers a SyncGroup that arrives after the leader's with INVALID_REQUEST (a real broker
    // returns the assignment), and kafkajs then gives the new consumer up for good. The leader is the first worker,
    // whose JoinGroup is the second one of this rebalance (the new worker's comes first): hold its answer so that
    // the new worker syncs first. Only the coordinator sees JoinGroups; the other brokers keep theirs unused. A mock
    // quirk only: other brokers need no help (nor could they delay a response).
    if (broker.mode === 'embedded') {
      for (const id of broker.brokerIds) {
        broker.injectBrokerErrors(id, ApiKeys.JoinGroup, [{ code: KafkaErrorCodes.NONE }, { code: KafkaErrorCodes.NONE, delayMs: 600 }])
      }
    }
    try {
      await two.start()
      await waitFor(() => revoked.length === 1, 'one partition to move to the second worker', 20_000)
      const moved = revoked[0]!.partition
      const kept = 1 - moved
      const movedId = moved === 0 ? p0 : p1
      const keptId = kept === 0 ? p0 : p1
      expect(one.stats().partitions.map((p) => p.partition)).toEqual([kept])
      expect(await metricValue(one.registry, 'detour_retry_buffered_messages')).toBe(1)

      // The second worker handles the moved record; then the first worker's stuck handlers return.
      await waitFor(() => second.calls.some((c) => c.id === movedId), 'the second worker to handle the moved record', 10_000)
      for (const open of gates) open()
      await waitFor(() => one.stats().buffered === 0, 'the kept record to resolve', 5000)
      await sleep(300)

      const tombstones = (await readRecords(kafka, scenario.topics.redirect, 4)).filter((r) => r.message.value === null)
      expect(tombstones.map((t) => header(t.message, 'detour-id')).sort()).toEqual([p0, p1].sort())
      expect(await metricValue(one.registry, 'detour_retry_tombstones_written_total')).toBe(1)
      expect(await metricValue(two.registry, 'detour_retry_tombstones_written_total')).toBe(1)
      expect(second.calls.map((c) => c.id)).toEqual([movedId])
      expect(first.calls.map((c) => c.id).sort()).toEqual([keptId, movedId].sort())
      await waitFor(async () => (await committedOffset(admin, one.options.groupId, scenario.topics.retry, moved)) === '1', 'commit by the new owner', 5000)
      await waitFor(async () => (await committedOffset(admin, one.options.groupId, scenario.topics.retry, kept)) === '1', 'commit by the old owner', 5000)
    } finally {
      await Promise.all([one.stop({ timeoutMs: 1000 }), two.stop({ timeoutMs: 1000 })])
    }
  })
})

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Admin, Kafka, Producer } from 'kafkajs'
import { sleep, startBroker, testKafka, waitFor, type TestBroker } from '@detour/testkit'
import { committedWithMetadata, createScenario, header, metricValue, readRecords, recordingHandler, redirect, testWorker } from '../test-support/harness.js'
import type { CommittedEvent, RebalancedEvent, TakeoverEvent } from './types.js'

describe('rebalance hand-over', () => {
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

  /** Two partitions, one group per partition, two records per group: the first handled by a slow handler on worker one. */
  async function twoPartitions(): Promise<{ scenario: Awaited<ReturnType<typeof createScenario>>; ids: string[][] }> {
    const scenario = await createScenario(broker, 2)
    const [a1, b1, a2, b2] = await redirect(producer, scenario, [
      { partition: 0, offset: 1, key: 'a' },
      { partition: 1, offset: 1, key: 'b' },
      { partition: 0, offset: 2, key: 'a' },
      { partition: 1, offset: 2, key: 'b' },
    ])
    return { scenario, ids: [[a1!, a2!], [b1!, b2!]] }
  }

  it('the new owner does not run a group before the old owner released the partition; the old owner\'s result counts', async () => {
    const { scenario, ids } = await twoPartitions()
    // Worker one's handlers do not return until the test says so (and ignore their signal).
    const gates: Array<() => void> = []
    let opened = false
    const openGates = (): void => {
      opened = true
      for (const open of gates.splice(0)) open()
    }
    let firstReturnedAt = 0
    const first = recordingHandler(async () => {
      if (!opened) await new Promise<void>((resolve) => gates.push(resolve))
      firstReturnedAt ||= Date.now()
    })
    const one = testWorker(kafka, broker, scenario, { handler: first.handler, handlerTimeoutMs: 20_000 })
    const revoked: RebalancedEvent['revoked'][number][] = []
    const released: Array<{ at: number; offsets: CommittedEvent['offsets'] }> = []
    one.on('rebalanced', (event) => revoked.push(...event.revoked))
    one.on('committed', (event) => {
      if (event.offsets.some((o) => o.state === 'released')) released.push({ at: Date.now(), offsets: event.offsets })
    })
    const second = recordingHandler()
    const two = testWorker(kafka, broker, scenario, { handler: second.handler, handlerTimeoutMs: 20_000 })
    const takenOver: TakeoverEvent[] = []
    two.on('taken-over', (event) => takenOver.push(event))
    try {
      await one.start()
      await waitFor(() => first.calls.length === 2, 'both groups to start on worker one', 15_000)

      await two.start()
      await waitFor(() => revoked.length === 1, 'one partition to move to worker two', 20_000)
      const moved = revoked[0]!.partition
      const [movedFirst, movedSecond] = ids[moved]!
      await waitFor(() => two.stats().partitions.some((p) => p.partition === moved), 'worker two to be assigned the partition', 10_000)
      // Worker one's handler of the moved group still runs: worker two waits, its records buffered.
      await sleep(1500)
      expect(second.calls).toEqual([])
      expect(two.stats().partitions.find((p) => p.partition === moved)).toMatchObject({ phase: 'waiting' })

      openGates()
      await waitFor(() => second.calls.length === 1, 'worker two to run the rest of the moved group', 15_000)
      // Worker one's success counted: tombstoned before the release, so worker two skipped that record and ran the next.
      expect(second.calls.map((c) => c.id)).toEqual([movedSecond])
      expect(first.calls.filter((c) => c.id === movedFirst)).toHaveLength(1)
      expect(released).toHaveLength(1)
      expect(released[0]!.offsets).toEqual([{ topic: scenario.topics.retry, partition: moved, offset: '1', state: 'released' }])
      expect(second.calls[0]!.at).toBeGreaterThanOrEqual(released[0]!.at)
      expect(second.calls[0]!.at).toBeGreaterThanOrEqual(firstReturnedAt)
      expect(takenOver).toEqual([expect.objectContaining({ partition: moved, outcome: 'released', previousOwner: one.instanceId })])
      await waitFor(async () => (await metricValue(two.registry, 'detour_retry_duplicates_skipped_total')) === 1, 'the skip', 5000)

      // Every id tombstoned; the moved group's in order.
      const tombstones = (await readRecords(kafka, scenario.topics.redirect, 4 + 5)).filter((r) => r.message.value === null)
      const ofMoved = tombstones.filter((t) => t.partition === moved).map((t) => header(t.message, 'detour-id'))
      expect(ofMoved).toEqual([movedFirst, movedFirst, movedSecond])
      await waitFor(
        async () => (await committedWithMetadata(admin, two.options.workerGroupId, scenario.topics.retry, moved)).metadata === `detour:owner=${two.instanceId};state=active`,
        'worker two to own the partition in the commits',
        5000,
      )
    } finally {
      openGates()
      await Promise.all([one.stop({ timeoutMs: 1000 }), two.stop({ timeoutMs: 1000 })])
    }
  })

  it('starts after handlerTimeoutMs + 2 s when the old owner\'s handler never returns', async () => {
    const { scenario, ids } = await twoPartitions()
    const first = recordingHandler(() => new Promise<void>(() => {}))
    const handlerTimeoutMs = 1500
    const one = testWorker(kafka, broker, scenario, { handler: first.handler, handlerTimeoutMs, maxAttempts: 100, backoff: { type: 'constant', delayMs: 10 } })
    const revoked: RebalancedEvent['revoked'][number][] = []
    one.on('rebalanced', (event) => revoked.push(...event.revoked))
    const second = recordingHandler()
    const two = testWorker(kafka, broker, scenario, { handler: second.handler, handlerTimeoutMs })
    const takenOver: TakeoverEvent[] = []
    two.on('taken-over', (event) => takenOver.push(event))
    try {
      await one.start()
      await waitFor(() => first.calls.length === 2, 'both groups to start on worker one', 15_000)
      await two.start()
      await waitFor(() => revoked.length === 1, 'one partition to move', 20_000)
      const moved = revoked[0]!.partition
      const assignedAt = Date.now()
      await waitFor(() => second.calls.length === 2, 'worker two to run the moved group after its wait', 15_000)
      expect(Date.now() - assignedAt).toBeGreaterThanOrEqual(handlerTimeoutMs + 1500)
      expect(second.calls.map((c) => c.id)).toEqual(ids[moved])
      expect(takenOver).toEqual([expect.objectContaining({ partition: moved, outcome: 'timeout', previousOwner: one.instanceId })])
      expect(takenOver[0]!.waitedMs).toBeGreaterThanOrEqual(handlerTimeoutMs + 2000 - 100)
      // Worker one never released it: its handler never settled.
      expect(await metricValue(one.registry, 'detour_retry_partition_releases_total', { outcome: 'unsettled' })).toBe(1)
    } finally {
      await Promise.all([one.stop({ timeoutMs: 500 }), two.stop({ timeoutMs: 1000 })])
    }
  })
})

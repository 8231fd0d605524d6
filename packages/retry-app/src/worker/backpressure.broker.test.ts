import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { Admin, Kafka, Producer } from 'kafkajs'
import { ApiKeys, KafkaErrorCodes, rejoinConsumerTiming, sleep, startBroker, testKafka, waitFor, type TestBroker } from '@detour/testkit'
import { committedOffset, createScenario, recordingHandler, redirect, testWorker } from '../test-support/harness.js'
import { noopLogger } from '@detour/core'
import type { RetryWorker } from './retry-worker.js'

describe('backpressure', () => {
  let broker: TestBroker
  let kafka: Kafka
  let producer: Producer
  let admin: Admin
  const workers: RetryWorker[] = []

  beforeAll(async () => {
    broker = await startBroker()
    kafka = testKafka(broker)
    producer = kafka.producer()
    admin = kafka.admin()
    await Promise.all([producer.connect(), admin.connect()])
  })

  afterEach(async () => {
    await Promise.all(workers.splice(0).map((worker) => worker.stop({ timeoutMs: 1000 })))
  })

  afterAll(async () => {
    await Promise.all([producer?.disconnect(), admin?.disconnect()])
    await broker?.stop()
  })

  function track(worker: RetryWorker): RetryWorker {
    workers.push(worker)
    return worker
  }

  it('a held group filling most of the buffer never leaves a partition paused forever: other groups and partitions keep flowing', async () => {
    const scenario = await createScenario(broker, 2)
    // Partition 0: a0 is exhausted and held; a1 and a2 wait behind it. 3 of the 4 buffer slots stay taken.
    const [a0, a1, a2] = await redirect(producer, scenario, [
      { partition: 0, offset: 0, key: 'a' },
      { partition: 0, offset: 1, key: 'a' },
      { partition: 0, offset: 2, key: 'a' },
    ])
    const recorder = recordingHandler((call) => {
      if (call.id === a0) throw new Error('downstream rejects a0')
    })
    const worker = track(testWorker(kafka, broker, scenario, { handler: recorder.handler, maxAttempts: 1, maxBufferedMessages: 4 }))
    const pausedAt: number[] = []
    worker.on('resolved', () => pausedAt.push(worker.stats().pausedPartitions))
    await worker.start()
    await waitFor(() => worker.heldGroups().length === 1, 'a0 to be held', 10_000)
    expect(worker.stats()).toMatchObject({ buffered: 3, pausedPartitions: 0 })

    // Partition 1 delivers c0: the buffer is full (4), so partition 1 is paused; c0 resolves.
    const [c0] = await redirect(producer, scenario, [{ partition: 1, offset: 0, key: 'c' }])
    await waitFor(() => recorder.calls.some((c) => c.id === c0), 'c0', 10_000)
    await waitFor(() => worker.stats().buffered === 3, 'c0 to resolve', 5000)
    // Partition 1 holds nothing: it must be fetching again, so its next record is handled.
    const [c1] = await redirect(producer, scenario, [{ partition: 1, offset: 1, key: 'c' }])
    await waitFor(() => recorder.calls.some((c) => c.id === c1), 'c1 on the partition without a held group', 10_000)

    // The same on the held group's own partition: group b flows past the held group a.
    const [b3] = await redirect(producer, scenario, [{ partition: 0, offset: 3, key: 'b' }])
    await waitFor(() => recorder.calls.some((c) => c.id === b3), 'b3', 10_000)
    await waitFor(() => worker.stats().buffered === 3, 'b3 to resolve', 5000)
    const [b4] = await redirect(producer, scenario, [{ partition: 0, offset: 4, key: 'b' }])
    await waitFor(() => recorder.calls.some((c) => c.id === b4), 'b4 behind a paused-then-resumed partition', 10_000)
    expect(pausedAt.some((n) => n > 0)).toBe(true)

    // Group a still waits, and the commit of partition 0 stays at the held record.
    expect(recorder.calls.filter((c) => c.key === 'a').map((c) => c.id)).toEqual([a0])
    await waitFor(async () => (await committedOffset(admin, worker.options.groupId, scenario.topics.retry, 1)) === '2', 'commit of partition 1', 5000)
    expect(await committedOffset(admin, worker.options.groupId, scenario.topics.retry, 0)).toBe('0')

    // Releasing the held group lets the rest of it run in order.
    expect(await worker.releaseHeld(a0!)).toMatchObject({ released: true })
    await waitFor(() => recorder.calls.filter((c) => c.key === 'a').length === 3, 'a1 and a2 after the release', 10_000)
    expect(recorder.calls.filter((c) => c.key === 'a').map((c) => c.id)).toEqual([a0, a1, a2])
    await waitFor(async () => (await committedOffset(admin, worker.options.groupId, scenario.topics.retry, 0)) === '5', 'final commit of partition 0', 5000)
    expect(worker.stats()).toMatchObject({ buffered: 0, pausedPartitions: 0 })
  })
})

// Heartbeat errors are injected by the broker: a fault-injection broker of its own.
describe('backpressure across a consumer restart', () => {
  let broker: TestBroker
  let kafka: Kafka
  let producer: Producer
  let admin: Admin
  const workers: RetryWorker[] = []

  beforeAll(async () => {
    broker = await startBroker({ needs: ['fault-injection'] })
    kafka = testKafka(broker)
    producer = kafka.producer()
    admin = kafka.admin()
    await Promise.all([producer.connect(), admin.connect()])
  })

  afterEach(async () => {
    await Promise.all(workers.splice(0).map((worker) => worker.stop({ timeoutMs: 1000 })))
  })

  afterAll(async () => {
    await Promise.all([producer?.disconnect(), admin?.disconnect()])
    await broker?.stop()
  })

  function track(worker: RetryWorker): RetryWorker {
    workers.push(worker)
    return worker
  }

  it('keeps a partition paused for the buffer paused after kafkajs restarts the crashed consumer', async () => {
    const scenario = await createScenario(broker, 2)
    // Groups a and b never finish while the test looks: they fill the buffer (2) on partition 0.
    const gates: Array<() => void> = []
    const recorder = recordingHandler((call) => {
      if (call.key === 'a' || call.key === 'b') return new Promise<void>((resolve) => gates.push(resolve))
    })
    // Few kafkajs retries: failing heartbeats soon crash the consumer, and kafkajs restarts it (a new group session).
    const consumerConfig = { ...rejoinConsumerTiming(broker), retry: { retries: 2, initialRetryTime: 100 } }
    const warnings: string[] = []
    const logger = { ...noopLogger, warn: (message: string) => void warnings.push(message) }
    const worker = track(testWorker(kafka, broker, scenario, { handler: recorder.handler, maxBufferedMessages: 2, consumerConfig, logger }))
    let joins = 0
    worker.on('rebalanced', () => joins++)
    await redirect(producer, scenario, [
      { partition: 0, offset: 0, key: 'a' },
      { partition: 0, offset: 1, key: 'b' },
    ])
    await worker.start()
    await waitFor(() => recorder.calls.length === 2 && worker.stats().pausedPartitions === 1, 'partition 0 to be paused with a full buffer', 10_000)

    // Partition 1 delivers x0 over the bound: it is paused too; x0 resolves and is committed, but the buffer stays full.
    await redirect(producer, scenario, [{ partition: 1, offset: 0, key: 'x' }])
    await waitFor(async () => (await committedOffset(admin, worker.options.groupId, scenario.topics.retry, 1)) === '1', 'x0 to be committed', 10_000)
    expect(worker.stats()).toMatchObject({ pausedPartitions: 2, buffered: 2 })
    // Records that arrive now on partition 1 stay in Kafka.
    await redirect(producer, scenario, [
      { partition: 1, offset: 1, key: 'y' },
      { partition: 1, offset: 2, key: 'z' },
    ])
    await sleep(500)
    expect(recorder.calls).toHaveLength(3)

    // Every partition is paused, so the consumer only heartbeats: failing heartbeats crash it and kafkajs restarts it.
    const crashed = (): boolean => warnings.some((m) => m.startsWith('Retry consumer crashed; kafkajs restarts it'))
    broker.injectErrors(ApiKeys.Heartbeat, Array.from({ length: 100 }, () => KafkaErrorCodes.REQUEST_TIMED_OUT))
    try {
      await waitFor(crashed, 'the consumer to crash', 20_000)
    } finally {
      broker.clearErrors(ApiKeys.Heartbeat)
    }
    await waitFor(() => joins >= 2 && worker.ready, 'the restarted consumer to join', 20_000)
    await sleep(800)
    // Paused again when the new session joined, before its first fetch: y1 and z2 were not read.
    expect(worker.stats()).toMatchObject({ pausedPartitions: 2, buffered: 2 })
    expect(recorder.calls).toHaveLength(3)
    for (const open of gates) open()
  })
})

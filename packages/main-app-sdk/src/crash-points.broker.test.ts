import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { EachMessagePayload, Kafka } from 'kafkajs'
import { DetourHeaders, decodeRetryRecord, headerString } from '@detour/core'
import { ApiKeys, KafkaErrorCodes, collectMessages, startBroker, testKafka, waitFor, type TestBroker } from '@detour/testkit'
import { createDetour, UnprocessableMessageError } from './index.js'
import { entry, produce, setupTopics, startApp, startFakeWorker, type LogEntry } from './test-support/harness.js'

/**
 * Crash points of a sequential hand-off (redirect → retry → commit), with protocol errors injected by the
 * embedded broker (the only one that can): the instance dies at each point (no in-process restart), and
 * a fresh instance takes over. Every message must be processed, in per-key order, and no id may stay
 * pending. (Transactional hand-offs: `hand-off/crash-points.test.ts` against an in-memory broker, and
 * `fencing.broker.test.ts` on Kafka.)
 */
describe('crash points between the writes of a sequential hand-off (embedded broker)', () => {
  let broker: TestBroker
  let kafka: Kafka

  beforeAll(async () => {
    broker = await startBroker({ needs: ['fault-injection'] })
    kafka = testKafka(broker)
  })
  afterAll(async () => {
    await broker.stop()
  })
  afterEach(() => {
    broker.clearErrors(ApiKeys.Produce)
  })

  /** Instance 1: fragile producer (no retries) and a consumer that dies instead of restarting. */
  async function startFragile(topic: string, groupId: string, handler: (p: EachMessagePayload) => Promise<void>, autoCommit = true) {
    const producer = kafka.producer({ retry: { retries: 0 } })
    await producer.connect()
    const consumer = kafka.consumer({ groupId, ...broker.consumerTiming, retry: { retries: 0, restartOnFailure: async () => false } })
    const detour = createDetour({
      kafka,
      consumer,
      groupId,
      topics: [topic],
      topicAdmin: broker.topicAdmin,
      handOff: 'sequential',
      producer,
      followerConfig: { maxWaitTimeInMs: 100 },
    })
    let crashed: Error | undefined
    consumer.on(consumer.events.CRASH, (event) => {
      crashed = event.payload.error
    })
    await detour.start()
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    await consumer.run({ autoCommit, eachMessage: detour.eachMessage(handler) })
    return {
      detour,
      crashed: () => crashed,
      async stop() {
        await consumer.disconnect()
        await detour.stop()
        await producer.disconnect()
      },
    }
  }

  async function committed(groupId: string, topic: string): Promise<string> {
    const admin = kafka.admin()
    await admin.connect()
    try {
      const [result] = await admin.fetchOffsets({ groupId, topics: [topic] })
      return result?.partitions.find((p) => p.partition === 0)?.offset ?? '-1'
    } finally {
      await admin.disconnect()
    }
  }

  /** Runs the scenario: A (k1) fails, B (k1) follows, C (k2) is independent. */
  async function scenario(inject: (() => void) | undefined, options: { autoCommit?: boolean; waitForRetryRecords?: number } = {}) {
    const { topic, groupId, topics } = await setupTopics(broker, 1)
    const log: LogEntry[] = []
    const handler = async (payload: EachMessagePayload): Promise<void> => {
      if (payload.message.value?.toString() === 'A') throw new Error('transient')
      log.push(entry('main', payload))
    }
    await produce(kafka, topic, [
      { key: 'k1', value: 'A' },
      { key: 'k1', value: 'B' },
      { key: 'k2', value: 'C' },
    ])
    // The SDK's own writes are the only produce requests from here on: inject before it starts.
    inject?.()
    const first = await startFragile(topic, groupId, handler, options.autoCommit ?? true)
    if (options.waitForRetryRecords !== undefined) {
      await collectMessages(kafka, topics.retry, (c) => c.length >= options.waitForRetryRecords!)
      await waitFor(() => log.some((e) => e.value === 'C'), 'C processed by instance 1')
    } else {
      await waitFor(() => first.crashed() !== undefined, 'instance 1 to die on the failed hand-off')
      const names: string[] = []
      type Chain = Error & { originalError?: Chain; cause?: Chain }
      for (let e = first.crashed() as Chain | undefined; e; e = e.originalError ?? e.cause) names.push(e.name)
      expect(names).toContain('DetourHandOffError')
      // Nothing past A was committed.
      expect(['-1', '0']).toContain(await committed(groupId, topic))
    }
    await first.stop()
    broker.clearErrors(ApiKeys.Produce)

    const second = await startApp(broker, kafka, { name: 'second', topic, groupId, handler })
    const worker = await startFakeWorker(broker, kafka, topics, (payload) => {
      log.push(entry('worker', payload))
      return true
    })
    try {
      await waitFor(
        () => ['A', 'B', 'C'].every((v) => log.some((e) => e.value === v)) && second.detour.ready && second.detour.stats().pendingIds === 0,
        'A, B, C processed and no pending ids',
      )
      const firstSeen = [...new Set(log.map((e) => e.value))]
      expect(firstSeen.indexOf('A')).toBeLessThan(firstSeen.indexOf('B'))
      const retry = await collectMessages(kafka, topics.retry, (c) => c.length >= 2)
      const ids = retry.map((r) => decodeRetryRecord(r.message).id)
      // Every retry record of a message carries the same deterministic id.
      expect(new Set(ids)).toEqual(new Set([`${topic}/0/0`, `${topic}/0/1`]))
      return { log, retry, second }
    } finally {
      await worker.stop()
      await second.stop()
    }
  }

  it('redirect write fails: nothing is committed, the next instance redirects A again', async () => {
    const { log, retry } = await scenario(() => broker.injectErrors(ApiKeys.Produce, [KafkaErrorCodes.NOT_ENOUGH_REPLICAS]))
    expect(retry.map((r) => r.message.value?.toString())).toEqual(['A', 'B'])
    expect(log.filter((e) => e.by === 'worker').map((e) => e.value)).toEqual(['A', 'B'])
  })

  it('retry write fails after the redirect record: the next instance resumes the hand-off of its own pending id', async () => {
    const { retry, second } = await scenario(() =>
      broker.injectErrors(ApiKeys.Produce, [KafkaErrorCodes.NONE, KafkaErrorCodes.NOT_ENOUGH_REPLICAS]),
    )
    // A's hand-off is resumed by a fresh instance: the reason of the first attempt died with instance 1.
    expect(retry.map((r) => [r.message.value?.toString(), headerString(r.message.headers, DetourHeaders.REASON)])).toEqual([
      ['A', 'failure'],
      ['B', 'ordering'],
    ])
    const resumed = await second.detour.registry.getSingleMetricAsString('detour_messages_redirected_total')
    expect(resumed).toMatch(/reason="resumed"} 1/)
  })

  it('crash after both writes, before the commit: the retry record is written again with the same id (a duplicate, never a loss)', async () => {
    const { retry, log } = await scenario(undefined, { autoCommit: false, waitForRetryRecords: 2 })
    const values = retry.map((r) => r.message.value?.toString())
    expect(values.slice(0, 2)).toEqual(['A', 'B'])
    // Instance 2 saw A and B again with their ids pending → redirected again behind themselves.
    expect(values.filter((v) => v === 'A').length).toBeGreaterThanOrEqual(1)
    const workerFirst = [...new Set(log.filter((e) => e.by === 'worker').map((e) => e.value))]
    expect(workerFirst).toEqual(['A', 'B'])
  })

  it('dead-letter write fails: the message is not committed and reaches the error topic on the next delivery', async () => {
    const { topic, groupId, topics } = await setupTopics(broker, 1)
    const handler = async (payload: EachMessagePayload): Promise<void> => {
      if (payload.message.value?.toString() === 'poison') throw new UnprocessableMessageError('bad')
    }
    await produce(kafka, topic, [{ key: 'k', value: 'poison' }])
    broker.injectErrors(ApiKeys.Produce, [KafkaErrorCodes.NOT_ENOUGH_REPLICAS])
    const first = await startFragile(topic, groupId, handler)
    await waitFor(() => first.crashed() !== undefined, 'instance 1 to die on the failed dead-letter write')
    await first.stop()
    broker.clearErrors(ApiKeys.Produce)
    const second = await startApp(broker, kafka, { topic, groupId, handler })
    try {
      const dlt = await collectMessages(kafka, topics.error, (c) => c.length >= 1)
      expect(headerString(dlt[0]!.message.headers, DetourHeaders.REASON)).toBe('unprocessable')
      expect(dlt[0]!.message.value?.toString()).toBe('poison')
    } finally {
      await second.stop()
    }
  })

  it('a retry record the broker rejects as too large is dead-lettered without its value and its id released', async () => {
    const { topic, groupId, topics } = await setupTopics(broker, 1)
    const log: LogEntry[] = []
    const app = await startApp(broker, kafka, {
      topic,
      groupId,
      detour: {},
      handler: async (payload) => {
        if (payload.message.value?.toString() === 'huge') throw new Error('transient')
        log.push(entry('main', payload))
      },
    })
    try {
      await waitFor(() => app.detour.ready, 'ready')
      await produce(kafka, topic, [{ key: 'k', value: 'huge' }])
      broker.injectErrors(ApiKeys.Produce, [KafkaErrorCodes.NONE, KafkaErrorCodes.MESSAGE_TOO_LARGE, KafkaErrorCodes.MESSAGE_TOO_LARGE])
      const dlt = await collectMessages(kafka, topics.error, (c) => c.length >= 1)
      expect(headerString(dlt[0]!.message.headers, DetourHeaders.REASON)).toBe('record-too-large')
      expect(dlt[0]!.message.value).toBeNull()
      await waitFor(() => app.detour.stats().pendingIds === 0, 'the id to be released')
      await produce(kafka, topic, [{ key: 'k', value: 'next' }])
      await waitFor(() => log.some((e) => e.value === 'next'), 'the key to flow again')
    } finally {
      broker.clearErrors(ApiKeys.Produce)
      await app.stop()
    }
  })

  it('a redirect record that landed but whose acknowledgement was lost: the partition syncs again and resumes the hand-off (no zombie id)', async () => {
    const { topic, groupId, topics } = await setupTopics(broker, 1)
    const log: LogEntry[] = []
    let failures = 0
    // The client gives up after two attempts of 1 s each: the outcome of the write is unknown to Detour.
    const impatient = testKafka(broker, { requestTimeout: 1000, retry: { retries: 1, initialRetryTime: 100 } })
    const app = await startApp(broker, impatient, {
      topic,
      groupId,
      detour: { producerConfig: { retry: { retries: 1, initialRetryTime: 100 } } },
      handler: async (payload) => {
        // A fails once only: if its redelivery were decided on stale knowledge, it would be processed here
        // and the redirect record that landed would stay pending for ever.
        if (payload.message.value?.toString() === 'A' && failures++ === 0) throw new Error('transient')
        log.push(entry('main', payload))
      },
    })
    try {
      await waitFor(() => app.detour.ready, 'ready')
      // The redirect record is written, but its response arrives after the client's timeout.
      const late = { code: KafkaErrorCodes.NONE, delayMs: 2500 }
      for (const id of broker.brokerIds) broker.injectBrokerErrors(id, ApiKeys.Produce, [late, late])
      await produce(kafka, topic, [{ key: 'k1', value: 'A' }])
      const retry = await collectMessages(kafka, topics.retry, (c) => c.length >= 1, 30_000)
      expect(retry.map((r) => r.message.value?.toString())).toEqual(['A'])
      expect(log.map((e) => e.value)).toEqual([])
      expect(app.detour.pendingIds(topic, 0, 'k1')).toEqual([`${topic}/0/0`])
      const redirected = await app.detour.registry.getSingleMetricAsString('detour_messages_redirected_total')
      expect(redirected).toMatch(/reason="resumed"} 1/)
    } finally {
      broker.clearErrors(ApiKeys.Produce)
      await app.stop()
    }
  })
})

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KafkaJSError, type Kafka } from 'kafkajs'
import { ApiKeys, KafkaErrorCodes, collectMessages, randomName, rejoinConsumerTiming, sleep, startBroker, testKafka, waitFor, type TestBroker } from './index.js'

describe('test broker', () => {
  let broker: TestBroker
  let kafka: Kafka

  beforeAll(async () => {
    broker = await startBroker()
    kafka = testKafka(broker)
  })

  afterAll(async () => {
    await broker.stop()
  })

  it('produces and consumes records with headers and null-value tombstones, in order', async () => {
    const topic = randomName('topic')
    await broker.createTopic(topic, 3)
    const producer = kafka.producer({ idempotent: true })
    await producer.connect()
    await producer.send({
      topic,
      messages: [
        { partition: 1, key: 'k', value: 'v1', headers: { 'detour-id': 'a/1/0', bin: Buffer.from([0xff, 0x00]) } },
        { partition: 1, key: 'k', value: null, headers: { 'detour-id': 'a/1/0' } },
        { partition: 1, key: 'k', value: 'v2' },
      ],
    })
    await producer.disconnect()
    const got = await collectMessages(kafka, topic, (c) => c.length >= 3)
    expect(got.map((m) => [m.partition, m.message.offset, m.message.value?.toString() ?? null])).toEqual([
      [1, '0', 'v1'],
      [1, '1', null],
      [1, '2', 'v2'],
    ])
    expect(got[0]!.message.headers!['detour-id']!.toString()).toBe('a/1/0')
    expect(got[0]!.message.headers!.bin).toEqual(Buffer.from([0xff, 0x00]))
  })

  it('splits partitions between two members of a consumer group and rebalances when one leaves', async () => {
    const topic = randomName('topic')
    await broker.createTopic(topic, 4)
    const groupId = randomName('group')
    const assignments = new Map<string, number[]>()
    const consumers = [0, 1].map((i) => {
      // A member leaves below: the embedded broker notices it only at its session timeout (short there).
      const consumer = kafka.consumer({ groupId, ...rejoinConsumerTiming(broker) })
      consumer.on(consumer.events.GROUP_JOIN, (event) => {
        assignments.set(`c${i}`, event.payload.memberAssignment[topic] ?? [])
      })
      return consumer
    })
    for (const [i, consumer] of consumers.entries()) {
      if (i === 1 && broker.mode === 'embedded') {
        // The mock answers a SyncGroup that arrives after the leader's with INVALID_REQUEST (see embeddedBrokerGap).
        // When c1 joins, c0 (the leader) rejoins second: hold its JoinGroup answer so that c1 syncs first.
        for (const id of broker.brokerIds) {
          broker.injectBrokerErrors(id, ApiKeys.JoinGroup, [{ code: KafkaErrorCodes.NONE }, { code: KafkaErrorCodes.NONE, delayMs: 600 }])
        }
      }
      await consumer.connect()
      await consumer.subscribe({ topic, fromBeginning: true })
      await consumer.run({ eachMessage: async () => {} })
    }
    await waitFor(
      () => (assignments.get('c0')?.length ?? 0) + (assignments.get('c1')?.length ?? 0) === 4 && assignments.get('c0')!.length > 0 && assignments.get('c1')!.length > 0,
      'both members to share the 4 partitions',
      30_000,
    )
    await consumers[1]!.disconnect()
    await waitFor(() => assignments.get('c0')?.length === 4, 'the remaining member to take every partition', 30_000)
    await consumers[0]!.disconnect()
  })
})

// Protocol-level faults exist only on a fault-injection broker (the embedded mock, always built by the install).
describe('fault injection', () => {
  let broker: TestBroker
  let kafka: Kafka

  beforeAll(async () => {
    broker = await startBroker({ needs: ['fault-injection'] })
    kafka = testKafka(broker)
  })

  afterAll(async () => {
    await broker.stop()
  })

  it('delivers an injected produce error to kafkajs', async () => {
    const topic = randomName('topic')
    await broker.createTopic(topic, 1)
    const producer = kafka.producer({ retry: { retries: 0 } })
    await producer.connect()
    broker.injectErrors(ApiKeys.Produce, [KafkaErrorCodes.NOT_ENOUGH_REPLICAS])
    const error = await producer.send({ topic, messages: [{ value: 'x' }] }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(KafkaJSError)
    expect(String((error as Error).message)).toMatch(/replicas/i)
    // The next request goes through.
    await producer.send({ topic, messages: [{ value: 'y' }] })
    await producer.disconnect()
  })

  it('takes a broker down and up again', async () => {
    const topic = randomName('topic')
    await broker.createTopic(topic, 2)
    const producer = kafka.producer({ retry: { retries: 20, initialRetryTime: 50, maxRetryTime: 500 } })
    await producer.connect()
    // Every broker refuses connections: the send cannot complete until they are back.
    for (const id of broker.brokerIds) broker.setBrokerDown(id)
    let sentAt = 0
    const sending = producer.send({ topic, messages: [{ partition: 0, value: 'a' }, { partition: 1, value: 'b' }] }).then(() => {
      sentAt = Date.now()
    })
    await sleep(800)
    expect(sentAt).toBe(0)
    const upAt = Date.now()
    for (const id of broker.brokerIds) broker.setBrokerUp(id)
    await sending
    expect(sentAt).toBeGreaterThanOrEqual(upAt)
    await producer.disconnect()
  })
})

describe('embedded broker lifecycle', () => {
  it('stops cleanly and leaves no handles behind', async () => {
    // The embedded broker runs in this process whatever the run's broker is.
    const probe = await startBroker({ mode: 'embedded' })
    const before = new Set(process.getActiveResourcesInfo())
    const beforeCount = process.getActiveResourcesInfo().length
    const kafka = testKafka(probe)
    await probe.createTopic('lifecycle', 1)
    const producer = kafka.producer()
    await producer.connect()
    await producer.send({ topic: 'lifecycle', messages: [{ value: 'x' }] })
    await producer.disconnect()
    await probe.stop()
    await probe.stop() // idempotent
    await expect(probe.createTopic('after-stop', 1)).rejects.toThrow(/stopped/)
    await waitFor(() => process.getActiveResourcesInfo().filter((r) => r !== 'Timeout').length <= beforeCount, 'handles to close', 5000)
    expect([...before].length).toBeGreaterThan(0)
  })
})

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Kafka } from 'kafkajs'
import { isFencedError } from '@detour/core'
import { randomName, resolveBrokerMode, startBroker, testKafka, type TestBroker } from '@detour/testkit'
import type { LogRecord } from './topic-log.js'
import { KafkaTopicLog } from './kafka-topic-log.js'
import { KafkaTopicWriter } from './kafka-topic-writer.js'

describe('KafkaTopicLog and KafkaTopicWriter on the broker', () => {
  let broker: TestBroker
  let kafka: Kafka
  let log: KafkaTopicLog
  let writer: KafkaTopicWriter

  beforeAll(async () => {
    broker = await startBroker()
    kafka = testKafka(broker)
    const t = broker.consumerTiming
    log = new KafkaTopicLog({ kafka, consumerConfig: { maxWaitTimeInMs: t.maxWaitTimeInMs, sessionTimeout: t.sessionTimeout, heartbeatInterval: t.heartbeatInterval, rebalanceTimeout: t.rebalanceTimeout } })
    writer = new KafkaTopicWriter(kafka)
  })
  afterAll(async () => {
    await writer?.close()
    await broker?.stop()
  })

  it('reads exactly the asked ranges of several partitions, in offset order, and knows the bounds', async () => {
    const topic = randomName('log')
    await broker.createTopic(topic, 3)
    for (let i = 0; i < 5; i++) await writer.send({ topic, messages: [{ partition: 0, key: `k${i}`, value: `v${i}`, headers: { h: `x${i}` } }] })
    await writer.send({ topic, messages: [0, 1, 2].map((i) => ({ partition: 1, key: null, value: `p1-${i}` })) })
    expect(await log.bounds(randomName('missing'))).toBeUndefined()
    const bounds = await log.bounds(topic)
    expect([...bounds!].map(([p, b]) => [p, b.low, b.high])).toEqual([
      [0, 0n, 5n],
      [1, 0n, 3n],
      [2, 0n, 0n],
    ])
    const read: LogRecord[] = []
    const outcomes = await log.read(
      [
        { topic, partition: 0, from: 1n, to: 4n },
        { topic, partition: 1, from: 0n, to: 3n },
        { topic, partition: 2, from: 0n, to: 0n },
      ],
      (record) => read.push(record),
    )
    expect(read.map((r) => `${r.partition}/${r.offset}/${r.value?.toString()}`).sort()).toEqual(['0/1/v1', '0/2/v2', '0/3/v3', '1/0/p1-0', '1/1/p1-1', '1/2/p1-2'])
    expect(read.filter((r) => r.partition === 0).map((r) => r.offset)).toEqual(['1', '2', '3'])
    expect(read.filter((r) => r.partition === 1).map((r) => r.offset)).toEqual(['0', '1', '2'])
    expect(read.find((r) => r.offset === '2' && r.partition === 0)!.headers.h).toEqual(Buffer.from('x2'))
    expect(outcomes.map((o) => [o.partition, o.reached, o.complete])).toEqual([
      [0, 4n, true],
      [1, 3n, true],
      [2, 0n, true],
    ])
  })

  it('reads read_committed: an aborted transaction is invisible and its markers are passed over', async (context) => {
    const choice = await resolveBrokerMode()
    if (choice.mode === 'embedded') context.skip(`the embedded broker's transactions are not faithful (${choice.reason})`)
    const topic = randomName('txn')
    await broker.createTopic(topic, 1)
    const producer = kafka.producer({ transactionalId: randomName('txn'), idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    try {
      const aborted = await producer.transaction()
      await aborted.send({ topic, messages: [{ value: 'aborted-1' }, { value: 'aborted-2' }] })
      await aborted.abort()
      const committed = await producer.transaction()
      await committed.send({ topic, messages: [{ value: 'committed' }] })
      await committed.commit()
    } finally {
      await producer.disconnect()
    }
    const bounds = (await log.bounds(topic))!.get(0)!
    const values: string[] = []
    const [outcome] = await log.read([{ topic, partition: 0, from: bounds.low, to: bounds.high }], (record) => values.push(record.value!.toString()))
    expect(values).toEqual(['committed'])
    expect(outcome).toMatchObject({ reached: bounds.high, complete: true })
  })

  it('reads a topic created a moment ago (its metadata may still be settling)', async () => {
    for (let i = 0; i < 3; i++) {
      const topic = randomName('fresh')
      await writer.createTopic({ topic, partitions: 2, compact: true })
      await writer.send({ topic, messages: [{ partition: 1, key: 'k', value: 'v' }] })
      const bounds = (await log.bounds(topic))!
      const read: string[] = []
      const outcomes = await log.read(
        [...bounds].map(([partition, { low, high }]) => ({ topic, partition, from: low, to: high })),
        (record) => read.push(`${record.partition}/${record.offset}`),
      )
      expect(read).toEqual(['1/0'])
      expect(outcomes.every((outcome) => outcome.complete)).toBe(true)
    }
  })

  it('finds offsets by time and a group\'s committed offsets', async () => {
    const topic = randomName('time')
    await broker.createTopic(topic, 1)
    const t0 = Date.now() - 60_000
    await writer.send({ topic, messages: [0, 1, 2].map((i) => ({ partition: 0, value: `v${i}`, timestamp: String(t0 + i * 10_000) })) })
    expect((await log.offsetsAt(topic, t0 + 5000)).get(0)).toBe(1n)
    expect((await log.offsetsAt(topic, Date.now() + 60_000)).get(0)).toBe(3n)
    const groupId = randomName('group')
    expect(await log.committedOffsets(groupId, topic)).toEqual(new Map())
    const admin = kafka.admin()
    await admin.connect()
    try {
      await admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: '2' }] })
    } finally {
      await admin.disconnect()
    }
    expect(await log.committedOffsets(groupId, topic)).toEqual(new Map([[0, 2n]]))
  })

  it('commits a transaction across topics and reports where each record landed; a second claim fences the first', async () => {
    const a = randomName('a')
    const b = randomName('b')
    await broker.createTopic(a, 2)
    await writer.createTopic({ topic: b, partitions: 1, compact: true })
    await writer.createTopic({ topic: b, partitions: 1, compact: true })
    await writer.send({ topic: a, messages: [{ partition: 1, value: 'first' }] })
    const transactionalId = randomName('replay')
    const first = await writer.transactional(transactionalId)
    const written = await first.commit([
      { topic: a, messages: [{ partition: 1, value: 'x' }, { partition: 1, value: 'y' }] },
      { topic: b, messages: [{ partition: 0, key: 'k', value: 'ledger' }] },
    ])
    expect(written).toEqual([
      { topic: a, partition: 1, offset: '1' },
      { topic: a, partition: 1, offset: '2' },
      { topic: b, partition: 0, offset: '0' },
    ])
    const second = await writer.transactional(transactionalId)
    let failure: unknown
    try {
      await first.commit([{ topic: a, messages: [{ partition: 0, value: 'late' }] }])
    } catch (error) {
      failure = error
    }
    expect(isFencedError(failure)).toBe(true)
    await first.close()
    await second.close()
    const values: string[] = []
    await log.read([{ topic: a, partition: 0, from: 0n, to: (await log.bounds(a))!.get(0)!.high }], (record) => values.push(record.value!.toString()))
    expect(values).toEqual([])
  })
})

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Kafka } from 'kafkajs'
import { KafkaTopicAdmin, detourTopics } from '@detour/core'
import { randomName, resolveBrokerMode, skippedBecause, startBroker, testKafka, waitFor, type TestBroker } from '@detour/testkit'
import { createDetour, type Detour } from './index.js'
import { entry, produce, type LogEntry } from './test-support/harness.js'

const choice = await resolveBrokerMode({ needs: ['admin-api'] })

/**
 * Partitions added to a running system (CreatePartitions: only brokers with the admin API). Done right
 * (source, retry and redirect topics together), the new partition is tracked like the others: its later
 * messages wait behind its pending ids. Done wrong (the source topic only), the partition is paused with
 * an error that says how to fix it, instead of its records going to a partition that does not exist.
 */
describe.skipIf(choice.unavailable !== undefined)(skippedBecause('partitions added at runtime', choice.unavailable), () => {
  let broker: TestBroker
  let kafka: Kafka

  beforeAll(async () => {
    broker = await startBroker({ needs: ['admin-api'] })
    kafka = testKafka(broker)
  })
  afterAll(async () => {
    await broker.stop()
  })

  async function app(
    topic: string,
    groupId: string,
    log: LogEntry[],
    errors: Error[],
  ): Promise<{ detour: Detour; stop: () => Promise<void> }> {
    const consumer = kafka.consumer({ groupId, ...broker.consumerTiming, metadataMaxAge: 1000 })
    const detour = createDetour({
      kafka,
      consumer,
      groupId,
      topics: [topic],
      topicAdmin: new KafkaTopicAdmin(kafka),
      followerConfig: { maxWaitTimeInMs: 100 },
    })
    detour.on('error', (error) => errors.push(error))
    await detour.start()
    const eachMessage = detour.eachMessage(async (payload) => {
      if (payload.message.value?.toString().startsWith('fail')) throw new Error('down')
      log.push(entry('main', payload))
    })
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    await consumer.run({ eachMessage })
    return {
      detour,
      stop: async () => {
        await consumer.disconnect()
        await detour.stop()
      },
    }
  }

  async function grow(topics: string[], count: number): Promise<void> {
    const admin = kafka.admin()
    await admin.connect()
    try {
      await admin.createPartitions({ topicPartitions: topics.map((topic) => ({ topic, count })) })
    } finally {
      await admin.disconnect()
    }
  }

  it('tracks a partition added to the source, retry and redirect topics: its later messages wait behind its pending ids', async () => {
    const topic = randomName('src')
    const groupId = randomName('app')
    const names = detourTopics(topic, groupId)
    await broker.createTopic(topic, 1)
    const log: LogEntry[] = []
    const errors: Error[] = []
    const first = await app(topic, groupId, log, errors)
    try {
      await waitFor(() => first.detour.ready, 'ready')
      await grow([topic, names.retry, names.redirect], 2)
      // A new member makes the group rebalance: partition 1 is assigned to one of the two.
      const second = await app(topic, groupId, log, errors)
      try {
        await waitFor(() => first.detour.stats().partitions.length + second.detour.stats().partitions.length === 2, 'both partitions assigned', 30_000)
        await produce(kafka, topic, [
          { key: 'k1', value: 'fail-A', partition: 1 },
          { key: 'k1', value: 'B', partition: 1 },
          { key: 'k2', value: 'C', partition: 1 },
        ])
        const owner = [first, second].find((a) => a.detour.stats().partitions.some((p) => p.partition === 1))!
        await waitFor(() => log.some((e) => e.value === 'C'), 'C processed', 30_000)
        expect(log.map((e) => e.value)).toEqual(['C'])
        expect(owner.detour.pendingIds(topic, 1, 'k1')).toEqual([`${topic}/1/0`, `${topic}/1/1`])
        expect(errors).toEqual([])
      } finally {
        await second.stop()
      }
    } finally {
      await first.stop()
    }
  })

  it('pauses a partition added to the source topic only, with an error that says how to fix it', async () => {
    const topic = randomName('src')
    const groupId = randomName('app')
    const names = detourTopics(topic, groupId)
    await broker.createTopic(topic, 1)
    const log: LogEntry[] = []
    const errors: Error[] = []
    const first = await app(topic, groupId, log, errors)
    try {
      await waitFor(() => first.detour.ready, 'ready')
      // kafkajs finds the new partition at its next metadata refresh (1 s here) and rejoins the group.
      await grow([topic], 2)
      await waitFor(() => errors.some((e) => e.name === 'DetourTopicError'), 'the mismatch to be reported', 30_000)
      const error = errors.find((e) => e.name === 'DetourTopicError')!
      expect(error.message).toMatch(new RegExp(`${topic}/1 has no retry or redirect partition`))
      expect(error.message).toMatch(new RegExp(`kafka-topics --alter --topic ${names.retry} --partitions 2`))
      await waitFor(() => first.detour.stats().partitions.some((p) => p.partition === 0 && p.state === 'ready'), 'partition 0 ready again')
      expect(first.detour.stats().partitions.map((p) => [p.partition, p.state])).toEqual([
        [0, 'ready'],
        [1, 'mismatch'],
      ])
      // Partition 1's message waits (not routed to a retry partition that does not exist); partition 0 goes on.
      await produce(kafka, topic, [
        { key: 'k', value: 'fail-on-1', partition: 1 },
        { key: 'k', value: 'on-0', partition: 0 },
      ])
      await waitFor(() => log.some((e) => e.value === 'on-0'), 'partition 0 to flow')
      expect(first.detour.stats().pendingIds).toBe(0)
    } finally {
      await first.stop()
    }
  })
})

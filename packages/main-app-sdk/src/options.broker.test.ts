import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Kafka, logLevel } from 'kafkajs'
import { detourTopics } from '@detour/core'
import { randomName, startBroker, testKafka, type TestBroker } from '@detour/testkit'
import { createDetour, DetourConfigError, DetourTopicError, ErrorCodes } from './index.js'

const kafka = new Kafka({ brokers: ['127.0.0.1:1'], logLevel: logLevel.NOTHING })
const consumer = kafka.consumer({ groupId: 'g' })
const base = { kafka, consumer, groupId: 'g', topics: ['t'] }

describe('options are validated at construction', () => {
  it.each([
    [{ ...base, kafka: undefined }, 'kafka'],
    [{ ...base, consumer: {} }, 'consumer'],
    [{ ...base, groupId: '' }, 'groupId'],
    [{ ...base, topics: [] }, 'topics'],
    [{ ...base, topics: ['t', 't'] }, 'topics'],
    [{ ...base, inPlaceRetries: -1 }, 'inPlaceRetries'],
    [{ ...base, inPlaceRetries: 11 }, 'inPlaceRetries'],
    [{ ...base, maxPendingIds: 0 }, 'maxPendingIds'],
    [{ ...base, groupKey: 'key' }, 'groupKey'],
    [{ ...base, groupId: 'has space' }, 'topics.retry'],
  ])('rejects %#', (options, option) => {
    let error: unknown
    try {
      createDetour(options as never)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(DetourConfigError)
    expect((error as DetourConfigError).option).toBe(option)
    expect((error as DetourConfigError).code).toBe(ErrorCodes.INVALID_OPTION)
  })

  it('accepts the minimal options and derives topic names that include the group id', () => {
    const detour = createDetour(base)
    expect(detour.topics.get('t')).toEqual({ source: 't', retry: 't-g-retry', redirect: 't-g-redirect', error: 't-g-dlt' })
  })

  it('refuses to consume before start()', async () => {
    const detour = createDetour(base)
    const handler = detour.eachMessage(async () => {})
    await expect(
      handler({ topic: 't', partition: 0, message: { key: null, value: null, offset: '0', timestamp: '0', attributes: 0, size: 0, headers: {} }, heartbeat: async () => {}, pause: () => () => {} }),
    ).rejects.toMatchObject({ code: ErrorCodes.NOT_RUNNING })
  })
})

describe('topics are validated at start', () => {
  let broker: TestBroker
  beforeAll(async () => {
    broker = await startBroker()
  })
  afterAll(async () => {
    await broker.stop()
  })

  it('fails with the fix when the retry topic is not co-partitioned with the source', async () => {
    const topic = randomName('src')
    const groupId = randomName('app')
    await broker.createTopic(topic, 4)
    await broker.createTopic(detourTopics(topic, groupId).retry, 2)
    const k = testKafka(broker)
    const detour = createDetour({ kafka: k, consumer: k.consumer({ groupId }), groupId, topics: [topic], topicAdmin: broker.topicAdmin })
    const error = await detour.start().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(DetourTopicError)
    expect((error as Error).message).toMatch(/has 2 partitions but the source topic .* has 4/)
    expect((error as Error).message).toMatch(/--partitions 4/)
  })

  it('creates missing topics with the source partition count', async () => {
    const topic = randomName('src')
    const groupId = randomName('app')
    await broker.createTopic(topic, 3)
    const k = testKafka(broker)
    const detour = createDetour({ kafka: k, consumer: k.consumer({ groupId }), groupId, topics: [topic], topicAdmin: broker.topicAdmin, followerConfig: { maxWaitTimeInMs: 100 } })
    await detour.start()
    try {
      const names = detourTopics(topic, groupId)
      for (const name of [names.retry, names.redirect, names.error]) expect(await broker.topicAdmin.partitionCount(name)).toBe(3)
    } finally {
      await detour.stop()
    }
  })

  it('fails when the source topic does not exist', async () => {
    const k = testKafka(broker)
    const detour = createDetour({ kafka: k, consumer: k.consumer({ groupId: 'x' }), groupId: 'x', topics: [randomName('missing')], topicAdmin: broker.topicAdmin })
    await expect(detour.start()).rejects.toBeInstanceOf(DetourTopicError)
  })
})

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { detourTopics } from '@detour/core'
import { randomName, startBroker, testKafka, type TestBroker } from '@detour/testkit'
import { KafkaTopicAdmin } from '@detour/core'
import { createDetour, DetourTopicError } from './index.js'

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

  it('refuses, through the admin API, a redirect topic that is not exactly compacted, and a retry topic that time would empty', async (ctx) => {
    if (!broker.capabilities.adminApi) ctx.skip(`the ${broker.mode} broker has no DescribeConfigs (runs on real Kafka)`)
    const k = testKafka(broker)
    const admin = new KafkaTopicAdmin(k)
    const start = (topic: string, groupId: string) =>
      createDetour({ kafka: k, consumer: k.consumer({ groupId }), groupId, topics: [topic], topicAdmin: admin, followerConfig: { maxWaitTimeInMs: 100 } }).start()

    const topic = randomName('src')
    const groupId = randomName('app')
    const names = detourTopics(topic, groupId)
    await broker.createTopic(topic, 1)
    await broker.createTopic(names.redirect, 1, { config: { 'cleanup.policy': 'compact,delete' } })
    const mixed = await start(topic, groupId).catch((e: unknown) => e)
    expect(mixed).toBeInstanceOf(DetourTopicError)
    expect((mixed as Error).message).toMatch(/cleanup\.policy=compact,delete; it must be exactly "compact"/)
    expect((mixed as Error).message).toMatch(/--add-config cleanup\.policy=compact/)

    const topic2 = randomName('src')
    const groupId2 = randomName('app')
    const names2 = detourTopics(topic2, groupId2)
    await broker.createTopic(topic2, 1)
    await broker.createTopic(names2.retry, 1) // the broker's default retention: 7 days
    const limited = await start(topic2, groupId2).catch((e: unknown) => e)
    expect(limited).toBeInstanceOf(DetourTopicError)
    expect((limited as Error).message).toMatch(/retention\.ms=604800000/)
    expect((limited as Error).message).toMatch(/retention\.ms=-1,retention\.bytes=-1/)
  })

  it('creates the retry topic with unlimited retention and the redirect topic compacted, through the admin API', async (ctx) => {
    if (!broker.capabilities.adminApi) ctx.skip(`the ${broker.mode} broker has no CreateTopics/DescribeConfigs (runs on real Kafka)`)
    const k = testKafka(broker)
    const topic = randomName('src')
    const groupId = randomName('app')
    await broker.createTopic(topic, 2)
    const detour = createDetour({ kafka: k, consumer: k.consumer({ groupId }), groupId, topics: [topic], topicAdmin: new KafkaTopicAdmin(k), followerConfig: { maxWaitTimeInMs: 100 } })
    await detour.start()
    try {
      const names = detourTopics(topic, groupId)
      const admin = new KafkaTopicAdmin(k)
      expect(await admin.topicConfig(names.retry, ['retention.ms', 'retention.bytes', 'cleanup.policy'])).toEqual({
        'retention.ms': '-1',
        'retention.bytes': '-1',
        'cleanup.policy': 'delete',
      })
      expect(await admin.topicConfig(names.redirect, ['cleanup.policy'])).toEqual({ 'cleanup.policy': 'compact' })
      expect(await admin.partitionCount(names.error)).toBe(2)
    } finally {
      await detour.stop()
    }
  })
})

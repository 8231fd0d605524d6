import type { Kafka } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { RETRY_TOPIC_CONFIG } from './provision.js'
import { KafkaTopicAdmin } from './topic-admin.js'

/** A kafkajs Admin stand-in: answers from `topics`, records every call; `failures` are thrown by the next calls, in order. */
class FakeAdmin {
  readonly calls: unknown[][] = []
  readonly failures: unknown[] = []
  topics = new Map<string, { partitions: number; config: Record<string, string> }>()

  private step(name: string, ...args: unknown[]): void {
    this.calls.push([name, ...args])
    const failure = this.failures.shift()
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- kafkajs errors are matched by shape here
    if (failure !== undefined) throw failure
  }

  async connect(): Promise<void> {
    this.calls.push(['connect'])
  }
  async disconnect(): Promise<void> {
    this.calls.push(['disconnect'])
  }
  async listTopics(): Promise<string[]> {
    this.step('listTopics')
    return [...this.topics.keys()]
  }
  async fetchTopicMetadata(request: { topics: string[] }): Promise<{ topics: { name: string; partitions: unknown[] }[] }> {
    this.step('fetchTopicMetadata', request)
    return { topics: request.topics.map((name) => ({ name, partitions: Array.from({ length: this.topics.get(name)!.partitions }, () => ({})) })) }
  }
  async createTopics(request: { topics: { topic: string; numPartitions: number; configEntries: { name: string; value: string }[] }[] }): Promise<boolean> {
    this.step('createTopics', request)
    for (const t of request.topics) this.topics.set(t.topic, { partitions: t.numPartitions, config: Object.fromEntries(t.configEntries.map((e) => [e.name, e.value])) })
    return true
  }
  async fetchTopicOffsets(topic: string): Promise<unknown[]> {
    this.step('fetchTopicOffsets', topic)
    return []
  }
  async describeConfigs(request: { resources: { name: string; configNames: string[] }[] }): Promise<unknown> {
    this.step('describeConfigs', request)
    const config = this.topics.get(request.resources[0]!.name)?.config ?? {}
    // Brokers answer with the names they know, in their own order, plus whatever they like.
    const entries = Object.entries({ 'segment.bytes': '1073741824', ...config })
      .reverse()
      .map(([configName, configValue]) => ({ configName, configValue, isDefault: false }))
    return { resources: [{ resourceName: request.resources[0]!.name, resourceType: 2, errorCode: 0, configEntries: entries }] }
  }
}

function admin(settleTimeoutMs?: number): { fake: FakeAdmin; topicAdmin: KafkaTopicAdmin; admins: () => number } {
  const fake = new FakeAdmin()
  let created = 0
  const kafka = { admin: () => (created++, fake) } as unknown as Kafka
  return { fake, topicAdmin: new KafkaTopicAdmin(kafka, settleTimeoutMs), admins: () => created }
}

const transient = (type: string): Error => Object.assign(new Error(type), { name: 'KafkaJSProtocolError', type })

describe('KafkaTopicAdmin', () => {
  it('topicConfig asks DescribeConfigs for exactly these names and maps the answer by name', async () => {
    const { fake, topicAdmin } = admin()
    fake.topics.set('orders-g-retry', { partitions: 3, config: { 'retention.ms': '-1', 'cleanup.policy': 'delete' } })
    expect(await topicAdmin.topicConfig('orders-g-retry', ['retention.ms', 'retention.bytes'])).toStrictEqual({
      'retention.ms': '-1',
      'retention.bytes': undefined,
    })
    expect(fake.calls).toEqual([
      ['connect'],
      ['describeConfigs', { includeSynonyms: false, resources: [{ type: 2, name: 'orders-g-retry', configNames: ['retention.ms', 'retention.bytes'] }] }],
      ['disconnect'],
    ])
  })

  it('partitionCount is undefined for a missing topic and the partition count otherwise', async () => {
    const { fake, topicAdmin } = admin()
    fake.topics.set('orders', { partitions: 6, config: {} })
    expect(await topicAdmin.partitionCount('payments')).toBeUndefined()
    expect(await topicAdmin.partitionCount('orders')).toBe(6)
    expect(fake.calls.filter(([name]) => name === 'fetchTopicMetadata')).toEqual([['fetchTopicMetadata', { topics: ['orders'] }]])
  })

  it('createTopic writes compact and the given settings, then waits until metadata and every partition leader answer', async () => {
    const { fake, topicAdmin } = admin()
    await topicAdmin.createTopic({ topic: 'orders-g-redirect', partitions: 6, compact: true })
    await topicAdmin.createTopic({ topic: 'orders-g-retry', partitions: 6, compact: false, config: RETRY_TOPIC_CONFIG, replicationFactor: 3 })
    // Not kafkajs' waitForLeaders (it gives up while a KRaft broker's metadata trails the creation): retried reads instead.
    expect(fake.calls.filter(([name]) => name !== 'connect' && name !== 'disconnect' && name !== 'listTopics')).toEqual([
      [
        'createTopics',
        {
          waitForLeaders: false,
          topics: [{ topic: 'orders-g-redirect', numPartitions: 6, replicationFactor: -1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }],
        },
      ],
      ['fetchTopicMetadata', { topics: ['orders-g-redirect'] }],
      ['fetchTopicOffsets', 'orders-g-redirect'],
      [
        'createTopics',
        {
          waitForLeaders: false,
          topics: [
            {
              topic: 'orders-g-retry',
              numPartitions: 6,
              replicationFactor: 3,
              configEntries: [
                { name: 'retention.ms', value: '-1' },
                { name: 'retention.bytes', value: '-1' },
                { name: 'cleanup.policy', value: 'delete' },
              ],
            },
          ],
        },
      ],
      ['fetchTopicMetadata', { topics: ['orders-g-retry'] }],
      ['fetchTopicOffsets', 'orders-g-retry'],
    ])
  })

  it('asks again when metadata lags (a just-created topic), without creating the topic twice', async () => {
    const { fake, topicAdmin, admins } = admin(5_000)
    // listTopics and createTopics succeed; the metadata read lags once, then a leader's ListOffsets once.
    fake.failures.push(undefined, undefined, transient('UNKNOWN_TOPIC_OR_PARTITION'), undefined, undefined, transient('NOT_LEADER_OR_FOLLOWER'))
    await topicAdmin.createTopic({ topic: 't', partitions: 1 })
    expect(fake.calls.map(([name]) => name)).toEqual([
      'connect',
      'listTopics',
      'createTopics',
      'fetchTopicMetadata',
      'listTopics',
      'fetchTopicMetadata',
      'fetchTopicOffsets',
      'listTopics',
      'fetchTopicMetadata',
      'fetchTopicOffsets',
      'disconnect',
    ])
    expect(fake.calls.filter(([name]) => name === 'createTopics')).toHaveLength(1)
    expect(admins()).toBe(1)
  })

  it('throws other errors at once, and disconnects', async () => {
    const { fake, topicAdmin } = admin(5_000)
    const denied = Object.assign(new Error('denied'), { type: 'TOPIC_AUTHORIZATION_FAILED' })
    fake.failures.push(denied)
    await expect(topicAdmin.topicConfig('t', ['cleanup.policy'])).rejects.toBe(denied)
    expect(fake.calls.map(([name]) => name)).toEqual(['connect', 'describeConfigs', 'disconnect'])
  })

  it('gives up on lagging metadata after settleTimeoutMs', async () => {
    const { fake, topicAdmin } = admin(0)
    const lagging = transient('LEADER_NOT_AVAILABLE')
    fake.failures.push(lagging, lagging, lagging)
    await expect(topicAdmin.partitionCount('t')).rejects.toBe(lagging)
    // The deadline is checked after a failure: with 0 ms, one more attempt at most (when the first failed within the same ms).
    const names = fake.calls.map(([name]) => name)
    expect(names.slice(0, 2)).toEqual(['connect', 'listTopics'])
    expect(names.at(-1)).toBe('disconnect')
    expect(names.filter((name) => name === 'listTopics').length).toBeLessThanOrEqual(2)
    expect(fake.failures).toHaveLength(3 - (names.length - 2))
  })
})

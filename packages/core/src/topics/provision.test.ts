import { describe, expect, it } from 'vitest'
import { DetourTopicError } from '../errors/index.js'
import type { LogFields, Logger } from '../logging/logger.js'
import { detourTopics } from '../model/topic-names.js'
import { provisionTopics, type ProvisionOptions } from './provision.js'
import type { TopicAdmin, TopicSpec } from './topic-admin.js'

/** In-memory TopicAdmin: topics are a name → partitions/policy map; calls are recorded. */
class FakeTopicAdmin implements TopicAdmin {
  readonly topics = new Map<string, { partitions: number; policy: string | undefined }>()
  readonly created: TopicSpec[] = []
  policyReader: (topic: string) => Promise<string | undefined> = async (topic) => this.topics.get(topic)?.policy

  withTopic(topic: string, partitions: number, policy: string | undefined = 'delete'): this {
    this.topics.set(topic, { partitions, policy })
    return this
  }

  async partitionCount(topic: string): Promise<number | undefined> {
    return this.topics.get(topic)?.partitions
  }

  async createTopic(spec: TopicSpec): Promise<void> {
    if (this.topics.has(spec.topic)) throw new Error(`topic ${spec.topic} already exists`)
    this.created.push(spec)
    this.topics.set(spec.topic, { partitions: spec.partitions, policy: spec.compact ? 'compact' : 'delete' })
  }

  cleanupPolicy(topic: string): Promise<string | undefined> {
    return this.policyReader(topic)
  }
}

class RecordingLogger implements Logger {
  readonly lines: { level: string; message: string; fields: LogFields | undefined }[] = []
  debug(message: string, fields?: LogFields): void {
    this.lines.push({ level: 'debug', message, fields })
  }
  info(message: string, fields?: LogFields): void {
    this.lines.push({ level: 'info', message, fields })
  }
  warn(message: string, fields?: LogFields): void {
    this.lines.push({ level: 'warn', message, fields })
  }
  error(message: string, fields?: LogFields): void {
    this.lines.push({ level: 'error', message, fields })
  }
}

const topics = detourTopics('orders', 'billing')

async function topicError(options: ProvisionOptions): Promise<DetourTopicError> {
  let caught: unknown
  try {
    await provisionTopics(options)
  } catch (error) {
    caught = error
  }
  expect(caught).toBeInstanceOf(DetourTopicError)
  expect((caught as DetourTopicError).code).toBe('DETOUR_TOPIC_MISMATCH')
  return caught as DetourTopicError
}

describe('provisionTopics', () => {
  it('creates missing topics with the source partition count, compacting only the redirect topic', async () => {
    const admin = new FakeTopicAdmin().withTopic('orders', 6)
    const logger = new RecordingLogger()
    const result = await provisionTopics({ admin, topics, replicationFactor: 3, logger })
    expect(result).toEqual({ partitions: 6, created: ['orders-billing-retry', 'orders-billing-redirect', 'orders-billing-dlt'] })
    expect(admin.created).toEqual([
      { topic: 'orders-billing-retry', partitions: 6, compact: false, replicationFactor: 3 },
      { topic: 'orders-billing-redirect', partitions: 6, compact: true, replicationFactor: 3 },
      { topic: 'orders-billing-dlt', partitions: 6, compact: false, replicationFactor: 3 },
    ])
    expect(logger.lines.filter((l) => l.level === 'info').map((l) => l.fields)).toEqual([
      { role: 'retry', topic: 'orders-billing-retry', partitions: 6, compact: false },
      { role: 'redirect', topic: 'orders-billing-redirect', partitions: 6, compact: true },
      { role: 'error', topic: 'orders-billing-dlt', partitions: 6, compact: false },
    ])
    expect(logger.lines.filter((l) => l.level === 'warn')).toEqual([])
  })

  it('leaves correct existing topics alone', async () => {
    const admin = new FakeTopicAdmin()
      .withTopic('orders', 3)
      .withTopic('orders-billing-retry', 3)
      .withTopic('orders-billing-redirect', 3, 'compact')
      .withTopic('orders-billing-dlt', 1)
    expect(await provisionTopics({ admin, topics })).toEqual({ partitions: 3, created: [] })
    expect(admin.created).toEqual([])
  })

  it('creates only what is missing and passes an undefined replication factor through', async () => {
    const admin = new FakeTopicAdmin().withTopic('orders', 2).withTopic('orders-billing-retry', 2)
    const result = await provisionTopics({ admin, topics })
    expect(result.created).toEqual(['orders-billing-redirect', 'orders-billing-dlt'])
    expect(admin.created[0]).toEqual({ topic: 'orders-billing-redirect', partitions: 2, compact: true, replicationFactor: undefined })
  })

  it('accepts an error topic with any partition count', async () => {
    const admin = new FakeTopicAdmin().withTopic('orders', 12).withTopic('orders-billing-dlt', 1)
    expect((await provisionTopics({ admin, topics })).created).toEqual(['orders-billing-retry', 'orders-billing-redirect'])
  })

  it('fails when the source topic is missing, creating nothing', async () => {
    const admin = new FakeTopicAdmin()
    const error = await topicError({ admin, topics })
    expect(error.topic).toBe('orders')
    expect(error.message).toBe('Source topic "orders" does not exist; create it before starting Detour')
    expect(admin.created).toEqual([])
  })

  it('fails when the retry topic has fewer partitions, naming the fix', async () => {
    const admin = new FakeTopicAdmin().withTopic('orders', 6).withTopic('orders-billing-retry', 4)
    const error = await topicError({ admin, topics })
    expect(error.topic).toBe('orders-billing-retry')
    expect(error.message).toBe(
      'The retry topic "orders-billing-retry" has 4 partitions but the source topic "orders" has 6. ' +
        'Detour writes the records of source partition N to partition N of the retry topic, so both must match: ' +
        'add partitions to "orders-billing-retry" (kafka-topics --alter --topic orders-billing-retry --partitions 6) while it is empty, ' +
        'or point Detour at a topic with the right count.',
    )
  })

  it('fails when the redirect topic has more partitions, naming the fix', async () => {
    const admin = new FakeTopicAdmin().withTopic('orders', 2).withTopic('orders-billing-retry', 2).withTopic('orders-billing-redirect', 8, 'compact')
    const error = await topicError({ admin, topics })
    expect(error.topic).toBe('orders-billing-redirect')
    expect(error.message).toContain('The redirect topic "orders-billing-redirect" has 8 partitions but the source topic "orders" has 2.')
    expect(error.message).toContain('recreate "orders-billing-redirect" with 2 partitions once it holds no pending records')
  })

  it('with create: false, fails on a missing topic and says how to create it', async () => {
    const admin = new FakeTopicAdmin().withTopic('orders', 5).withTopic('orders-billing-retry', 5)
    const error = await topicError({ admin, topics, create: false })
    expect(error.topic).toBe('orders-billing-redirect')
    expect(error.message).toBe(
      'The redirect topic "orders-billing-redirect" does not exist. Create it with 5 partitions and cleanup.policy=compact, or enable topic creation.',
    )
    expect(admin.created).toEqual([])

    const noRetry = await topicError({ admin: new FakeTopicAdmin().withTopic('orders', 5), topics, create: false })
    expect(noRetry.message).toBe('The retry topic "orders-billing-retry" does not exist. Create it with 5 partitions, or enable topic creation.')
  })

  it('with create: false, succeeds when everything exists', async () => {
    const admin = new FakeTopicAdmin()
      .withTopic('orders', 1)
      .withTopic('orders-billing-retry', 1)
      .withTopic('orders-billing-redirect', 1, 'compact,delete')
      .withTopic('orders-billing-dlt', 3)
    expect(await provisionTopics({ admin, topics, create: false })).toEqual({ partitions: 1, created: [] })
  })

  it('fails when the redirect topic cleanup policy is delete', async () => {
    const admin = new FakeTopicAdmin().withTopic('orders', 1).withTopic('orders-billing-redirect', 1, 'delete')
    const error = await topicError({ admin, topics })
    expect(error.topic).toBe('orders-billing-redirect')
    expect(error.message).toBe(
      'The redirect topic "orders-billing-redirect" has cleanup.policy=delete; it must be compacted so released ids ' +
        'disappear and restarts stay fast: kafka-configs --alter --entity-type topics --entity-name orders-billing-redirect ' +
        '--add-config cleanup.policy=compact',
    )
  })

  it('accepts "delete, compact" and skips the policy check when told to', async () => {
    const both = new FakeTopicAdmin().withTopic('orders', 1).withTopic('orders-billing-redirect', 1, 'delete, compact')
    await expect(provisionTopics({ admin: both, topics })).resolves.toMatchObject({ partitions: 1 })
    const asked: string[] = []
    const unchecked = new FakeTopicAdmin().withTopic('orders', 1).withTopic('orders-billing-redirect', 1, 'delete')
    unchecked.policyReader = async (topic) => (asked.push(topic), 'delete')
    await expect(provisionTopics({ admin: unchecked, topics, requireCompactedRedirect: false })).resolves.toMatchObject({ partitions: 1 })
    expect(asked).toEqual([])
  })

  it('only warns when the cleanup policy cannot be read (undefined)', async () => {
    const admin = new FakeTopicAdmin().withTopic('orders', 1).withTopic('orders-billing-redirect', 1, 'delete')
    admin.policyReader = async () => undefined
    const logger = new RecordingLogger()
    await expect(provisionTopics({ admin, topics, logger })).resolves.toEqual({
      partitions: 1,
      created: ['orders-billing-retry', 'orders-billing-dlt'],
    })
    expect(logger.lines.filter((l) => l.level === 'warn')).toEqual([
      { level: 'warn', message: 'Cannot read the redirect topic cleanup.policy; not checked', fields: { topic: 'orders-billing-redirect' } },
    ])
  })

  it('only warns when reading the cleanup policy throws', async () => {
    const admin = new FakeTopicAdmin().withTopic('orders', 1).withTopic('orders-billing-redirect', 1, 'delete')
    const failure = new Error('DescribeConfigs not supported')
    admin.policyReader = async () => {
      throw failure
    }
    const logger = new RecordingLogger()
    await expect(provisionTopics({ admin, topics, logger })).resolves.toMatchObject({ partitions: 1 })
    const warnings = logger.lines.filter((l) => l.level === 'warn')
    expect(warnings).toHaveLength(1)
    expect(warnings[0]!.message).toBe('Cannot read the redirect topic cleanup.policy; not checked')
    expect(warnings[0]!.fields).toEqual({ topic: 'orders-billing-redirect', error: failure })
  })

  it('works without a logger', async () => {
    const admin = new FakeTopicAdmin().withTopic('orders', 1)
    admin.policyReader = async () => {
      throw new Error('nope')
    }
    await expect(provisionTopics({ admin, topics })).resolves.toMatchObject({ partitions: 1 })
  })

  it('propagates a failing createTopic', async () => {
    const admin = new FakeTopicAdmin().withTopic('orders', 1)
    const failure = new Error('not authorized')
    admin.createTopic = async () => {
      throw failure
    }
    await expect(provisionTopics({ admin, topics })).rejects.toBe(failure)
  })
})

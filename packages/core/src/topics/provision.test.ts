import { describe, expect, it } from 'vitest'
import { DetourTopicError } from '../errors/index.js'
import type { LogFields, Logger } from '../logging/logger.js'
import { detourTopics } from '../model/topic-names.js'
import { provisionTopics, RETRY_TOPIC_CONFIG, type ProvisionOptions } from './provision.js'
import type { TopicAdmin, TopicSpec } from './topic-admin.js'

type Config = Readonly<Record<string, string | undefined>>

/** What a broker reports for a topic created without settings (7 days, no size limit). */
const BROKER_DEFAULTS = { 'cleanup.policy': 'delete', 'retention.ms': '604800000', 'retention.bytes': '-1' }
const COMPACTED = { ...BROKER_DEFAULTS, 'cleanup.policy': 'compact' }
const UNLIMITED = { ...BROKER_DEFAULTS, 'retention.ms': '-1' }

/** In-memory TopicAdmin: topics are a name → partitions/settings map; creations and setting reads are recorded. */
class FakeTopicAdmin implements TopicAdmin {
  readonly topics = new Map<string, { partitions: number; config: Config }>()
  readonly created: TopicSpec[] = []
  readonly configReads: [string, string[]][] = []
  configReader: (topic: string, names: readonly string[]) => Promise<Config | undefined> = async (topic, names) => {
    const config = this.topics.get(topic)?.config
    return config && Object.fromEntries(names.map((name) => [name, config[name]]))
  }

  withTopic(topic: string, partitions: number, config: Config = BROKER_DEFAULTS): this {
    this.topics.set(topic, { partitions, config })
    return this
  }

  withoutTopic(topic: string): this {
    this.topics.delete(topic)
    return this
  }

  /** A correct set of Detour topics for the source topic `orders` and group `billing`. */
  withDetourTopics(partitions: number): this {
    return this.withTopic('orders-billing-retry', partitions, UNLIMITED)
      .withTopic('orders-billing-redirect', partitions, COMPACTED)
      .withTopic('orders-billing-dlt', 1)
  }

  async partitionCount(topic: string): Promise<number | undefined> {
    return this.topics.get(topic)?.partitions
  }

  async createTopic(spec: TopicSpec): Promise<void> {
    if (this.topics.has(spec.topic)) throw new Error(`topic ${spec.topic} already exists`)
    this.created.push(spec)
    this.topics.set(spec.topic, {
      partitions: spec.partitions,
      config: { ...BROKER_DEFAULTS, ...(spec.compact ? { 'cleanup.policy': 'compact' } : {}), ...spec.config },
    })
  }

  topicConfig(topic: string, names: readonly string[]): Promise<Config | undefined> {
    this.configReads.push([topic, [...names]])
    return this.configReader(topic, names)
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

const redirectFix = 'kafka-configs --alter --entity-type topics --entity-name orders-billing-redirect --add-config cleanup.policy=compact'
const retryFix = 'kafka-configs --alter --entity-type topics --entity-name orders-billing-retry --add-config retention.ms=-1,retention.bytes=-1'

function retryRetentionMessage(limits: string): string {
  return (
    `The retry topic "orders-billing-retry" has ${limits}: records waiting there (a held group can wait for days) would be ` +
    `deleted before the retry worker resolves them. The worker deletes what it resolved itself: ${retryFix}`
  )
}

describe('provisionTopics', () => {
  it('creates missing topics with the source partition count: redirect compacted, retry with unlimited retention', async () => {
    const admin = new FakeTopicAdmin().withTopic('orders', 6)
    const logger = new RecordingLogger()
    const result = await provisionTopics({ admin, topics, replicationFactor: 3, logger })
    expect(result).toEqual({ partitions: 6, created: ['orders-billing-retry', 'orders-billing-redirect', 'orders-billing-dlt'] })
    expect(admin.created).toEqual([
      { topic: 'orders-billing-retry', partitions: 6, compact: false, config: RETRY_TOPIC_CONFIG, replicationFactor: 3 },
      { topic: 'orders-billing-redirect', partitions: 6, compact: true, config: undefined, replicationFactor: 3 },
      { topic: 'orders-billing-dlt', partitions: 6, compact: false, config: undefined, replicationFactor: 3 },
    ])
    expect(RETRY_TOPIC_CONFIG).toEqual({ 'retention.ms': '-1', 'retention.bytes': '-1', 'cleanup.policy': 'delete' })
    expect(logger.lines.filter((l) => l.level === 'info').map((l) => l.fields)).toEqual([
      { role: 'retry', topic: 'orders-billing-retry', partitions: 6, compact: false },
      { role: 'redirect', topic: 'orders-billing-redirect', partitions: 6, compact: true },
      { role: 'error', topic: 'orders-billing-dlt', partitions: 6, compact: false },
    ])
    expect(logger.lines.filter((l) => l.level === 'warn')).toEqual([])
    // What was just created is checked like an existing topic; the error topic's settings are not Detour's business.
    expect(admin.configReads).toEqual([
      ['orders-billing-redirect', ['cleanup.policy']],
      ['orders-billing-retry', ['retention.ms', 'retention.bytes']],
    ])
  })

  it('leaves correct existing topics alone', async () => {
    const admin = new FakeTopicAdmin().withTopic('orders', 3).withDetourTopics(3)
    const logger = new RecordingLogger()
    expect(await provisionTopics({ admin, topics, logger })).toEqual({ partitions: 3, created: [] })
    expect(admin.created).toEqual([])
    expect(logger.lines).toEqual([])
  })

  it('creates only what is missing and passes an undefined replication factor through', async () => {
    const admin = new FakeTopicAdmin().withTopic('orders', 2).withTopic('orders-billing-retry', 2, UNLIMITED)
    const result = await provisionTopics({ admin, topics })
    expect(result.created).toEqual(['orders-billing-redirect', 'orders-billing-dlt'])
    expect(admin.created[0]).toEqual({ topic: 'orders-billing-redirect', partitions: 2, compact: true, config: undefined, replicationFactor: undefined })
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
    const admin = new FakeTopicAdmin().withTopic('orders', 6).withTopic('orders-billing-retry', 4, UNLIMITED)
    const error = await topicError({ admin, topics })
    expect(error.topic).toBe('orders-billing-retry')
    expect(error.message).toBe(
      'The retry topic "orders-billing-retry" has 4 partitions but the source topic "orders" has 6. ' +
        'Detour writes the records of source partition N to partition N of the retry topic, so both must match: ' +
        'add partitions to "orders-billing-retry" (kafka-topics --alter --topic orders-billing-retry --partitions 6), ' +
        'or point Detour at a topic with the right count.',
    )
    expect(admin.created).toEqual([])
  })

  it('fails when the redirect topic has more partitions, naming the fix', async () => {
    const admin = new FakeTopicAdmin().withTopic('orders', 2).withTopic('orders-billing-retry', 2, UNLIMITED).withTopic('orders-billing-redirect', 8, COMPACTED)
    const error = await topicError({ admin, topics })
    expect(error.topic).toBe('orders-billing-redirect')
    expect(error.message).toBe(
      'The redirect topic "orders-billing-redirect" has 8 partitions but the source topic "orders" has 2. ' +
        'Detour writes the records of source partition N to partition N of the redirect topic, so both must match: ' +
        'recreate "orders-billing-redirect" with 2 partitions once it holds no pending records, ' +
        'or point Detour at a topic with the right count.',
    )
  })

  it('with create: false, fails on a missing topic and says how to create it', async () => {
    const admin = new FakeTopicAdmin().withTopic('orders', 5).withTopic('orders-billing-retry', 5, UNLIMITED)
    const error = await topicError({ admin, topics, create: false })
    expect(error.topic).toBe('orders-billing-redirect')
    expect(error.message).toBe(
      'The redirect topic "orders-billing-redirect" does not exist. Create it with 5 partitions and cleanup.policy=compact, or enable topic creation.',
    )
    expect(admin.created).toEqual([])

    const noRetry = await topicError({ admin: new FakeTopicAdmin().withTopic('orders', 5), topics, create: false })
    expect(noRetry.topic).toBe('orders-billing-retry')
    expect(noRetry.message).toBe(
      'The retry topic "orders-billing-retry" does not exist. Create it with 5 partitions and retention.ms=-1 retention.bytes=-1, or enable topic creation.',
    )

    const noError = await topicError({ admin: new FakeTopicAdmin().withTopic('orders', 5).withDetourTopics(5).withoutTopic('orders-billing-dlt'), topics, create: false })
    expect(noError.message).toBe('The error topic "orders-billing-dlt" does not exist. Create it with 5 partitions, or enable topic creation.')
  })

  it('with create: false, succeeds when everything exists', async () => {
    const admin = new FakeTopicAdmin().withTopic('orders', 1).withDetourTopics(1).withTopic('orders-billing-dlt', 3)
    expect(await provisionTopics({ admin, topics, create: false })).toEqual({ partitions: 1, created: [] })
  })

  it.each([
    ['delete', 'with "delete", retention would remove ids that are still pending; '],
    ['compact,delete', 'with "delete", retention would remove ids that are still pending; '],
    ['delete, compact', 'with "delete", retention would remove ids that are still pending; '],
    ['', 'released ids must disappear and pending ones stay; '],
  ])('refuses a redirect topic with cleanup.policy=%j, with the fix', async (policy, why) => {
    const admin = new FakeTopicAdmin().withTopic('orders', 1).withDetourTopics(1).withTopic('orders-billing-redirect', 1, { 'cleanup.policy': policy })
    const error = await topicError({ admin, topics })
    expect(error.topic).toBe('orders-billing-redirect')
    expect(error.message).toBe(`The redirect topic "orders-billing-redirect" has cleanup.policy=${policy}; it must be exactly "compact": ${why}${redirectFix}`)
  })

  it('accepts cleanup.policy=compact written with spaces around it', async () => {
    const admin = new FakeTopicAdmin().withTopic('orders', 1).withDetourTopics(1).withTopic('orders-billing-redirect', 1, { 'cleanup.policy': ' compact ' })
    await expect(provisionTopics({ admin, topics })).resolves.toEqual({ partitions: 1, created: [] })
  })

  it.each([
    [{ 'retention.ms': '604800000', 'retention.bytes': '-1' }, 'retention.ms=604800000'],
    [{ 'retention.ms': '-1', 'retention.bytes': '1073741824' }, 'retention.bytes=1073741824'],
    [{ 'retention.ms': '0', 'retention.bytes': '0' }, 'retention.ms=0, retention.bytes=0'],
  ])('refuses a retry topic with limited retention %j, with the fix', async (config, limits) => {
    const admin = new FakeTopicAdmin().withTopic('orders', 1).withDetourTopics(1).withTopic('orders-billing-retry', 1, config)
    const error = await topicError({ admin, topics })
    expect(error.topic).toBe('orders-billing-retry')
    expect(error.message).toBe(retryRetentionMessage(limits))
  })

  it('checks only the retention settings the broker returns', async () => {
    const admin = new FakeTopicAdmin().withTopic('orders', 1).withDetourTopics(1).withTopic('orders-billing-retry', 1, { 'retention.ms': '-1' })
    await expect(provisionTopics({ admin, topics })).resolves.toEqual({ partitions: 1, created: [] })
    const noPolicy = new FakeTopicAdmin().withTopic('orders', 1).withDetourTopics(1).withTopic('orders-billing-redirect', 1, {})
    await expect(provisionTopics({ admin: noPolicy, topics })).resolves.toEqual({ partitions: 1, created: [] })
  })

  it('fails on the redirect topic first when both topics are wrong', async () => {
    const admin = new FakeTopicAdmin()
      .withTopic('orders', 1)
      .withTopic('orders-billing-retry', 1, BROKER_DEFAULTS)
      .withTopic('orders-billing-redirect', 1, { 'cleanup.policy': 'compact,delete' })
    const error = await topicError({ admin, topics })
    expect(error.topic).toBe('orders-billing-redirect')
  })

  it('with checkTopicSettings: false, only warns about every mismatch and goes on', async () => {
    const admin = new FakeTopicAdmin()
      .withTopic('orders', 1)
      .withTopic('orders-billing-retry', 1, BROKER_DEFAULTS)
      .withTopic('orders-billing-redirect', 1, { 'cleanup.policy': 'delete' })
    const logger = new RecordingLogger()
    await expect(provisionTopics({ admin, topics, logger, checkTopicSettings: false })).resolves.toEqual({ partitions: 1, created: ['orders-billing-dlt'] })
    expect(logger.lines.filter((l) => l.level === 'warn')).toEqual([
      {
        level: 'warn',
        message:
          'The redirect topic "orders-billing-redirect" has cleanup.policy=delete; it must be exactly "compact": ' +
          `with "delete", retention would remove ids that are still pending; ${redirectFix} (checkTopicSettings is off: going on)`,
        fields: { topic: 'orders-billing-redirect' },
      },
      {
        level: 'warn',
        message: `${retryRetentionMessage('retention.ms=604800000')} (checkTopicSettings is off: going on)`,
        fields: { topic: 'orders-billing-retry' },
      },
    ])
  })

  it('with checkTopicSettings: false and correct settings, logs no warning', async () => {
    const admin = new FakeTopicAdmin().withTopic('orders', 1).withDetourTopics(1)
    const logger = new RecordingLogger()
    await expect(provisionTopics({ admin, topics, logger, checkTopicSettings: false })).resolves.toEqual({ partitions: 1, created: [] })
    expect(logger.lines).toEqual([])
  })

  it('only warns when the settings cannot be read (undefined)', async () => {
    const admin = new FakeTopicAdmin().withTopic('orders', 1).withTopic('orders-billing-retry', 1).withTopic('orders-billing-redirect', 1, { 'cleanup.policy': 'delete' })
    admin.configReader = async () => undefined
    const logger = new RecordingLogger()
    await expect(provisionTopics({ admin, topics, logger })).resolves.toEqual({ partitions: 1, created: ['orders-billing-dlt'] })
    expect(logger.lines.filter((l) => l.level === 'warn')).toEqual([
      { level: 'warn', message: 'Cannot read the topic settings; not checked', fields: { topic: 'orders-billing-redirect', settings: ['cleanup.policy'] } },
      { level: 'warn', message: 'Cannot read the topic settings; not checked', fields: { topic: 'orders-billing-retry', settings: ['retention.ms', 'retention.bytes'] } },
    ])
  })

  it('only warns when reading the settings throws', async () => {
    const admin = new FakeTopicAdmin().withTopic('orders', 1).withTopic('orders-billing-retry', 1).withTopic('orders-billing-redirect', 1, { 'cleanup.policy': 'delete' })
    const failure = new Error('DescribeConfigs not supported')
    admin.configReader = async () => {
      throw failure
    }
    const logger = new RecordingLogger()
    await expect(provisionTopics({ admin, topics, logger })).resolves.toEqual({ partitions: 1, created: ['orders-billing-dlt'] })
    expect(logger.lines.filter((l) => l.level === 'warn')).toEqual([
      {
        level: 'warn',
        message: 'Cannot read the topic settings; not checked',
        fields: { topic: 'orders-billing-redirect', settings: ['cleanup.policy'], error: failure },
      },
      {
        level: 'warn',
        message: 'Cannot read the topic settings; not checked',
        fields: { topic: 'orders-billing-retry', settings: ['retention.ms', 'retention.bytes'], error: failure },
      },
    ])
  })

  it('checks the topic it can read when the other one cannot be read', async () => {
    const admin = new FakeTopicAdmin().withTopic('orders', 1).withDetourTopics(1).withTopic('orders-billing-retry', 1, BROKER_DEFAULTS)
    const read = admin.configReader
    admin.configReader = async (topic, names) => (topic === 'orders-billing-redirect' ? undefined : read(topic, names))
    const error = await topicError({ admin, topics })
    expect(error.message).toBe(retryRetentionMessage('retention.ms=604800000'))
  })

  it('works without a logger', async () => {
    const admin = new FakeTopicAdmin().withTopic('orders', 1)
    admin.configReader = async () => {
      throw new Error('nope')
    }
    await expect(provisionTopics({ admin, topics })).resolves.toMatchObject({ partitions: 1 })
    const lax = new FakeTopicAdmin().withTopic('orders', 1).withTopic('orders-billing-redirect', 1, { 'cleanup.policy': 'delete' })
    await expect(provisionTopics({ admin: lax, topics, checkTopicSettings: false })).resolves.toMatchObject({ partitions: 1 })
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

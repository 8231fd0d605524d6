import type { Admin, Kafka } from 'kafkajs'

export interface TopicSpec {
  readonly topic: string
  readonly partitions: number
  /** `cleanup.policy=compact`. */
  readonly compact?: boolean
  /** @defaultValue the broker's default (-1) */
  readonly replicationFactor?: number
  /** More topic settings (`retention.ms`, `min.insync.replicas`, …). */
  readonly config?: Readonly<Record<string, string>>
}

/**
 * What Detour needs to provision and check its topics. The default implementation uses the kafkajs
 * admin API; a test broker without those APIs (the embedded mock) supplies its own.
 */
export interface TopicAdmin {
  /** Partition count, or `undefined` when the topic does not exist. */
  partitionCount(topic: string): Promise<number | undefined>
  createTopic(spec: TopicSpec): Promise<void>
  /** Topic settings by name (`undefined` for a name the broker did not return), or `undefined` when they cannot be read. */
  topicConfig(topic: string, names: readonly string[]): Promise<Readonly<Record<string, string | undefined>> | undefined>
}

/** {@link TopicAdmin} over a kafkajs `Admin` (CreateTopics, Metadata, DescribeConfigs). */
export class KafkaTopicAdmin implements TopicAdmin {
  constructor(private readonly kafka: Kafka) {}

  private async withAdmin<T>(fn: (admin: Admin) => Promise<T>): Promise<T> {
    const admin = this.kafka.admin()
    await admin.connect()
    try {
      return await fn(admin)
    } finally {
      await admin.disconnect()
    }
  }

  partitionCount(topic: string): Promise<number | undefined> {
    return this.withAdmin(async (admin) => {
      const topics = await admin.listTopics()
      if (!topics.includes(topic)) return undefined
      const metadata = await admin.fetchTopicMetadata({ topics: [topic] })
      return metadata.topics[0]?.partitions.length
    })
  }

  createTopic(spec: TopicSpec): Promise<void> {
    const configEntries = Object.entries({ ...(spec.compact ? { 'cleanup.policy': 'compact' } : {}), ...spec.config }).map(([name, value]) => ({
      name,
      value,
    }))
    return this.withAdmin(async (admin) => {
      await admin.createTopics({
        waitForLeaders: true,
        topics: [{ topic: spec.topic, numPartitions: spec.partitions, replicationFactor: spec.replicationFactor ?? -1, configEntries }],
      })
    })
  }

  topicConfig(topic: string, names: readonly string[]): Promise<Record<string, string | undefined>> {
    return this.withAdmin(async (admin) => {
      const result = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: 2 /* ConfigResourceTypes.TOPIC */, name: topic, configNames: [...names] }],
      })
      const entries = result.resources[0]?.configEntries ?? []
      return Object.fromEntries(names.map((name) => [name, entries.find((entry) => entry.configName === name)?.configValue]))
    })
  }
}

import type { Admin, Kafka } from 'kafkajs'

export interface TopicSpec {
  readonly topic: string
  readonly partitions: number
  /** `cleanup.policy=compact`. */
  readonly compact?: boolean
  /** @defaultValue the broker's default (-1) */
  readonly replicationFactor?: number
}

/**
 * What Detour needs to provision and check its topics. The default implementation uses the kafkajs
 * admin API; a test broker without those APIs (the embedded mock) supplies its own.
 */
export interface TopicAdmin {
  /** Partition count, or `undefined` when the topic does not exist. */
  partitionCount(topic: string): Promise<number | undefined>
  createTopic(spec: TopicSpec): Promise<void>
  /** The topic's `cleanup.policy`, or `undefined` when it cannot be read. */
  cleanupPolicy(topic: string): Promise<string | undefined>
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
    return this.withAdmin(async (admin) => {
      await admin.createTopics({
        waitForLeaders: true,
        topics: [
          {
            topic: spec.topic,
            numPartitions: spec.partitions,
            replicationFactor: spec.replicationFactor ?? -1,
            configEntries: spec.compact ? [{ name: 'cleanup.policy', value: 'compact' }] : [],
          },
        ],
      })
    })
  }

  cleanupPolicy(topic: string): Promise<string | undefined> {
    return this.withAdmin(async (admin) => {
      const result = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: 2 /* ConfigResourceTypes.TOPIC */, name: topic, configNames: ['cleanup.policy'] }],
      })
      return result.resources[0]?.configEntries.find((entry) => entry.configName === 'cleanup.policy')?.configValue
    })
  }
}

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

/** Metadata that lags right after a topic was created (or a leader moved): worth asking again. */
const TRANSIENT_TYPES = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE', 'NOT_LEADER_FOR_PARTITION', 'NOT_LEADER_OR_FOLLOWER'])

/**
 * {@link TopicAdmin} over a kafkajs `Admin` (CreateTopics, Metadata, DescribeConfigs). A topic created here
 * is returned only once every partition's leader serves it (a record produced right after `createTopics`
 * can otherwise meet "This server does not host this topic-partition"), and reads that meet lagging
 * metadata are asked again for up to `settleTimeoutMs`.
 */
export class KafkaTopicAdmin implements TopicAdmin {
  constructor(
    private readonly kafka: Kafka,
    private readonly settleTimeoutMs = 30_000,
  ) {}

  private async withAdmin<T>(fn: (admin: Admin) => Promise<T>): Promise<T> {
    const admin = this.kafka.admin()
    await admin.connect()
    try {
      const deadline = Date.now() + this.settleTimeoutMs
      for (;;) {
        try {
          return await fn(admin)
        } catch (error) {
          const type = (error as { type?: unknown }).type
          if (typeof type !== 'string' || !TRANSIENT_TYPES.has(type) || Date.now() > deadline) throw error
          await new Promise((resolve) => setTimeout(resolve, 200))
        }
      }
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
      const topics = await admin.listTopics()
      if (!topics.includes(spec.topic)) {
        // Not kafkajs' `waitForLeaders`: it asks for the new topic's metadata at once and gives up on
        // UNKNOWN_TOPIC_OR_PARTITION, which a KRaft broker answers until its metadata catches up with the
        // controller (measured on Kafka 4.4: up to ~0.4 s while other topics are created). The retried
        // reads below wait instead.
        await admin.createTopics({
          waitForLeaders: false,
          topics: [{ topic: spec.topic, numPartitions: spec.partitions, replicationFactor: spec.replicationFactor ?? -1, configEntries }],
        })
      }
      // Metadata, then ListOffsets to each partition's leader: both answer once every leader hosts its partition.
      await admin.fetchTopicMetadata({ topics: [spec.topic] })
      await admin.fetchTopicOffsets(spec.topic)
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

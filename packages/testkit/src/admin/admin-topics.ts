import { Kafka, logLevel, type Admin } from 'kafkajs'
import type { BrokerTopicAdmin, TopicSettings } from '../types.js'

/**
 * Topic administration over the Kafka admin API, for the brokers that have one (a real Kafka started by
 * the test kit, a container, an existing cluster). One short-lived admin client per call: these calls are
 * rare (set-up), and a long-lived client would have to follow broker restarts in the fault tests.
 */
export class AdminTopics implements BrokerTopicAdmin {
  private readonly kafka: Kafka

  constructor(brokers: readonly string[]) {
    this.kafka = new Kafka({
      clientId: 'detour-testkit-admin',
      brokers: [...brokers],
      logLevel: logLevel.NOTHING,
      retry: { initialRetryTime: 100, retries: 10, maxRetryTime: 2000 },
    })
  }

  async withAdmin<T>(fn: (admin: Admin) => Promise<T>): Promise<T> {
    const admin = this.kafka.admin()
    await admin.connect()
    try {
      return await fn(admin)
    } finally {
      await admin.disconnect()
    }
  }

  async partitionCount(topic: string): Promise<number | undefined> {
    return this.withAdmin(async (admin) => {
      const topics = await admin.listTopics()
      if (!topics.includes(topic)) return undefined
      const metadata = await admin.fetchTopicMetadata({ topics: [topic] })
      return metadata.topics[0]?.partitions.length
    })
  }

  async topicConfig(topic: string, names: readonly string[]): Promise<Record<string, string | undefined>> {
    return this.withAdmin(async (admin) => {
      const result = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: 2 /* TOPIC */, name: topic, configNames: [...names] }],
      })
      const entries = result.resources[0]?.configEntries ?? []
      return Object.fromEntries(names.map((name) => [name, entries.find((e) => e.configName === name)?.configValue]))
    })
  }

  async cleanupPolicy(topic: string): Promise<string | undefined> {
    return (await this.topicConfig(topic, ['cleanup.policy']))['cleanup.policy']
  }

  /**
   * Creates the topic unless it exists with that partition count (throws if it exists with another), then
   * waits until every partition's leader answers for it: a record produced right after `createTopics`
   * can otherwise meet "This server does not host this topic-partition".
   */
  async createTopic(spec: { topic: string; partitions: number } & TopicSettings): Promise<void> {
    const { topic, partitions } = spec
    const existing = await this.partitionCount(topic)
    if (existing !== undefined) {
      if (existing !== partitions) throw new Error(`Topic ${topic} exists with ${existing} partitions, not ${partitions}`)
      return
    }
    const configEntries = Object.entries({
      ...(spec.compact ? { 'cleanup.policy': 'compact' } : {}),
      ...spec.config,
    }).map(([name, value]) => ({ name, value }))
    await this.withAdmin(async (admin) => {
      try {
        await admin.createTopics({
          waitForLeaders: true,
          topics: [{ topic, numPartitions: partitions, replicationFactor: spec.replicationFactor ?? -1, configEntries }],
        })
      } catch (error) {
        // kafkajs' waitForLeaders retries LEADER_NOT_AVAILABLE only; on a multi-node cluster the broker it
        // asks may not know the new topic yet (UNKNOWN_TOPIC_OR_PARTITION). The topic was created: wait below.
        const { type, cause } = error as { type?: string; cause?: { type?: string } }
        if (type !== 'UNKNOWN_TOPIC_OR_PARTITION' && cause?.type !== 'UNKNOWN_TOPIC_OR_PARTITION') throw error
      }
      // ListOffsets goes to each partition's leader: it succeeds once every leader hosts its partition.
      const deadline = Date.now() + 30_000
      for (;;) {
        try {
          const offsets = await admin.fetchTopicOffsets(topic)
          if (offsets.length === partitions) return
        } catch (error) {
          if (Date.now() > deadline) throw error
        }
        if (Date.now() > deadline) throw new Error(`Topic ${topic}: leaders not ready after 30 s`)
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    })
  }
}

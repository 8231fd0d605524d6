import { Kafka, logLevel } from 'kafkajs'
import type { BrokerMode, BrokerTopicAdmin, TestBroker, TopicSettings } from '../types.js'
import { BrokerCapabilityError } from '../types.js'

/**
 * A real Kafka cluster reached over the admin API: an existing one (`KAFKA_BROKERS`) or a
 * testcontainers one. No fault injection: tests that need it skip with a printed reason.
 */
export class KafkaAdminBroker implements TestBroker {
  readonly brokerIds: number[] = []
  readonly capabilities = {
    faultInjection: false,
    compaction: true,
    adminApi: true,
    partitionRetentionBytes: undefined,
  } as const
  readonly topicAdmin: BrokerTopicAdmin
  private readonly kafka: Kafka

  constructor(
    readonly mode: BrokerMode,
    readonly brokers: string[],
    readonly description: string,
    private readonly onStop: () => Promise<void> = async () => {},
  ) {
    this.kafka = new Kafka({ clientId: 'detour-testkit', brokers, logLevel: logLevel.NOTHING })
    this.topicAdmin = {
      partitionCount: (topic) => this.partitionCount(topic),
      createTopic: (spec) => this.createTopic(spec.topic, spec.partitions, spec),
      cleanupPolicy: (topic) => this.cleanupPolicy(topic),
    }
  }

  private async withAdmin<T>(fn: (admin: ReturnType<Kafka['admin']>) => Promise<T>): Promise<T> {
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

  async cleanupPolicy(topic: string): Promise<string | undefined> {
    return this.withAdmin(async (admin) => {
      const result = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: 2 /* TOPIC */, name: topic, configNames: ['cleanup.policy'] }],
      })
      return result.resources[0]?.configEntries.find((e) => e.configName === 'cleanup.policy')?.configValue
    })
  }

  async createTopic(name: string, partitions: number, settings: TopicSettings = {}): Promise<void> {
    const existing = await this.partitionCount(name)
    if (existing !== undefined) {
      if (existing !== partitions) throw new Error(`Topic ${name} exists with ${existing} partitions, not ${partitions}`)
      return
    }
    await this.withAdmin(async (admin) => {
      await admin.createTopics({
        waitForLeaders: true,
        topics: [
          {
            topic: name,
            numPartitions: partitions,
            replicationFactor: settings.replicationFactor ?? -1,
            configEntries: settings.compact ? [{ name: 'cleanup.policy', value: 'compact' }] : [],
          },
        ],
      })
    })
  }

  injectErrors(): void {
    throw new BrokerCapabilityError(this.mode, 'Fault injection')
  }
  injectBrokerErrors(): void {
    throw new BrokerCapabilityError(this.mode, 'Fault injection')
  }
  clearErrors(): void {
    throw new BrokerCapabilityError(this.mode, 'Fault injection')
  }
  setBrokerDown(): void {
    throw new BrokerCapabilityError(this.mode, 'setBrokerDown')
  }
  setBrokerUp(): void {
    throw new BrokerCapabilityError(this.mode, 'setBrokerUp')
  }
  setBrokerRtt(): void {
    throw new BrokerCapabilityError(this.mode, 'setBrokerRtt')
  }

  async stop(): Promise<void> {
    await this.onStop()
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop()
  }
}

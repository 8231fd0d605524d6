import { describe, expect, it } from 'vitest'
import { KafkaJSProtocolError, type Admin, type Kafka } from 'kafkajs'
import { KafkaTopicAdmin } from './topic-admin.js'

function unknownTopic(): KafkaJSProtocolError {
  return new KafkaJSProtocolError(
    Object.assign(new Error('This server does not host this topic-partition'), { type: 'UNKNOWN_TOPIC_OR_PARTITION', code: 3, retriable: true }),
  )
}

/**
 * A stand-in for kafkajs 2.2.4 against a KRaft broker whose metadata lags behind its controller: CreateTopics
 * succeeds, then the broker answers UNKNOWN_TOPIC_OR_PARTITION for the new topic for `lag` metadata requests.
 * kafkajs' `createTopics` (with `waitForLeaders`, its default) asks for that metadata at once and retries only
 * LEADER_NOT_AVAILABLE, so it rejects although the topic was created; this reproduces that.
 */
class LaggingCluster {
  readonly topics = new Map<string, { partitions: number; lag: number }>()

  constructor(private readonly lag: number) {}

  private metadata(names: readonly string[]) {
    return {
      topics: names.map((name) => {
        const topic = this.topics.get(name)
        if (!topic) throw unknownTopic()
        if (topic.lag > 0) {
          topic.lag--
          throw unknownTopic()
        }
        return { name, partitions: Array.from({ length: topic.partitions }, (_, i) => ({ partitionErrorCode: 0, partitionId: i, leader: 1, replicas: [1], isr: [1], offlineReplicas: [] })) }
      }),
    }
  }

  admin(): Admin {
    const admin: Partial<Admin> = {
      connect: async () => {},
      disconnect: async () => {},
      createTopics: async ({ topics, waitForLeaders = true }) => {
        for (const topic of topics) this.topics.set(topic.topic, { partitions: topic.numPartitions ?? 1, lag: this.lag })
        if (waitForLeaders) this.metadata(topics.map((t) => t.topic))
        return true
      },
      listTopics: async () => [...this.topics.keys()],
      fetchTopicMetadata: async (options) => this.metadata(options?.topics ?? [...this.topics.keys()]),
      fetchTopicOffsets: async (name) => this.metadata([name]).topics[0]!.partitions.map((p) => ({ partition: p.partitionId, offset: '0', high: '0', low: '0' })),
    }
    return admin as Admin
  }
}

describe('KafkaTopicAdmin', () => {
  it('creates a topic on a broker whose metadata is up to date', async () => {
    const cluster = new LaggingCluster(0)
    await new KafkaTopicAdmin(cluster as unknown as Kafka).createTopic({ topic: 'orders-g-retry', partitions: 3 })
    expect(cluster.topics.get('orders-g-retry')?.partitions).toBe(3)
  })

  // Product bug, kept visible: on Apache Kafka 4.4 (KRaft) the broker's metadata trails CreateTopics by tens to
  // hundreds of milliseconds while other topics are being created, and Detour's start fails with "This server
  // does not host this topic-partition" although its topic was created (a second start then finds it). Measured
  // with the broker tier's Kafka: 20 of 60 KafkaTopicAdmin.createTopic calls failed with four creating at once.
  // Remove `.fails` once createTopic waits for the new topic's metadata itself.
  it.fails('creates a topic when the broker answers UNKNOWN_TOPIC_OR_PARTITION for it for a moment after creating it', async () => {
    const cluster = new LaggingCluster(2)
    await new KafkaTopicAdmin(cluster as unknown as Kafka).createTopic({ topic: 'orders-g-retry', partitions: 3 })
    expect(await new KafkaTopicAdmin(cluster as unknown as Kafka).partitionCount('orders-g-retry')).toBe(3)
  })
})

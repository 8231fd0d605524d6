import { AdminTopics } from '../admin/admin-topics.js'
import type { BrokerMode, ConsumerTiming, TestBroker, TopicSettings } from '../types.js'
import { BrokerCapabilityError } from '../types.js'

/**
 * A real Kafka cluster the test kit does not run: an existing one (`KAFKA_BROKERS`) or a testcontainers
 * one. Reached over the admin API; no fault injection and no broker restarts (the tests that need them
 * run on the embedded broker or on a cluster the test kit starts).
 */
export class KafkaAdminBroker implements TestBroker {
  readonly brokerIds: number[] = []
  readonly capabilities = {
    faultInjection: false,
    brokerRestart: false,
    transactions: true,
    compaction: true,
    adminApi: true,
    partitionRetentionBytes: undefined,
  } as const
  readonly topicAdmin: AdminTopics
  /** An existing cluster keeps Kafka's default `group.min.session.timeout.ms` (6 s): sessions stay at 6 s. */
  readonly consumerTiming: ConsumerTiming = { sessionTimeout: 6000, rebalanceTimeout: 6000, heartbeatInterval: 500, maxWaitTimeInMs: 100 }

  constructor(
    readonly mode: BrokerMode,
    readonly brokers: string[],
    readonly description: string,
    private readonly onStop: () => Promise<void> = async () => {},
  ) {
    this.topicAdmin = new AdminTopics(brokers)
  }

  async createTopic(name: string, partitions: number, settings: TopicSettings = {}): Promise<void> {
    await this.topicAdmin.createTopic({ topic: name, partitions, ...settings })
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

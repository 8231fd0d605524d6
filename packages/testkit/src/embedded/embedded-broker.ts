import { Kafka, logLevel } from 'kafkajs'
import type { BrokerTopicAdmin, ConsumerTiming, TestBroker, TopicSettings } from '../types.js'
import { loadMockLibrary, type MockLibrary } from './librdkafka.js'

export interface EmbeddedBrokerOptions {
  /** Number of brokers. @defaultValue 3 */
  brokers?: number
}

/**
 * librdkafka's mock cluster, in this process, on loopback TCP.
 *
 * Gaps handled here (and only here):
 * - Controller: the mock reports controller 0 but numbers brokers 1..N. Broker 0 is added (or the
 *   controller id set, on librdkafka >= 2.13) or kafkajs' idempotent producer fails.
 * - `group.initial.rebalance.delay.ms` is set to 0 (the first join would wait 3 s).
 * - No CreateTopics/DescribeConfigs: topics are created with the mock call; the cleanup policy cannot
 *   be read back (`cleanupPolicy` answers `undefined`) and compaction never happens.
 * - Auto-created topics get 4 partitions: create every topic explicitly first.
 * - Each partition keeps only its newest 5 MiB; fetch never returns early (use maxWaitTimeInMs ≈ 100).
 * - Transactions are not faithful: never claim exactly-once from runs on this broker.
 */
export class EmbeddedBroker implements TestBroker {
  readonly mode = 'embedded' as const
  readonly brokers: string[]
  readonly brokerIds: number[]
  readonly description: string
  readonly capabilities = {
    faultInjection: true,
    brokerRestart: false,
    transactions: false,
    compaction: false,
    adminApi: false,
    partitionRetentionBytes: 5 * 1024 * 1024,
  } as const
  readonly topicAdmin: BrokerTopicAdmin
  /**
   * Fetch returns after 100 ms (the mock never returns a fetch early); a short session: the mock holds a
   * rebalance with existing members for sessionTimeout - 1000 ms, and kafkajs cannot parse its LeaveGroup
   * answer, so a departed member is noticed only at session timeout.
   */
  readonly consumerTiming: ConsumerTiming = { sessionTimeout: 4000, rebalanceTimeout: 4000, heartbeatInterval: 300, maxWaitTimeInMs: 100 }
  private readonly lib: MockLibrary
  private readonly rk: unknown
  private mc: unknown
  private readonly topics = new Map<string, number>()

  constructor(options: EmbeddedBrokerOptions = {}) {
    const count = options.brokers ?? 3
    if (!Number.isInteger(count) || count < 1) throw new Error(`brokers must be a positive integer, got ${count}`)
    this.lib = loadMockLibrary()
    const conf = this.lib.confNew()
    this.lib.confSet(conf, 'log_level', '0')
    this.rk = this.lib.kafkaNew(conf)
    if (this.lib.setControllerId) {
      this.mc = this.lib.clusterNew(this.rk, count)
      this.lib.setControllerId(this.mc, 1)
      this.brokerIds = Array.from({ length: count }, (_, i) => i + 1)
    } else {
      // librdkafka 2.12: no set_controller_id; add broker 0 so the reported controller exists.
      this.mc = this.lib.clusterNew(this.rk, Math.max(1, count - 1))
      const err = this.lib.brokerAdd(this.mc, 0)
      if (err !== 0) throw new Error(`rd_kafka_mock_broker_add(0) failed with error ${err}`)
      this.brokerIds = count === 1 ? [0, 1] : Array.from({ length: count }, (_, i) => i)
    }
    this.lib.initialRebalanceDelayMs(this.mc, 0)
    this.brokers = this.lib.bootstraps(this.mc).split(',')
    this.description = `embedded librdkafka ${this.lib.version} mock cluster (${this.brokers.join(',')})`
    this.topicAdmin = {
      partitionCount: async (topic) => this.topics.get(topic) ?? (await this.metadataPartitions(topic)),
      createTopic: async (spec) => this.createTopic(spec.topic, spec.partitions, spec),
      topicConfig: async () => undefined,
      cleanupPolicy: async () => undefined,
    }
  }

  private get cluster(): unknown {
    if (!this.mc) throw new Error('The embedded broker is stopped')
    return this.mc
  }

  /** Partition count of a topic this class did not create (auto-created by a client), via Metadata. */
  private async metadataPartitions(topic: string): Promise<number | undefined> {
    const admin = new Kafka({ brokers: this.brokers, logLevel: logLevel.NOTHING, clientId: 'detour-testkit' }).admin()
    await admin.connect()
    try {
      if (!(await admin.listTopics()).includes(topic)) return undefined
      const metadata = await admin.fetchTopicMetadata({ topics: [topic] })
      const count = metadata.topics[0]?.partitions.length
      if (count !== undefined) this.topics.set(topic, count)
      return count
    } finally {
      await admin.disconnect()
    }
  }

  async createTopic(name: string, partitions: number, settings: TopicSettings = {}): Promise<void> {
    if (!this.mc) throw new Error('The embedded broker is stopped')
    const existing = this.topics.get(name) ?? (await this.metadataPartitions(name))
    if (existing !== undefined) {
      if (existing !== partitions) throw new Error(`Topic ${name} exists with ${existing} partitions, not ${partitions}`)
      return
    }
    const err = this.lib.topicCreate(this.cluster, name, partitions, settings.replicationFactor ?? 1)
    if (err === 36 /* TOPIC_ALREADY_EXISTS: a client auto-created it meanwhile */) {
      const count = await this.metadataPartitions(name)
      if (count !== partitions) throw new Error(`Topic ${name} was auto-created with ${count} partitions, not ${partitions}`)
      return
    }
    if (err !== 0) throw new Error(`rd_kafka_mock_topic_create(${name}) failed with error ${err}`)
    this.topics.set(name, partitions)
  }

  injectErrors(apiKey: number, errors: number[]): void {
    this.lib.pushRequestErrors(this.cluster, apiKey, errors)
  }

  injectBrokerErrors(brokerId: number, apiKey: number, errors: Array<{ code: number; delayMs?: number }>): void {
    const err = this.lib.brokerPushRequestErrorRtts(this.cluster, brokerId, apiKey, errors.map((e) => [e.code, e.delayMs ?? 0]))
    if (err !== 0) throw new Error(`rd_kafka_mock_broker_push_request_error_rtts failed with error ${err}`)
  }

  clearErrors(apiKey: number): void {
    this.lib.clearRequestErrors(this.cluster, apiKey)
  }

  setBrokerDown(brokerId: number): void {
    const err = this.lib.brokerSetDown(this.cluster, brokerId)
    if (err !== 0) throw new Error(`rd_kafka_mock_broker_set_down(${brokerId}) failed with error ${err}`)
  }

  setBrokerUp(brokerId: number): void {
    const err = this.lib.brokerSetUp(this.cluster, brokerId)
    if (err !== 0) throw new Error(`rd_kafka_mock_broker_set_up(${brokerId}) failed with error ${err}`)
  }

  setBrokerRtt(brokerId: number, rttMs: number): void {
    const err = this.lib.brokerSetRtt(this.cluster, brokerId, rttMs)
    if (err !== 0) throw new Error(`rd_kafka_mock_broker_set_rtt(${brokerId}) failed with error ${err}`)
  }

  async stop(): Promise<void> {
    if (!this.mc) return
    const mc = this.mc
    this.mc = undefined
    this.lib.clusterDestroy(mc)
    this.lib.kafkaDestroy(this.rk)
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop()
  }
}

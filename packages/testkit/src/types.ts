/**
 * Where the broker for tests, the demo and benchmarks comes from:
 * - `external`: an existing cluster (`KAFKA_BROKERS`);
 * - `container`: Apache Kafka in Docker (testcontainers);
 * - `kafka`: Apache Kafka run by the test kit as JVM child processes (Java and Maven);
 * - `embedded`: librdkafka's mock cluster in this process (no Java; the only one with protocol-level fault injection).
 */
export type BrokerMode = 'external' | 'container' | 'kafka' | 'embedded'

/** Kafka protocol API keys used with fault injection. */
export const ApiKeys = {
  Produce: 0,
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  OffsetCommit: 8,
  OffsetFetch: 9,
  FindCoordinator: 10,
  JoinGroup: 11,
  Heartbeat: 12,
  LeaveGroup: 13,
  SyncGroup: 14,
  InitProducerId: 22,
} as const

/** Kafka error codes commonly injected in tests. */
export const KafkaErrorCodes = {
  NONE: 0,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  LEADER_NOT_AVAILABLE: 5,
  NOT_LEADER_OR_FOLLOWER: 6,
  REQUEST_TIMED_OUT: 7,
  MESSAGE_TOO_LARGE: 10,
  NOT_COORDINATOR: 16,
  NOT_ENOUGH_REPLICAS: 19,
  NOT_ENOUGH_REPLICAS_AFTER_APPEND: 20,
  REBALANCE_IN_PROGRESS: 27,
  /** Not a Kafka error: librdkafka's mock closes the connection instead of answering. */
  TRANSPORT: -195,
} as const

export interface TopicSettings {
  /** `cleanup.policy=compact` (ignored by the embedded broker, which never compacts). */
  compact?: boolean
  replicationFactor?: number
  /** More topic settings (`segment.ms`, `retention.ms`, …); ignored by the embedded broker. */
  config?: Readonly<Record<string, string>>
}

/**
 * Consumer timing that suits a broker in tests: short fetch waits (the embedded broker never returns a
 * fetch early) and sessions as short as the broker allows (a rebalance waits for departed members).
 */
export interface ConsumerTiming {
  readonly sessionTimeout: number
  readonly rebalanceTimeout: number
  readonly heartbeatInterval: number
  readonly maxWaitTimeInMs: number
}

/**
 * What Detour's topic provisioning needs from a cluster. Structurally the same as `TopicAdmin` in
 * `@detour/core`, so a broker's admin can be passed to the SDK and the retry worker.
 */
export interface BrokerTopicAdmin {
  partitionCount(topic: string): Promise<number | undefined>
  createTopic(spec: { topic: string; partitions: number; compact?: boolean; replicationFactor?: number; config?: Readonly<Record<string, string>> }): Promise<void>
  /** Topic settings by name, or `undefined` when the broker cannot tell (the embedded broker). */
  topicConfig(topic: string, names: readonly string[]): Promise<Readonly<Record<string, string | undefined>> | undefined>
  /** `cleanup.policy`, or `undefined` when the broker cannot tell. */
  cleanupPolicy(topic: string): Promise<string | undefined>
}

export interface BrokerCapabilities {
  /** injectErrors, setBrokerDown/Up work (protocol-level faults: the embedded broker only). */
  readonly faultInjection: boolean
  /** killBroker/restartBroker work (real broker processes). */
  readonly brokerRestart: boolean
  /** Transactions are faithful: aborted records are invisible to read_committed consumers, sendOffsets commits. */
  readonly transactions: boolean
  /** Compacted topics are really compacted. */
  readonly compaction: boolean
  /** CreateTopics/DescribeConfigs admin APIs exist. */
  readonly adminApi: boolean
  /** Each partition keeps only its newest bytes (embedded: 5 MiB). */
  readonly partitionRetentionBytes: number | undefined
}

export interface TestBroker extends AsyncDisposable {
  readonly mode: BrokerMode
  /** `host:port` bootstrap addresses for kafkajs. */
  readonly brokers: string[]
  readonly brokerIds: number[]
  readonly capabilities: BrokerCapabilities
  /** Human-readable description for logs (mode, version, addresses). */
  readonly description: string
  /** Creates a topic unless it exists with that partition count; throws if it exists with another. */
  createTopic(name: string, partitions: number, settings?: TopicSettings): Promise<void>
  /** Topic provisioning through this broker's means (admin API, or mock calls when embedded). */
  readonly topicAdmin: BrokerTopicAdmin
  /** The next `errors.length` requests of `apiKey` (any broker) fail with these error codes, in order. */
  injectErrors(apiKey: number, errors: number[]): void
  /** Same for one broker, each error with a response delay. */
  injectBrokerErrors(brokerId: number, apiKey: number, errors: Array<{ code: number; delayMs?: number }>): void
  clearErrors(apiKey: number): void
  /** Makes a broker close its connections and refuse new ones (no leader change). */
  setBrokerDown(brokerId: number): void
  setBrokerUp(brokerId: number): void
  /** Adds latency to every response of a broker. */
  setBrokerRtt(brokerId: number, rttMs: number): void
  /** SIGKILLs a broker process (brokers with `capabilities.brokerRestart`). */
  killBroker?(brokerId: number): Promise<void>
  /** Starts a killed broker again with its data and waits until it is back. */
  restartBroker?(brokerId: number, timeoutMs?: number): Promise<void>
  /** The last lines of the broker logs, when the broker has logs of its own. */
  logTail?(lines?: number): string
  /** Consumer timing for tests on this broker. */
  readonly consumerTiming: ConsumerTiming
  stop(): Promise<void>
}

export class BrokerCapabilityError extends Error {
  constructor(mode: BrokerMode, what: string) {
    super(`${what} is not supported by the ${mode} broker`)
    this.name = 'BrokerCapabilityError'
  }
}

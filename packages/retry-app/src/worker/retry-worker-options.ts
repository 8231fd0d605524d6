import type { ConsumerConfig, EachMessageHandler, Kafka, ProducerConfig } from 'kafkajs'
import { Registry } from 'prom-client'
import {
  DetourConfigError,
  KafkaTopicAdmin,
  detourTopics,
  exponentialBackoff,
  noopLogger,
  type BackoffFn,
  type DetourTopics,
  type ErrorClassifier,
  type Logger,
  type TopicAdmin,
  type TopicNaming,
} from '@detour/core'
import { resolveBackoff, type BackoffOption } from '../backoff/resolve-backoff.js'

/**
 * What happens to a group when one of its messages exhausts its retries (after the message has been
 * written to the error topic):
 * - `hold`: the group stays blocked. No tombstone is written, the group's later messages wait, and the
 *   retry offset is not committed past the held message, so it is attempted again after a restart.
 *   An operator releases it (`POST /groups/release`, `detour-retry release`).
 * - `release`: a tombstone is written and the group moves on without the message.
 */
export type ExhaustedPolicy = 'hold' | 'release'

/** Options of {@link createRetryWorker}. */
export interface RetryWorkerOptions {
  /** The kafkajs client used for the consumer, the producer and (by default) topic administration. */
  kafka: Kafka
  /** The consumer group of the main app whose retry topics this worker serves. */
  consumerGroup: string
  /** The main app's source topics. The worker consumes their retry topics. */
  topics: readonly string[]
  /**
   * The worker's own consumer group. Must differ from {@link consumerGroup}.
   * @defaultValue `${consumerGroup}-detour-retry`
   */
  groupId?: string
  /** Topic name templates; must match the main app's. @defaultValue core's `defaultTopicNaming` */
  topicNaming?: TopicNaming
  /**
   * The main app's handler. It is called with the original source topic, partition and offset, and the
   * retry record's key, value and headers (Detour headers included).
   */
  handler: EachMessageHandler
  /** Classifies handler errors before the default rules (see core `classifyError`). */
  classify?: ErrorClassifier
  /**
   * Delay before each retry. A function of the number of failed attempts, or
   * `{ type: 'exponential', initialDelayMs, multiplier, maxDelayMs, jitter }` or `{ type: 'constant', delayMs }`.
   * @defaultValue `{ type: 'exponential' }` (1 s, ×2, at most 60 s, ±20% jitter)
   */
  backoff?: BackoffOption
  /**
   * Handler invocations in this worker before a message is exhausted (the first attempt included; the
   * main app's own attempt is not counted).
   * @defaultValue 10
   */
  maxAttempts?: number
  /**
   * Time budget of a message, measured from its first attempt in this worker process: no retry is
   * scheduled that would start later than this. (Measuring from the worker's first attempt, rather than
   * from `detour-redirected-at`, means a backlog that waited in the retry topic is not exhausted unseen.)
   * @defaultValue 3600000 (1 hour)
   */
  maxRetryDurationMs?: number
  /** See {@link ExhaustedPolicy}. @defaultValue 'hold' */
  exhaustedPolicy?: ExhaustedPolicy
  /** Handlers running at the same time, across all partitions. @defaultValue 64 */
  maxInFlight?: number
  /**
   * Unresolved retry records held in memory, across all partitions. Above it, partitions that deliver
   * more records are paused; they resume when the buffer has drained to half of this.
   * @defaultValue 10000
   */
  maxBufferedMessages?: number
  /** Completed ids remembered to recognise duplicates (LRU). @defaultValue 100000 */
  completedIdCacheSize?: number
  /** How often resolved offsets are committed. @defaultValue 500 */
  commitIntervalMs?: number
  /** How long `stop()` waits for in-flight handlers before abandoning them. @defaultValue 10000 */
  shutdownTimeoutMs?: number
  /**
   * Delay between attempts of a failed tombstone or dead-letter write. Such a write is retried until it
   * succeeds (or the worker stops): it is never skipped.
   * @defaultValue exponential from 200 ms to 30 s
   */
  handOffBackoff?: BackoffFn
  /** Topic provisioning and checks. @defaultValue `new KafkaTopicAdmin(kafka)` */
  topicAdmin?: TopicAdmin
  /**
   * Create missing retry, redirect and error topics at start. When false, the topics are still checked
   * (existence and partition counts).
   * @defaultValue true
   */
  createTopics?: boolean
  /** Replication factor of created topics. @defaultValue the broker default */
  replicationFactor?: number
  /**
   * Extra kafkajs consumer settings (tests pass short fetch waits). `groupId` comes from {@link groupId};
   * `maxWaitTimeInMs` defaults to 500 instead of kafkajs' 5000, because `stop()` waits for the fetch
   * in progress.
   * @defaultValue `{ maxWaitTimeInMs: 500 }`
   */
  consumerConfig?: Partial<Omit<ConsumerConfig, 'groupId'>>
  /** Extra kafkajs producer settings. */
  producerConfig?: Partial<ProducerConfig>
  /** Where the worker logs. @defaultValue a logger that writes nothing */
  logger?: Logger
  /** Prometheus registry for the worker's metrics. @defaultValue a new `Registry` (never the global one) */
  registry?: Registry
}

export const defaultOptions = {
  backoff: { type: 'exponential' },
  maxAttempts: 10,
  maxRetryDurationMs: 3_600_000,
  exhaustedPolicy: 'hold',
  maxInFlight: 64,
  maxBufferedMessages: 10_000,
  completedIdCacheSize: 100_000,
  commitIntervalMs: 500,
  shutdownTimeoutMs: 10_000,
  createTopics: true,
  topicNaming: {},
  consumerConfig: { maxWaitTimeInMs: 500 },
  producerConfig: {},
} as const satisfies Partial<RetryWorkerOptions>

/** Options after defaults and validation. */
export interface ResolvedRetryWorkerOptions {
  readonly kafka: Kafka
  readonly consumerGroup: string
  readonly groupId: string
  readonly topicNaming: TopicNaming
  /** Retry topic → the Detour topics it belongs to. */
  readonly topicsByRetryTopic: ReadonlyMap<string, DetourTopics>
  readonly handler: EachMessageHandler
  readonly classify: ErrorClassifier | undefined
  readonly backoff: BackoffFn
  readonly maxAttempts: number
  readonly maxRetryDurationMs: number
  readonly exhaustedPolicy: ExhaustedPolicy
  readonly maxInFlight: number
  readonly maxBufferedMessages: number
  readonly completedIdCacheSize: number
  readonly commitIntervalMs: number
  readonly shutdownTimeoutMs: number
  readonly handOffBackoff: BackoffFn
  readonly topicAdmin: TopicAdmin
  readonly createTopics: boolean
  readonly replicationFactor: number | undefined
  readonly consumerConfig: Partial<Omit<ConsumerConfig, 'groupId'>>
  readonly producerConfig: Partial<ProducerConfig>
  readonly logger: Logger
  readonly registry: Registry
}

function integer(option: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new DetourConfigError(option, `must be an integer >= ${min}, got ${String(value)}`)
  }
  return value
}

function nonEmptyString(option: string, value: unknown): string {
  if (typeof value !== 'string' || value.trim().length === 0) {
    throw new DetourConfigError(option, `must be a non-empty string, got ${JSON.stringify(value)}`)
  }
  return value
}

/**
 * Merges {@link defaultOptions} and validates. Throws a `DetourConfigError` that names the option and
 * says what to change, so a misconfigured worker fails at construction, not on its first message.
 */
export function resolveOptions(options: RetryWorkerOptions): ResolvedRetryWorkerOptions {
  const merged = { ...defaultOptions, ...stripUndefined(options) }
  const kafka = merged.kafka as Kafka | undefined
  if (!kafka || typeof kafka.consumer !== 'function' || typeof kafka.producer !== 'function') {
    throw new DetourConfigError('kafka', 'must be a kafkajs Kafka instance (new Kafka({ clientId, brokers }))')
  }
  const consumerGroup = nonEmptyString('consumerGroup', merged.consumerGroup)
  const groupId = nonEmptyString('groupId', merged.groupId ?? `${consumerGroup}-detour-retry`)
  if (groupId === consumerGroup) {
    throw new DetourConfigError(
      'groupId',
      `must differ from consumerGroup "${consumerGroup}": the worker would join the main app's group; ` +
        `leave it unset to use "${consumerGroup}-detour-retry"`,
    )
  }
  const consumerConfig = merged.consumerConfig as Partial<ConsumerConfig>
  if (consumerConfig.groupId !== undefined && consumerConfig.groupId !== groupId) {
    throw new DetourConfigError('consumerConfig.groupId', 'set the worker group with the groupId option instead')
  }
  const topicList: readonly unknown[] = Array.isArray(merged.topics) ? (merged.topics as readonly unknown[]) : []
  if (topicList.length === 0) {
    throw new DetourConfigError('topics', 'must list at least one source topic of the main app')
  }
  const topicsByRetryTopic = new Map<string, DetourTopics>()
  const seen = new Set<string>()
  for (const raw of topicList) {
    const topic = nonEmptyString('topics', raw)
    if (seen.has(topic)) throw new DetourConfigError('topics', `lists "${topic}" twice`)
    seen.add(topic)
    const topics = detourTopics(topic, consumerGroup, merged.topicNaming)
    if (topicsByRetryTopic.has(topics.retry)) {
      throw new DetourConfigError('topicNaming.retry', `two source topics map to the retry topic "${topics.retry}"; include {topic} in the template`)
    }
    topicsByRetryTopic.set(topics.retry, topics)
  }
  for (const topics of topicsByRetryTopic.values()) {
    if (seen.has(topics.retry) || seen.has(topics.redirect)) {
      throw new DetourConfigError('topics', `"${topics.retry}"/"${topics.redirect}" are Detour topics; list only source topics`)
    }
  }
  if (typeof merged.handler !== 'function') {
    throw new DetourConfigError('handler', 'must be the main app handler function: async ({ topic, partition, message }) => {...}')
  }
  if (merged.classify !== undefined && typeof merged.classify !== 'function') {
    throw new DetourConfigError('classify', 'must be a function (error) => "transient" | "unprocessable" | "deserialization" | undefined')
  }
  const exhaustedPolicy = merged.exhaustedPolicy as string
  if (exhaustedPolicy !== 'hold' && exhaustedPolicy !== 'release') {
    throw new DetourConfigError('exhaustedPolicy', `must be "hold" or "release", got ${JSON.stringify(exhaustedPolicy)}`)
  }
  const commitIntervalMs = integer('commitIntervalMs', merged.commitIntervalMs, 10)
  const replicationFactor = merged.replicationFactor
  if (replicationFactor !== undefined && replicationFactor !== -1) integer('replicationFactor', replicationFactor, 1)
  if (merged.handOffBackoff !== undefined && typeof merged.handOffBackoff !== 'function') {
    throw new DetourConfigError('handOffBackoff', 'must be a function (failedAttempts) => delayMs')
  }
  return {
    kafka,
    consumerGroup,
    groupId,
    topicNaming: merged.topicNaming,
    topicsByRetryTopic,
    handler: merged.handler,
    classify: merged.classify,
    backoff: resolveBackoff(merged.backoff),
    maxAttempts: integer('maxAttempts', merged.maxAttempts, 1),
    maxRetryDurationMs: integer('maxRetryDurationMs', merged.maxRetryDurationMs, 0),
    exhaustedPolicy,
    maxInFlight: integer('maxInFlight', merged.maxInFlight, 1),
    maxBufferedMessages: integer('maxBufferedMessages', merged.maxBufferedMessages, 1),
    completedIdCacheSize: integer('completedIdCacheSize', merged.completedIdCacheSize, 1),
    commitIntervalMs,
    shutdownTimeoutMs: integer('shutdownTimeoutMs', merged.shutdownTimeoutMs, 0),
    handOffBackoff: merged.handOffBackoff ?? exponentialBackoff({ initialDelayMs: 200, maxDelayMs: 30_000 }),
    topicAdmin: merged.topicAdmin ?? new KafkaTopicAdmin(kafka),
    createTopics: merged.createTopics,
    replicationFactor,
    consumerConfig: { ...defaultOptions.consumerConfig, ...consumerConfig },
    producerConfig: merged.producerConfig,
    logger: merged.logger ?? noopLogger,
    registry: merged.registry ?? new Registry(),
  }
}

/** `{ maxAttempts: undefined }` means "use the default", as if the option were absent. */
function stripUndefined<T extends object>(options: T): T {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as T
}

import type { ConsumerConfig, EachMessagePayload, Kafka, ProducerConfig } from 'kafkajs'
import { Registry } from 'prom-client'
import {
  DetourConfigError,
  EXPONENTIAL_BACKOFF_DEFAULTS,
  KafkaTopicAdmin,
  detourTopicsFor,
  noopLogger,
  resolveBackoff,
  resolveGroupIds,
  type BackoffFn,
  type BackoffOption,
  type DetourTopics,
  type ErrorClassifier,
  type ExponentialBackoffSpec,
  type Logger,
  type TopicAdmin,
  type TopicNaming,
} from '@detour/core'

/**
 * What the worker passes to the handler: kafkajs' `EachMessagePayload` (source topic, partition and
 * offset; the retry record's key, value and headers) plus `signal`, aborted when the attempt times out
 * (`handlerTimeoutMs`), when the partition is revoked, or when a stop gives up waiting. A handler that
 * passes `signal` on (to `fetch`, a database driver…) stops its work when the worker stops waiting for it.
 */
export type RetryHandlerPayload = EachMessagePayload & { readonly signal: AbortSignal }

/**
 * The handler the worker runs. A kafkajs `EachMessageHandler` fits (it ignores `signal`): the main app's
 * handler is used as is.
 */
export type RetryHandler = (payload: RetryHandlerPayload) => Promise<void>

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
  /** The kafkajs client used for the consumers, the producer, the admin client and (by default) topic administration. */
  kafka: Kafka
  /**
   * The main app's consumer group, as in the SDK's `groupId`: it names the retry, redirect and error
   * topics and is the group whose retry topics this worker serves. Required.
   *
   * (Before 0.2 this option named the worker's own group and the main app's group was `consumerGroup`;
   * while the deprecated `consumerGroup` is given, `groupId` keeps that old meaning.)
   */
  groupId?: string
  /**
   * The worker's own consumer group. Must differ from {@link groupId}.
   * @defaultValue `${groupId}-detour-retry`
   */
  workerGroupId?: string
  /**
   * @deprecated The old name of the main app's group; use {@link groupId} (and {@link workerGroupId} for the
   * worker's own group). When it is given, `groupId` keeps its old meaning (the worker's own group) and a
   * deprecation warning is logged.
   */
  consumerGroup?: string
  /** The main app's source topics. The worker consumes their retry topics. */
  topics: readonly string[]
  /** Topic name templates; must match the main app's. @defaultValue core's `defaultTopicNaming` */
  topicNaming?: TopicNaming
  /**
   * The main app's handler (any kafkajs `EachMessageHandler` fits). It is called with the original source
   * topic, partition and offset, the retry record's key, value and headers (Detour headers included), and an
   * abort `signal` (see {@link RetryHandlerPayload}).
   */
  handler: RetryHandler
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
  /**
   * @deprecated No effect (a warning is logged once). Resolved ids are no longer remembered in memory: the
   * worker reads the redirect topics (durable resolution), which survives restarts and rebalances.
   */
  completedIdCacheSize?: number
  /** How often resolved offsets are committed. @defaultValue 500 */
  commitIntervalMs?: number
  /** How long `stop()` waits for in-flight handlers before abandoning them. @defaultValue 10000 */
  shutdownTimeoutMs?: number
  /**
   * After the drain, how long the rest of `stop()` may take (the wait for a consumer kafkajs is restarting,
   * the last commit, the disconnect): `stop()` always returns within `shutdownTimeoutMs` +
   * min(1 s, `handlerTimeoutMs`) + `closeTimeoutMs`. Past it, in-flight work is aborted and the result says
   * `clean: false, timedOut: true` (exit the process then). @defaultValue 5000
   */
  closeTimeoutMs?: number
  /**
   * Longest handler attempt. Past it the attempt's `signal` aborts and the attempt counts as a transient
   * failure (`DetourTimeoutError`); the group's next attempt still waits until the handler has really
   * returned (a warning is logged every `handlerTimeoutMs` meanwhile): order comes first. Also bounds how
   * long a revoked partition waits for its handlers before it is handed over, and how long a new owner
   * waits for the previous owner (`handlerTimeoutMs` + 2 s).
   * @defaultValue 30000
   */
  handlerTimeoutMs?: number
  /**
   * Delete resolved records from the retry topic (it is created with unlimited retention): after a commit,
   * `deleteTopicRecords` up to the committed offset, at most every {@link purgeIntervalMs} per partition.
   * Needs the `DELETE` ACL on the retry topics; without it the worker warns once and stops purging.
   * @defaultValue true
   */
  purgeResolvedRecords?: boolean
  /** Least time between two purges of a partition. @defaultValue 60000 */
  purgeIntervalMs?: number
  /**
   * Delay between attempts of a failed tombstone or dead-letter write. Such a write is retried until it
   * succeeds (or the worker stops): it is never skipped. Same forms as {@link backoff}.
   * @defaultValue `{ type: 'exponential', initialDelayMs: 200, maxDelayMs: 30000 }`
   */
  handOffBackoff?: BackoffOption
  /** Topic provisioning and checks. @defaultValue `new KafkaTopicAdmin(kafka)` */
  topicAdmin?: TopicAdmin
  /**
   * Create missing retry, redirect and error topics at start. When false, the topics are still checked
   * (existence and partition counts).
   * @defaultValue true
   */
  createTopics?: boolean
  /**
   * Fail at start when the redirect topic is not exactly `compact` or the retry topic has a time or size
   * retention limit (see core `provisionTopics`). `false` only logs the mismatch.
   * @defaultValue true
   */
  checkTopicSettings?: boolean
  /** Replication factor of created topics. @defaultValue the broker default */
  replicationFactor?: number
  /**
   * Extra kafkajs consumer settings (tests pass short fetch waits). The group comes from
   * {@link workerGroupId}; `maxWaitTimeInMs` defaults to 500 instead of kafkajs' 5000, because `stop()`
   * waits for the fetch in progress.
   * @defaultValue `{ maxWaitTimeInMs: 500 }`
   */
  consumerConfig?: Partial<Omit<ConsumerConfig, 'groupId'>>
  /**
   * kafkajs settings of the redirect follower's consumer (a private group named after
   * {@link workerGroupId} that reads the redirect topics and never commits).
   * @defaultValue `{ maxWaitTimeInMs: 500 }`
   */
  followerConfig?: Partial<Omit<ConsumerConfig, 'groupId'>>
  /**
   * Extra kafkajs producer settings. The producer is always idempotent with one request in flight, so a
   * tombstone that kafkajs retries can never land after a later record.
   */
  producerConfig?: Partial<ProducerConfig>
  /** Where the worker logs. @defaultValue a logger that writes nothing */
  logger?: Logger
  /** Prometheus registry for the worker's metrics. @defaultValue a new `Registry` (never the global one) */
  registry?: Registry
}

/**
 * The plain-data part of {@link RetryWorkerOptions}: what a command line, environment variables or a Helm
 * chart can set. Everything but the clients, the handler and its classifier, the logger and the registry.
 */
export type RetryWorkerSettings = Omit<RetryWorkerOptions, 'kafka' | 'handler' | 'classify' | 'topicAdmin' | 'logger' | 'registry'>

export const defaultOptions = {
  backoff: { type: 'exponential' },
  maxAttempts: 10,
  maxRetryDurationMs: 3_600_000,
  exhaustedPolicy: 'hold',
  maxInFlight: 64,
  maxBufferedMessages: 10_000,
  commitIntervalMs: 500,
  shutdownTimeoutMs: 10_000,
  closeTimeoutMs: 5000,
  handlerTimeoutMs: 30_000,
  purgeResolvedRecords: true,
  purgeIntervalMs: 60_000,
  handOffBackoff: { type: 'exponential', initialDelayMs: 200, maxDelayMs: 30_000 },
  createTopics: true,
  checkTopicSettings: true,
  topicNaming: {},
  consumerConfig: { maxWaitTimeInMs: 500 },
  followerConfig: { maxWaitTimeInMs: 500 },
  producerConfig: {},
} as const satisfies Partial<RetryWorkerOptions>

/** Settings after defaults and validation ({@link resolveSettings}). */
export interface ResolvedRetryWorkerSettings {
  /** The main app's consumer group. */
  readonly groupId: string
  /** The worker's own consumer group. */
  readonly workerGroupId: string
  readonly topicNaming: TopicNaming
  /** Retry topic → the Detour topics it belongs to. */
  readonly topicsByRetryTopic: ReadonlyMap<string, DetourTopics>
  readonly backoff: BackoffFn
  readonly maxAttempts: number
  readonly maxRetryDurationMs: number
  readonly exhaustedPolicy: ExhaustedPolicy
  readonly maxInFlight: number
  readonly maxBufferedMessages: number
  readonly commitIntervalMs: number
  readonly shutdownTimeoutMs: number
  readonly closeTimeoutMs: number
  readonly handlerTimeoutMs: number
  readonly purgeResolvedRecords: boolean
  readonly purgeIntervalMs: number
  readonly handOffBackoff: BackoffFn
  readonly createTopics: boolean
  readonly checkTopicSettings: boolean
  readonly replicationFactor: number | undefined
  readonly consumerConfig: Partial<Omit<ConsumerConfig, 'groupId'>>
  readonly followerConfig: Partial<Omit<ConsumerConfig, 'groupId'>>
  readonly producerConfig: Partial<ProducerConfig>
  /** Deprecated options that were used, each with what to do instead (the worker logs them once). */
  readonly deprecations: readonly string[]
}

/** Options after defaults and validation. */
export interface ResolvedRetryWorkerOptions extends ResolvedRetryWorkerSettings {
  readonly kafka: Kafka
  readonly handler: RetryHandler
  readonly classify: ErrorClassifier | undefined
  readonly topicAdmin: TopicAdmin
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

function backoffOption(option: string, value: unknown): BackoffFn {
  if (typeof value !== 'function' && (typeof value !== 'object' || value === null)) {
    throw new DetourConfigError(option, 'must be a function (failedAttempts) => delayMs, or { type: "exponential" | "constant", ... }')
  }
  const spec = value as Partial<ExponentialBackoffSpec>
  if (spec.type === 'exponential') {
    // A first delay above the cap would silently become the cap: say so instead.
    const initial = spec.initialDelayMs ?? EXPONENTIAL_BACKOFF_DEFAULTS.initialDelayMs
    const max = spec.maxDelayMs ?? EXPONENTIAL_BACKOFF_DEFAULTS.maxDelayMs
    if (initial > max) throw new DetourConfigError(`${option}.initialDelayMs`, `(${initial}) must not exceed ${option}.maxDelayMs (${max})`)
  }
  try {
    return resolveBackoff(value as BackoffOption)
  } catch (error) {
    // core names the fields `backoff.*`: say which of the two options it was.
    if (error instanceof DetourConfigError && option !== 'backoff') {
      throw new DetourConfigError(error.option.replace(/^backoff/, option), error.message.replace(/^Invalid option "[^"]*": /, ''))
    }
    throw error
  }
}

function consumerSettings(option: string, value: unknown, workerGroupId: string | undefined): Partial<ConsumerConfig> {
  if (typeof value !== 'object' || value === null) throw new DetourConfigError(option, 'must be an object of kafkajs consumer settings')
  const config = value as Partial<ConsumerConfig>
  if (config.groupId !== undefined && config.groupId !== workerGroupId) {
    throw new DetourConfigError(
      `${option}.groupId`,
      option === 'consumerConfig' ? 'set the worker group with the workerGroupId option instead' : "the follower's group is private; leave groupId out",
    )
  }
  const timing = [['maxWaitTimeInMs', 0], ['sessionTimeout', 1], ['heartbeatInterval', 1], ['rebalanceTimeout', 1]] as const
  for (const [field, min] of timing) if (config[field] !== undefined) integer(`${option}.${field}`, config[field], min)
  return config
}

/** kafkajs' consumer defaults, which apply when `consumerConfig` leaves them out. */
const KAFKAJS_SESSION_TIMEOUT_MS = 30_000
const KAFKAJS_HEARTBEAT_INTERVAL_MS = 3000

/**
 * Merges {@link defaultOptions} into the plain-data settings and validates them: the one validation of the
 * worker's settings, which `detour-retry run` reuses for its flags and `DETOUR_*` variables. Throws a
 * `DetourConfigError` that names the option and says what to change.
 */
export function resolveSettings(settings: RetryWorkerSettings): ResolvedRetryWorkerSettings {
  const merged = { ...defaultOptions, ...stripUndefined(settings) }
  const deprecations: string[] = []
  // core's rule, shared with both command lines (`--group-id`, `--worker-group-id`, `--consumer-group`).
  const { groupId, workerGroupId, deprecation } = resolveGroupIds(merged)
  if (deprecation !== undefined) deprecations.push(deprecation)
  const consumerConfig = consumerSettings('consumerConfig', merged.consumerConfig, workerGroupId)
  const followerConfig = consumerSettings('followerConfig', merged.followerConfig, undefined)
  for (const [option, config] of [['consumerConfig', consumerConfig], ['followerConfig', followerConfig]] as const) {
    const heartbeat = config.heartbeatInterval ?? KAFKAJS_HEARTBEAT_INTERVAL_MS
    const session = config.sessionTimeout ?? KAFKAJS_SESSION_TIMEOUT_MS
    if (heartbeat >= session) {
      throw new DetourConfigError(`${option}.heartbeatInterval`, `(${heartbeat}) must be below ${option}.sessionTimeout (${session})`)
    }
  }
  const topicList: readonly unknown[] = Array.isArray(merged.topics) ? (merged.topics as readonly unknown[]) : []
  if (topicList.length === 0) {
    throw new DetourConfigError('topics', 'must list at least one source topic of the main app')
  }
  // Core names the topics and refuses names that collide (two source topics sharing a retry topic, a source
  // topic listed as a Detour topic): one home for the naming rules of both apps.
  const sources = topicList.map((raw) => nonEmptyString('topics', raw))
  const topicsByRetryTopic = new Map<string, DetourTopics>()
  for (const topics of detourTopicsFor(sources, groupId, merged.topicNaming).values()) topicsByRetryTopic.set(topics.retry, topics)
  const exhaustedPolicy = merged.exhaustedPolicy as string
  if (exhaustedPolicy !== 'hold' && exhaustedPolicy !== 'release') {
    throw new DetourConfigError('exhaustedPolicy', `must be "hold" or "release", got ${JSON.stringify(exhaustedPolicy)}`)
  }
  if (merged.completedIdCacheSize !== undefined) {
    deprecations.push(
      'The option completedIdCacheSize is deprecated and has no effect: resolved ids are read from the redirect topics (durable resolution); remove it.',
    )
  }
  const replicationFactor = merged.replicationFactor
  if (replicationFactor !== undefined && replicationFactor !== -1) integer('replicationFactor', replicationFactor, 1)
  const producerConfig = merged.producerConfig as Partial<ProducerConfig>
  if (producerConfig.idempotent === false || (producerConfig.maxInFlightRequests !== undefined && producerConfig.maxInFlightRequests !== 1)) {
    throw new DetourConfigError(
      'producerConfig',
      'the worker\'s producer is idempotent with maxInFlightRequests 1 (a retried tombstone must never land after a later record); leave idempotent and maxInFlightRequests out',
    )
  }
  if (producerConfig.retry?.retries !== undefined && producerConfig.retry.retries < 1) {
    throw new DetourConfigError('producerConfig.retry.retries', 'must be at least 1: kafkajs refuses an idempotent producer without retries')
  }
  for (const flag of ['createTopics', 'checkTopicSettings', 'purgeResolvedRecords'] as const) {
    if (typeof merged[flag] !== 'boolean') throw new DetourConfigError(flag, `must be true or false, got ${JSON.stringify(merged[flag])}`)
  }
  return {
    groupId,
    workerGroupId,
    topicNaming: merged.topicNaming,
    topicsByRetryTopic,
    backoff: backoffOption('backoff', merged.backoff),
    maxAttempts: integer('maxAttempts', merged.maxAttempts, 1),
    maxRetryDurationMs: integer('maxRetryDurationMs', merged.maxRetryDurationMs, 0),
    exhaustedPolicy,
    maxInFlight: integer('maxInFlight', merged.maxInFlight, 1),
    maxBufferedMessages: integer('maxBufferedMessages', merged.maxBufferedMessages, 1),
    commitIntervalMs: integer('commitIntervalMs', merged.commitIntervalMs, 10),
    shutdownTimeoutMs: integer('shutdownTimeoutMs', merged.shutdownTimeoutMs, 0),
    closeTimeoutMs: integer('closeTimeoutMs', merged.closeTimeoutMs, 0),
    handlerTimeoutMs: integer('handlerTimeoutMs', merged.handlerTimeoutMs, 1),
    purgeResolvedRecords: merged.purgeResolvedRecords,
    purgeIntervalMs: integer('purgeIntervalMs', merged.purgeIntervalMs, 0),
    handOffBackoff: backoffOption('handOffBackoff', merged.handOffBackoff),
    createTopics: merged.createTopics,
    checkTopicSettings: merged.checkTopicSettings,
    replicationFactor,
    consumerConfig: { ...defaultOptions.consumerConfig, ...consumerConfig },
    followerConfig: { ...defaultOptions.followerConfig, ...followerConfig },
    producerConfig,
    deprecations,
  }
}

/**
 * {@link resolveSettings}, then the collaborators: the kafkajs client, the handler and its classifier, topic
 * administration, the logger and the registry. A misconfigured worker fails at construction, not on its
 * first message.
 */
export function resolveOptions(options: RetryWorkerOptions): ResolvedRetryWorkerOptions {
  const { kafka, handler, classify, topicAdmin, logger, registry, ...settings } = options
  if (!kafka || typeof kafka.consumer !== 'function' || typeof kafka.producer !== 'function' || typeof kafka.admin !== 'function') {
    throw new DetourConfigError('kafka', 'must be a kafkajs Kafka instance (new Kafka({ clientId, brokers }))')
  }
  const resolved = resolveSettings(settings)
  if (typeof handler !== 'function') {
    throw new DetourConfigError('handler', 'must be the main app handler function: async ({ topic, partition, message, signal }) => {...}')
  }
  if (classify !== undefined && typeof classify !== 'function') {
    throw new DetourConfigError('classify', 'must be a function (error) => "transient" | "unprocessable" | "deserialization" | undefined')
  }
  return {
    ...resolved,
    kafka,
    handler,
    classify,
    topicAdmin: topicAdmin ?? new KafkaTopicAdmin(kafka),
    logger: logger ?? noopLogger,
    registry: registry ?? new Registry(),
  }
}

/** `{ maxAttempts: undefined }` means "use the default", as if the option were absent. */
function stripUndefined<T extends object>(options: T): T {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as T
}

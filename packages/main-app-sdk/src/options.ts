import type { Consumer, ConsumerConfig, Kafka, Producer } from 'kafkajs'
import type { Registry } from 'prom-client'
import {
  DetourConfigError,
  constantBackoff,
  defaultGroupKey,
  type BackoffFn,
  type ErrorClassifier,
  type GroupKeyFn,
  type Logger,
  type TopicAdmin,
  type TopicNaming,
} from '@detour/core'

/** Options of {@link createDetour}. */
export interface DetourOptions {
  /** Your kafkajs client: Detour creates its producer, admin and redirect follower from it. */
  kafka: Kafka
  /**
   * Your consumer. Detour listens to its group events to rebuild pending ids before any message of a
   * newly assigned partition is processed. Create it with the same `groupId`.
   */
  consumer: Consumer
  /** The consumer group id of `consumer`. Part of the default topic names. */
  groupId: string
  /** Source topics the consumer reads. Each gets its own retry, redirect and error topic. */
  topics: string[]
  /**
   * Names of the retry, redirect and error topics (`{topic}` and `{groupId}` placeholders).
   * @defaultValue `{topic}-{groupId}-retry`, `{topic}-{groupId}-redirect`, `{topic}-{groupId}-dlt`
   */
  topicNaming?: TopicNaming
  /** The ordering group of a message. @defaultValue the message key */
  groupKey?: GroupKeyFn
  /**
   * Decides what a handler error means. Return `undefined` to use the defaults
   * (`UnprocessableMessageError` and programming errors → error topic; `DeserializationError`/`SyntaxError`
   * → error topic; anything else → transient).
   */
  classify?: ErrorClassifier
  /**
   * Extra attempts in place (same message, same process) after a transient failure, before the message
   * is redirected to the retry topic. Keep it small: the partition waits meanwhile.
   * @defaultValue 0
   */
  inPlaceRetries?: number
  /** Delay between in-place attempts. @defaultValue 100 ms constant */
  inPlaceBackoff?: BackoffFn
  /**
   * Pending ids (over this instance's assigned partitions) above which partitions that need to add ids
   * are paused until tombstones release some. Ids are never evicted.
   * @defaultValue 100000
   */
  maxPendingIds?: number
  /**
   * Longest wait for a partition's rebuild before the message fails (and kafkajs delivers it again).
   * @defaultValue 300000
   */
  rebuildTimeoutMs?: number
  /** Create missing retry/redirect/error topics at start. @defaultValue true */
  createTopics?: boolean
  /** Fail at start when the redirect topic is readable and not compacted. @defaultValue true */
  requireCompactedRedirect?: boolean
  /** Topic provisioning. @defaultValue kafkajs admin API (`KafkaTopicAdmin`) */
  topicAdmin?: TopicAdmin
  /**
   * Producer for retry, redirect and error records. It must use `acks: -1` semantics (the default for
   * `send`). Detour connects and disconnects it only if it created it.
   * @defaultValue `kafka.producer({ allowAutoTopicCreation: false })`
   */
  producer?: Producer
  /** Settings of the redirect follower's consumer (e.g. `maxWaitTimeInMs`). */
  followerConfig?: Partial<ConsumerConfig>
  /** @defaultValue a logger that writes nothing */
  logger?: Logger
  /** prom-client registry for Detour's metrics. @defaultValue a new private `Registry` */
  registry?: Registry
}

export const defaultOptions = {
  topicNaming: {},
  groupKey: defaultGroupKey,
  inPlaceRetries: 0,
  maxPendingIds: 100_000,
  rebuildTimeoutMs: 300_000,
  createTopics: true,
  requireCompactedRedirect: true,
} satisfies Partial<DetourOptions>

export type ResolvedOptions = DetourOptions &
  Required<Pick<DetourOptions, keyof typeof defaultOptions | 'inPlaceBackoff'>>

function integer(option: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new DetourConfigError(option, `must be an integer >= ${min}, got ${String(value)}`)
  }
}

/** Merges defaults and validates; throws {@link DetourConfigError} saying what to change. */
export function resolveOptions(options: DetourOptions): ResolvedOptions {
  if (!options || typeof options !== 'object') throw new DetourConfigError('options', 'an options object is required')
  if (!options.kafka || typeof options.kafka.producer !== 'function') {
    throw new DetourConfigError('kafka', 'pass your kafkajs `Kafka` instance')
  }
  if (!options.consumer || typeof options.consumer.on !== 'function' || !options.consumer.events) {
    throw new DetourConfigError('consumer', 'pass the kafkajs consumer whose handler you wrap (kafka.consumer({ groupId }))')
  }
  if (typeof options.groupId !== 'string' || options.groupId.length === 0) {
    throw new DetourConfigError('groupId', 'must be the non-empty consumer group id of `consumer`')
  }
  if (!Array.isArray(options.topics) || options.topics.length === 0 || options.topics.some((t) => typeof t !== 'string' || !t)) {
    throw new DetourConfigError('topics', 'must list the source topics (non-empty strings) the consumer subscribes to')
  }
  if (new Set(options.topics).size !== options.topics.length) {
    throw new DetourConfigError('topics', 'lists a topic twice')
  }
  const resolved: ResolvedOptions = {
    ...defaultOptions,
    inPlaceBackoff: constantBackoff(100),
    ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
  } as ResolvedOptions
  integer('inPlaceRetries', resolved.inPlaceRetries, 0)
  if (resolved.inPlaceRetries > 10) {
    throw new DetourConfigError('inPlaceRetries', `at most 10 (the partition waits during in-place retries); got ${resolved.inPlaceRetries}`)
  }
  integer('maxPendingIds', resolved.maxPendingIds, 1)
  integer('rebuildTimeoutMs', resolved.rebuildTimeoutMs, 1)
  if (typeof resolved.groupKey !== 'function') throw new DetourConfigError('groupKey', 'must be a function (message) => key')
  if (resolved.classify !== undefined && typeof resolved.classify !== 'function') {
    throw new DetourConfigError('classify', 'must be a function (error) => verdict | undefined')
  }
  if (typeof resolved.inPlaceBackoff !== 'function') throw new DetourConfigError('inPlaceBackoff', 'must be a function (attempt) => ms')
  return resolved
}

import type { Consumer, ConsumerConfig, Kafka, Producer, ProducerConfig } from 'kafkajs'
import type { Registry } from 'prom-client'
import {
  DetourConfigError,
  defaultGroupKey,
  resolveBackoff,
  type BackoffFn,
  type BackoffOption,
  type ErrorClassifier,
  type GroupKeyFn,
  type Logger,
  type TopicAdmin,
  type TopicNaming,
} from '@detour/core'
import type { HandOffMode } from './hand-off/hand-off.js'

/** Options of {@link createDetour}. */
export interface DetourOptions {
  /** Your kafkajs client: Detour creates its producers, admin and redirect follower from it. */
  kafka: Kafka
  /**
   * Your consumer. Detour listens to its group events to claim and rebuild a newly assigned partition
   * before any of its messages is processed. Create it with the same `groupId`.
   */
  consumer: Consumer
  /** The consumer group id of `consumer`. Part of the default topic names and of the transactional ids. */
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
   * → error topic; anything else → transient). Consumer-group errors (a `heartbeat()` during a rebalance)
   * never reach it: they go back to kafkajs.
   */
  classify?: ErrorClassifier
  /**
   * Extra attempts in place (same message, same process) after a transient failure, before the message
   * is redirected to the retry topic. Keep it small: the partition waits meanwhile.
   * @defaultValue 0
   */
  inPlaceRetries?: number
  /**
   * Delay between in-place attempts: a function of the failed attempts, or
   * `{ type: 'exponential', initialDelayMs, … }` / `{ type: 'constant', delayMs }` (as the retry worker's `backoff`).
   * @defaultValue `{ type: 'constant', delayMs: 100 }`
   */
  inPlaceBackoff?: BackoffOption
  /**
   * How hand-offs are written: `transactional` (one Kafka transaction per hand-off and one transactional id
   * per source partition: evicted instances are fenced and unknown outcomes settled) or `sequential` (the
   * redirect record, acknowledged, then the retry record; for clusters without transactions). See
   * docs/ARCHITECTURE.md, "Fencing", for what each guarantees and costs.
   * @defaultValue 'transactional'
   */
  handOff?: HandOffMode
  /**
   * Prefix of the transactional ids (`<prefix>-<topic>-<partition>`). Every instance of the consumer group
   * must use the same; grant the principal `Write`/`Describe` on transactional ids with this prefix.
   * @defaultValue `detour-<groupId>`
   */
  transactionalIdPrefix?: string
  /** The broker aborts a hand-off transaction left open this long (an instance died in the middle). @defaultValue 30000 */
  transactionTimeoutMs?: number
  /**
   * Pending ids (over this instance's assigned partitions) above which partitions that need to add ids
   * are paused until tombstones release some. Ids are never evicted.
   * @defaultValue 100000
   */
  maxPendingIds?: number
  /**
   * Longest wait for a partition to be ready (claimed and rebuilt) before the message fails (and kafkajs
   * delivers it again).
   * @defaultValue 300000
   */
  rebuildTimeoutMs?: number
  /**
   * Your consumer's `sessionTimeout` (kafkajs `kafka.consumer({ sessionTimeout })`). When no heartbeat of
   * the consumer succeeded for two thirds of it, the coordinator may be about to evict this member (a
   * coordinator down, a stalled process): Detour starts no further handler on its partitions until the
   * coordinator confirms they are still this member's — an evicted instance must not run a message after
   * the partition's new owner ran a later one. Set it to the consumer's value: a larger one weakens this.
   * @defaultValue 30000 (kafkajs' default)
   */
  sessionTimeoutMs?: number
  /**
   * kafkajs heartbeats only between messages: a handler that runs longer than the session timeout (a slow
   * call, its own write retried through a broker failover) would get this member evicted while it runs, and
   * the partition's new owner would process later messages before the old handler's effect lands. So while
   * a handler runs, Detour heartbeats for it (as the Java consumer's background thread does) — for at most
   * this long without any handler finishing, like Java's `max.poll.interval.ms`: handlers stuck longer stop
   * being covered, and the session expires. Give your consumer a `rebalanceTimeout` longer than your slowest handler: a
   * rebalance waits that long for this member to finish before it is removed.
   * @defaultValue 300000 (Java's `max.poll.interval.ms`)
   */
  maxPollIntervalMs?: number
  /** Create missing retry/redirect/error topics at start. @defaultValue true */
  createTopics?: boolean
  /** Replication factor of created topics. @defaultValue the broker's default */
  replicationFactor?: number
  /**
   * Refuse to start when the redirect topic is not exactly `cleanup.policy=compact` or the retry topic has
   * a retention limit (when the cluster lets them be read). `false` only logs them.
   * @defaultValue true
   */
  checkTopicSettings?: boolean
  /** @deprecated Use `checkTopicSettings`. */
  requireCompactedRedirect?: boolean
  /** Topic provisioning. @defaultValue kafkajs admin API (`KafkaTopicAdmin`) */
  topicAdmin?: TopicAdmin
  /** Extra settings of the producers Detour creates (`idempotent`, `transactionalId` and acks are Detour's). */
  producerConfig?: Partial<ProducerConfig>
  /**
   * @deprecated Detour creates its producers (`producerConfig` sets them up). Still accepted with
   * `handOff: 'sequential'`, for its writes; it must use `acks: -1` and should be idempotent.
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
  inPlaceBackoff: { type: 'constant', delayMs: 100 },
  handOff: 'transactional',
  transactionTimeoutMs: 30_000,
  maxPendingIds: 100_000,
  rebuildTimeoutMs: 300_000,
  sessionTimeoutMs: 30_000,
  maxPollIntervalMs: 300_000,
  createTopics: true,
  checkTopicSettings: true,
} as const satisfies Partial<DetourOptions>

type Defaulted = 'topicNaming' | 'groupKey' | 'inPlaceRetries' | 'handOff' | 'transactionalIdPrefix' | 'transactionTimeoutMs' | 'maxPendingIds' | 'rebuildTimeoutMs' | 'sessionTimeoutMs' | 'maxPollIntervalMs' | 'createTopics' | 'checkTopicSettings'

/** Options after defaults and validation. */
export type ResolvedOptions = Omit<DetourOptions, Defaulted | 'inPlaceBackoff' | 'requireCompactedRedirect'> &
  Required<Pick<DetourOptions, Defaulted>> & { readonly inPlaceBackoff: BackoffFn }

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
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as DetourOptions
  const merged: Omit<ResolvedOptions, 'inPlaceBackoff'> & { inPlaceBackoff: BackoffOption; requireCompactedRedirect?: boolean } = {
    ...defaultOptions,
    transactionalIdPrefix: `detour-${options.groupId}`,
    ...given,
  }
  if (given.checkTopicSettings === undefined && given.requireCompactedRedirect !== undefined) merged.checkTopicSettings = given.requireCompactedRedirect
  integer('inPlaceRetries', merged.inPlaceRetries, 0)
  if (merged.inPlaceRetries > 10) {
    throw new DetourConfigError('inPlaceRetries', `at most 10 (the partition waits during in-place retries); got ${merged.inPlaceRetries}`)
  }
  integer('maxPendingIds', merged.maxPendingIds, 1)
  integer('rebuildTimeoutMs', merged.rebuildTimeoutMs, 1)
  integer('sessionTimeoutMs', merged.sessionTimeoutMs, 1000)
  integer('maxPollIntervalMs', merged.maxPollIntervalMs, 1000)
  integer('transactionTimeoutMs', merged.transactionTimeoutMs, 1000)
  if (merged.replicationFactor !== undefined && merged.replicationFactor !== -1) integer('replicationFactor', merged.replicationFactor, 1)
  if (merged.handOff !== 'transactional' && merged.handOff !== 'sequential') {
    throw new DetourConfigError('handOff', `must be "transactional" or "sequential", got ${JSON.stringify(merged.handOff)}`)
  }
  if (typeof merged.transactionalIdPrefix !== 'string' || merged.transactionalIdPrefix.length === 0) {
    throw new DetourConfigError('transactionalIdPrefix', 'must be a non-empty string')
  }
  if (merged.producer !== undefined && merged.handOff === 'transactional') {
    throw new DetourConfigError(
      'producer',
      'transactional hand-offs use one producer per source partition, created by Detour: pass its settings as `producerConfig` instead ' +
        '(or set handOff: "sequential" to keep using your producer)',
    )
  }
  if (typeof merged.groupKey !== 'function') throw new DetourConfigError('groupKey', 'must be a function (message) => key')
  if (merged.classify !== undefined && typeof merged.classify !== 'function') {
    throw new DetourConfigError('classify', 'must be a function (error) => verdict | undefined')
  }
  const inPlaceBackoff = resolveBackoff(merged.inPlaceBackoff)
  const { requireCompactedRedirect: _legacy, ...rest } = merged
  return { ...rest, inPlaceBackoff }
}

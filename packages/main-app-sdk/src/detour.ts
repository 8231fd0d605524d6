import type { EachBatchHandler, EachMessageHandler, Producer } from 'kafkajs'
import { Registry } from 'prom-client'
import {
  DetourError,
  DetourStoppingError,
  ErrorCodes,
  GroupStore,
  KafkaTopicAdmin,
  RedirectFollower,
  SafeEmitter,
  childLogger,
  createFollowerMetrics,
  detourTopicsFor,
  groupKeyToStoreKey,
  noopLogger,
  provisionTopics,
  type DetourTopics,
  type LifecycleState,
  type Logger,
  type StopResult,
  type TopicAdmin,
} from '@detour/core'
import type { HandOff } from './hand-off/hand-off.js'
import { SequentialHandOff } from './hand-off/sequential-hand-off.js'
import { SharedWriter } from './hand-off/shared-writer.js'
import { TransactionalHandOff } from './hand-off/transactional-hand-off.js'
import { createSdkMetrics, type SdkMetrics } from './metrics/sdk-metrics.js'
import { resolveOptions, type DetourOptions, type ResolvedOptions } from './options.js'
import { ConsumerWatch } from './partitions/consumer-watch.js'
import { producerWithOwnOffsetsCache } from './hand-off/own-offsets-cache.js'
import { PartitionGate, type PartitionReadiness } from './partitions/partition-gate.js'
import { BatchProcessor } from './processing/batch-processor.js'
import { MessageProcessor } from './processing/message-processor.js'
import { HandlerHeartbeats } from './processing/handler-heartbeats.js'
import { MessageRouter } from './routing/message-router.js'

export interface DetourEvents {
  /** A background failure (redirect follower crash, a partition that cannot be prepared). Detour keeps going. */
  error: [error: Error]
  /** Every assigned partition is claimed and rebuilt after an assignment. */
  ready: [info: { partitions: number; durationMs: number | undefined }]
}

export interface DetourStats {
  readonly state: LifecycleState
  readonly pendingIds: number
  readonly groups: number
  readonly pausedPartitions: number
  readonly ready: boolean
  readonly lastRebuildMs: number | undefined
  readonly partitions: PartitionReadiness[]
}

/**
 * Ordered retries for one kafkajs consumer. Create it with your `Kafka` and consumer, `start()` it, and
 * wrap your handler: `consumer.run({ eachMessage: detour.eachMessage(handler) })`.
 */
export class Detour extends SafeEmitter<DetourEvents> {
  readonly registry: Registry
  /** The Detour topics of each source topic. */
  readonly topics: ReadonlyMap<string, DetourTopics>
  private readonly options: ResolvedOptions
  private readonly logger: Logger
  /** Pending ids by source partition and group, as the redirect follower (and this instance's hand-offs) know them. */
  private readonly store: GroupStore
  private readonly metrics: SdkMetrics
  private readonly topicAdmin: TopicAdmin
  private readonly sharedProducer: Producer
  private readonly ownsSharedProducer: boolean
  private readonly follower: RedirectFollower
  private readonly watch: ConsumerWatch
  private readonly handOff: HandOff
  private readonly gate: PartitionGate
  private readonly processor: MessageProcessor
  private readonly batches: BatchProcessor
  private readonly partitionCounts = new Map<string, number>()
  private currentState: LifecycleState = 'idle'
  private startPromise: Promise<void> | undefined
  private stopPromise: Promise<StopResult> | undefined
  private readonly started: Promise<void>
  private markStarted!: () => void
  private readonly detachConsumer: Array<() => void> = []

  constructor(options: DetourOptions) {
    const resolved = resolveOptions(options)
    const logger = childLogger(resolved.logger ?? noopLogger, 'detour', { groupId: resolved.groupId })
    super((error, event) => logger.error(`A listener of the "${event}" event threw`, { error }))
    this.options = resolved
    this.logger = logger
    const { kafka, groupId } = resolved
    this.registry = resolved.registry ?? new Registry()
    this.store = new GroupStore({ maxPendingIds: resolved.maxPendingIds })
    this.topics = detourTopicsFor(resolved.topics, groupId, resolved.topicNaming)
    this.topicAdmin = resolved.topicAdmin ?? new KafkaTopicAdmin(kafka)
    this.started = new Promise((resolve) => (this.markStarted = resolve))
    this.metrics = createSdkMetrics(this.registry, () => {
      const { pendingIds, groups } = this.assignedStats()
      return { pendingIds, groups, utilisation: pendingIds / resolved.maxPendingIds, paused: this.processor.paused.size, ready: this.ready }
    })
    const producerSettings = { allowAutoTopicCreation: false, ...resolved.producerConfig }
    this.ownsSharedProducer = resolved.producer === undefined
    this.sharedProducer = resolved.producer ?? kafka.producer({ ...producerSettings, idempotent: true, maxInFlightRequests: 1 })
    const writer = new SharedWriter(this.sharedProducer)
    const connectShared = (): Promise<void> => (this.ownsSharedProducer ? this.sharedProducer.connect() : Promise.resolve())
    const disconnectShared = (): Promise<void> => (this.ownsSharedProducer ? this.sharedProducer.disconnect() : Promise.resolve())
    this.handOff =
      resolved.handOff === 'transactional'
        ? new TransactionalHandOff({
            // Its own committed-offset cache: see own-offsets-cache.ts (kafkajs shares one with the consumer).
            createProducer: (transactionalId) =>
              producerWithOwnOffsetsCache(kafka, {
                ...producerSettings,
                transactionalId,
                idempotent: true,
                maxInFlightRequests: 1,
                transactionTimeout: resolved.transactionTimeoutMs,
                // CONCURRENT_TRANSACTIONS (the previous transaction's markers still being written) is retried:
                // kafkajs' default first wait of 300 ms would cost every consecutive hand-off of a partition.
                // Retried without limit, as kafkajs wants for idempotent producers: while the cluster is down
                // a hand-off waits (heartbeating) instead of failing; a fenced producer fails at once.
                retry: { initialRetryTime: 10, maxRetryTime: 1000, retries: Number.MAX_SAFE_INTEGER, ...resolved.producerConfig?.retry },
              }).producer,
            transactionalId: (topic, partition) => `${resolved.transactionalIdPrefix}-${topic}-${partition}`,
            writer,
            connectShared,
            disconnectShared,
            logger: childLogger(logger, 'hand-off'),
          })
        : new SequentialHandOff(writer, connectShared, disconnectShared)
    this.follower = new RedirectFollower({
      kafka,
      consumerGroup: groupId,
      topics: this.topics.values(),
      store: this.store,
      consumerConfig: resolved.followerConfig,
      metrics: createFollowerMetrics(this.registry),
      logger: childLogger(logger, 'follower'),
      onError: (error) => this.reportError(error),
    })
    // The lease runs out a third of the session before the coordinator would evict this member.
    this.watch = new ConsumerWatch(resolved.consumer, Math.floor((resolved.sessionTimeoutMs * 2) / 3))
    this.gate = new PartitionGate({
      topics: this.topics,
      handOff: this.handOff,
      follower: this.follower,
      membership: this.watch,
      topicAdmin: this.topicAdmin,
      partitionCounts: this.partitionCounts,
      logger: childLogger(logger, 'partitions'),
      onError: (error) => this.reportError(error),
      onReady: (info) => {
        this.metrics.rebuildDuration.observe(info.durationMs / 1000)
        this.emit('ready', info)
      },
    })
    this.watch.onLapse = () => this.gate.leaseLapsed()
    this.gate.onResumed = ({ topic, partition }) => {
      try {
        resolved.consumer.resume([{ topic, partitions: [partition] }])
      } catch (error) {
        this.logger.warn('Could not resume a partition', { topic, partition, error })
      }
    }
    this.processor = new MessageProcessor({
      topics: this.topics,
      consumerGroup: groupId,
      store: this.store,
      gate: this.gate,
      router: new MessageRouter(
        { groupKey: resolved.groupKey, classify: resolved.classify, inPlaceRetries: resolved.inPlaceRetries, inPlaceBackoff: resolved.inPlaceBackoff },
        this.store,
      ),
      handOff: this.handOff,
      metrics: this.metrics,
      logger,
      rebuildTimeoutMs: resolved.rebuildTimeoutMs,
      maxPendingIds: resolved.maxPendingIds,
      assignedPending: () => this.assignedStats().pendingIds,
      isRunning: () => this.currentState === 'running',
      whenStarted: () => this.whenStarted(),
      stopping: () => this.watch.stopping,
      pausePartition: (payload) => {
        payload.pause()
      },
      heartbeats: new HandlerHeartbeats({ maxPollIntervalMs: resolved.maxPollIntervalMs, logger }),
    })
    this.batches = new BatchProcessor(this.processor)
    this.attach()
  }

  private attach(): void {
    const { consumer, groupId } = this.options
    this.detachConsumer.push(
      consumer.on(consumer.events.GROUP_JOIN, (event) => {
        if (event.payload.groupId !== groupId) {
          this.reportError(
            new DetourError(`Detour was created with groupId "${groupId}" but the consumer joined "${event.payload.groupId}"`, ErrorCodes.INVALID_OPTION),
          )
        }
        const revoked = this.gate.onAssignment(event.payload.memberAssignment)
        this.logger.info('Partitions assigned: claiming them and rebuilding from the redirect topic before processing', {
          assignment: event.payload.memberAssignment,
          revoked,
        })
      }),
    )
  }

  private reportError(error: Error): void {
    this.logger.error('Background failure', { error: error.message, stack: error.stack })
    this.emit('error', error)
  }

  private whenStarted(): Promise<void> {
    if (this.currentState === 'running') return Promise.resolve()
    if (this.currentState === 'idle') {
      return Promise.reject(new DetourError('Call `await detour.start()` before consuming', ErrorCodes.NOT_RUNNING))
    }
    if (this.currentState === 'stopping' || this.currentState === 'stopped' || this.currentState === 'failed') {
      return Promise.reject(new DetourStoppingError(`Detour is ${this.currentState}`))
    }
    return this.started
  }

  /** The life-cycle state (`idle` → `starting` → `running` → `stopping` → `stopped`, or `failed` after a failed start). */
  get state(): LifecycleState {
    return this.currentState
  }

  /**
   * Provisions and validates the Detour topics, connects the producer and starts following the redirect
   * topics. Fails fast (e.g. {@link DetourTopicError} when partition counts differ). Idempotent while
   * starting or running; rejects after `stop()`.
   */
  start(): Promise<void> {
    if (this.currentState === 'stopping' || this.currentState === 'stopped') {
      return Promise.reject(new DetourError(`Detour is ${this.currentState}: create a new instance to start again`, ErrorCodes.NOT_RUNNING))
    }
    this.startPromise ??= this.doStart()
    return this.startPromise
  }

  private async doStart(): Promise<void> {
    this.currentState = 'starting'
    try {
      for (const topics of this.topics.values()) {
        const { partitions } = await provisionTopics({
          admin: this.topicAdmin,
          topics,
          create: this.options.createTopics,
          replicationFactor: this.options.replicationFactor,
          checkTopicSettings: this.options.checkTopicSettings,
          logger: this.logger,
        })
        this.partitionCounts.set(topics.source, partitions)
      }
      // Independent connections: in parallel, so start-up (and the replay it begins) is not serialised.
      await Promise.all([this.handOff.start(), this.follower.start()])
    } catch (error) {
      this.currentState = 'failed'
      await this.disconnectAll()
      throw error
    }
    this.currentState = 'running'
    this.processor.deps.heartbeats.start()
    this.markStarted()
    this.logger.info('Detour started', { topics: [...this.topics.values()], handOff: this.handOff.mode })
  }

  /** Wraps your kafkajs `eachMessage` handler: `consumer.run({ eachMessage: detour.eachMessage(handler) })`. */
  eachMessage(handler: EachMessageHandler): EachMessageHandler {
    return this.processor.wrap(handler)
  }

  /**
   * Runs your per-message handler over kafkajs batches: `consumer.run({ eachBatch: detour.eachBatch(handler) })`.
   * Same order and outcomes as {@link eachMessage}, but the hand-offs of one batch are written together (one
   * transaction) instead of one round trip each: use it when many messages are redirected (a key stuck behind
   * a long retry). Keep kafkajs' `eachBatchAutoResolve` at its default.
   */
  eachBatch(handler: EachMessageHandler): EachBatchHandler {
    return this.batches.wrap(handler)
  }

  /** True when running, following, and every assigned partition is claimed and rebuilt. */
  get ready(): boolean {
    return this.currentState === 'running' && this.follower.running && this.gate.allReady()
  }

  private assignedStats(): { pendingIds: number; groups: number } {
    let pendingIds = 0
    let groups = 0
    for (const { topic, partition } of this.gate.assignedPartitions()) {
      pendingIds += this.store.partitionPending(topic, partition)
      groups += this.store.partitionGroups(topic, partition)
    }
    return { pendingIds, groups }
  }

  stats(): DetourStats {
    return {
      state: this.currentState,
      ...this.assignedStats(),
      pausedPartitions: this.processor.paused.size,
      ready: this.ready,
      lastRebuildMs: this.gate.lastRebuildMs,
      partitions: this.gate.readiness(),
    }
  }

  /** Pending ids of a group, oldest first (diagnostics). `id` names the message of a keyless group. */
  pendingIds(topic: string, partition: number, groupKey: Buffer | string | null, id?: string): string[] {
    const key = groupKeyToStoreKey(typeof groupKey === 'string' ? Buffer.from(groupKey, 'utf8') : groupKey, id ?? '')
    return this.store.pendingIds(topic, partition, key)
  }

  /**
   * Stops following and disconnects what Detour created. Disconnect your consumer first (its in-flight
   * messages finish; a message waiting for its partition or for room ends its wait with a retriable
   * `DetourStoppingError`). Idempotent.
   */
  stop(): Promise<StopResult> {
    this.stopPromise ??= this.doStop()
    return this.stopPromise
  }

  private async doStop(): Promise<StopResult> {
    if (this.startPromise) await this.startPromise.catch(() => undefined)
    const wasRunning = this.currentState === 'running'
    this.currentState = 'stopping'
    this.watch.abort('Detour is stopping')
    this.processor.deps.heartbeats.stop()
    this.gate.stop()
    const clean = await this.disconnectAll()
    for (const undo of this.detachConsumer.splice(0)) undo()
    this.watch.detach()
    this.currentState = 'stopped'
    return { clean: clean || !wasRunning, abandoned: 0 }
  }

  private async disconnectAll(): Promise<boolean> {
    let clean = true
    for (const [what, step] of [
      ['follower', () => this.follower.stop()],
      ['hand-off producers', () => this.handOff.stop()],
    ] as const) {
      try {
        await step()
      } catch (error) {
        clean = false
        this.logger.warn(`Disconnecting the ${what} failed`, { error })
      }
    }
    return clean
  }
}

/** Creates a {@link Detour} for your consumer. */
export function createDetour(options: DetourOptions): Detour {
  return new Detour(options)
}


import { EventEmitter } from 'node:events'
import { Partitioners, type Admin, type EachMessageHandler, type Producer } from 'kafkajs'
import { Registry } from 'prom-client'
import {
  DetourError,
  ErrorCodes,
  GroupStore,
  KafkaTopicAdmin,
  childLogger,
  detourTopics,
  groupKeyToStoreKey,
  noopLogger,
  provisionTopics,
  type DetourTopics,
  type Logger,
} from '@detour/core'
import { RedirectFollower } from './follower/redirect-follower.js'
import { createSdkMetrics, type SdkMetrics } from './metrics/sdk-metrics.js'
import { resolveOptions, type DetourOptions, type ResolvedOptions } from './options.js'
import { RebuildCoordinator, type PartitionReadiness } from './rebuild/rebuild-coordinator.js'
import { HandOff } from './redirect/hand-off.js'
import { MessageRouter } from './wrap/message-router.js'

export interface DetourEvents {
  /** A background failure (redirect follower crash, rebuild trouble). Detour keeps going. */
  error: [error: Error]
  /** Every assigned partition is rebuilt after an assignment. */
  ready: [info: { partitions: number; durationMs: number | undefined }]
}

export interface DetourStats {
  readonly pendingIds: number
  readonly groups: number
  readonly pausedPartitions: number
  readonly ready: boolean
  readonly lastRebuildMs: number | undefined
  readonly partitions: PartitionReadiness[]
}

type State = 'created' | 'starting' | 'running' | 'stopping' | 'stopped'

/**
 * Ordered retries for one kafkajs consumer. Create it with your `Kafka` and consumer, `start()` it, and
 * wrap your handler: `consumer.run({ eachMessage: detour.eachMessage(handler) })`.
 */
export class Detour extends EventEmitter<DetourEvents> {
  readonly registry: Registry
  readonly store: GroupStore
  readonly topics: ReadonlyMap<string, DetourTopics>
  private readonly options: ResolvedOptions
  private readonly logger: Logger
  private readonly metrics: SdkMetrics
  private readonly producer: Producer
  private readonly ownsProducer: boolean
  private readonly admin: Admin
  private readonly follower: RedirectFollower
  private readonly rebuild: RebuildCoordinator
  private readonly router: MessageRouter
  private state: State = 'created'
  private startPromise: Promise<void> | undefined
  private readonly started: Promise<void>
  private markStarted!: () => void

  constructor(options: DetourOptions) {
    super()
    this.options = resolveOptions(options)
    const { kafka, groupId } = this.options
    this.logger = childLogger(this.options.logger ?? noopLogger, 'detour', { groupId })
    this.registry = this.options.registry ?? new Registry()
    this.store = new GroupStore({ maxPendingIds: this.options.maxPendingIds })
    this.topics = new Map(this.options.topics.map((topic) => [topic, detourTopics(topic, groupId, this.options.topicNaming)]))
    this.started = new Promise((resolve) => (this.markStarted = resolve))
    this.metrics = createSdkMetrics(this.registry, () => {
      const { pendingIds, groups } = this.assignedStats()
      return {
        pendingIds,
        groups,
        utilisation: pendingIds / this.options.maxPendingIds,
        paused: this.router.paused.size,
        ready: this.ready,
      }
    })
    this.ownsProducer = this.options.producer === undefined
    this.producer = this.options.producer ?? kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner })
    this.admin = kafka.admin()
    const sources = new Map([...this.topics.values()].map((t) => [t.redirect, t.source]))
    this.follower = new RedirectFollower({
      kafka,
      groupId,
      sources,
      store: this.store,
      metrics: this.metrics,
      logger: childLogger(this.logger, 'follower'),
      config: this.options.followerConfig,
      onProgress: (topic, partition) => this.rebuild.onProgress(topic, partition),
      onError: (error) => this.reportError(error),
    })
    this.rebuild = new RebuildCoordinator({
      admin: this.admin,
      topics: this.topics,
      position: (topic, partition) => this.follower.position(topic, partition),
      metrics: this.metrics,
      logger: childLogger(this.logger, 'rebuild'),
      onError: (error) => this.reportError(error),
      onReady: (info) => this.emit('ready', info),
    })
    this.router = new MessageRouter({
      options: this.options,
      topics: this.topics,
      store: this.store,
      rebuild: this.rebuild,
      handOff: new HandOff(this.producer),
      metrics: this.metrics,
      logger: this.logger,
      assignedPending: () => this.assignedStats().pendingIds,
      whenStarted: () => this.whenStarted(),
      isRunning: () => this.state === 'running',
      isStopping: () => this.state === 'stopping' || this.state === 'stopped',
    })
    this.attach()
  }

  private attach(): void {
    const { consumer, groupId } = this.options
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      if (event.payload.groupId !== groupId) {
        this.reportError(
          new DetourError(
            `Detour was created with groupId "${groupId}" but the consumer joined "${event.payload.groupId}"`,
            ErrorCodes.INVALID_OPTION,
          ),
        )
      }
      const revoked = this.rebuild.onAssignment(event.payload.memberAssignment)
      this.logger.info('Partitions assigned: rebuilding from the redirect topic before processing', {
        assignment: event.payload.memberAssignment,
        revoked,
      })
    })
  }

  private reportError(error: Error): void {
    this.logger.error('Background failure', { error: error.message, stack: error.stack })
    if (this.listenerCount('error') > 0) this.emit('error', error)
  }

  private whenStarted(): Promise<void> {
    if (this.state === 'running') return Promise.resolve()
    if (this.state === 'created') {
      return Promise.reject(new DetourError('Call `await detour.start()` before consuming', ErrorCodes.NOT_RUNNING))
    }
    return this.started
  }

  /**
   * Provisions and validates the Detour topics, connects the producer and starts following the redirect
   * topics. Fails fast (e.g. {@link DetourTopicError} when partition counts differ). Idempotent.
   */
  start(): Promise<void> {
    this.startPromise ??= this.doStart()
    return this.startPromise
  }

  private async doStart(): Promise<void> {
    this.state = 'starting'
    const topicAdmin = this.options.topicAdmin ?? new KafkaTopicAdmin(this.options.kafka)
    try {
      for (const topics of this.topics.values()) {
        const { partitions } = await provisionTopics({
          admin: topicAdmin,
          topics,
          create: this.options.createTopics,
          requireCompactedRedirect: this.options.requireCompactedRedirect,
          logger: this.logger,
        })
        for (let partition = 0; partition < partitions; partition++) {
          if (!this.store.hasPartition(topics.source, partition)) this.store.resetPartition(topics.source, partition)
        }
      }
      // Independent connections: in parallel, so start-up (and the rebuild it begins) is not serialised.
      await Promise.all([this.admin.connect(), this.ownsProducer ? this.producer.connect() : Promise.resolve(), this.follower.start()])
    } catch (error) {
      this.state = 'stopped'
      await this.disconnectAll()
      throw error
    }
    this.state = 'running'
    this.markStarted()
    this.logger.info('Detour started', { topics: [...this.topics.values()] })
  }

  /** Wraps your kafkajs `eachMessage` handler. */
  eachMessage(handler: EachMessageHandler): EachMessageHandler {
    return this.router.wrap(handler)
  }

  /** True when running, following, and every assigned partition is rebuilt. */
  get ready(): boolean {
    return this.state === 'running' && this.follower.running && this.rebuild.allReady()
  }

  private assignedStats(): { pendingIds: number; groups: number } {
    let pendingIds = 0
    for (const { topic, partition } of this.rebuild.assignedPartitions()) pendingIds += this.store.partitionPending(topic, partition)
    return { pendingIds, groups: this.store.stats().groups }
  }

  stats(): DetourStats {
    return {
      ...this.assignedStats(),
      pausedPartitions: this.router.paused.size,
      ready: this.ready,
      lastRebuildMs: this.rebuild.lastRebuildMs,
      partitions: this.rebuild.readiness(),
    }
  }

  /** Pending ids of a group (diagnostics). */
  pendingIds(topic: string, partition: number, groupKey: Buffer | string | null, id?: string): string[] {
    const key = groupKeyToStoreKey(typeof groupKey === 'string' ? Buffer.from(groupKey, 'utf8') : groupKey, id ?? '')
    return this.store.pendingIds(topic, partition, key)
  }

  /** Stops following and disconnects what Detour created. Disconnect your consumer first. Idempotent. */
  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return
    this.state = 'stopping'
    this.rebuild.stop()
    await this.disconnectAll()
    this.state = 'stopped'
  }

  private async disconnectAll(): Promise<void> {
    const steps: Array<[string, () => Promise<void>]> = [
      ['follower', () => this.follower.stop()],
      ['admin', () => this.admin.disconnect()],
    ]
    if (this.ownsProducer) steps.push(['producer', () => this.producer.disconnect()])
    for (const [what, step] of steps) {
      try {
        await step()
      } catch (error) {
        this.logger.warn(`Disconnecting the ${what} failed`, { error })
      }
    }
  }
}

/** Creates a {@link Detour} for your consumer. */
export function createDetour(options: DetourOptions): Detour {
  return new Detour(options)
}

import { randomBytes } from 'node:crypto'
import { setMaxListeners } from 'node:events'
import { Partitioners, type Admin, type Consumer, type EachBatchPayload, type IMemberAssignment, type Producer } from 'kafkajs'
import type { Registry } from 'prom-client'
import {
  DetourError,
  DetourHandOffError,
  ErrorCodes,
  GroupStore,
  RedirectFollower,
  SafeEmitter,
  childLogger,
  createFollowerMetrics,
  describeError,
  displayGroupKey,
  isRebalanceError,
  parseTopicPartitionKey,
  provisionTopics,
  topicPartitionKey,
  type DetourTopics,
  type LifecycleState,
  type LogFields,
  type Logger,
  type StopResult,
  type TopicPartition,
} from '@detour/core'
import { RetryMetrics } from '../metrics/retry-metrics.js'
import { isAbortError, sleep } from './abort.js'
import { BufferGate } from './buffer-gate.js'
import { ConcurrencyLimiter } from './concurrency-limiter.js'
import { ConsumerWatch } from './consumer-watch.js'
import { HandOffWriter, type HandOffFailure } from './hand-off-writer.js'
import { HeldGroups } from './held-groups.js'
import { OffsetCommitter, type CommitTarget } from './offset-committer.js'
import { PartitionScheduler } from './partition-scheduler.js'
import { Resolution } from './resolution.js'
import { RetryRetention } from './retention.js'
import { createRetryEntry, type RetryEntry } from './retry-entry.js'
import { RetryProcessor, type ProcessOutcome } from './retry-processor.js'
import { resolveOptions, type ResolvedRetryWorkerOptions, type RetryWorkerOptions } from './retry-worker-options.js'
import { Takeover } from './takeover.js'
import type { DeadLetteredEvent, HeldGroup, PartitionStats, ReleaseResult, ResolutionKind, RetryWorkerEvents, RetryWorkerStats, StopOptions } from './types.js'
import { kafkaWorkerAdmin, type WorkerAdmin } from './worker-admin.js'
import { WorkTracker } from './work-tracker.js'

/** A retry partition assigned to this worker. */
interface AssignedPartition {
  readonly scheduler: PartitionScheduler
  readonly topics: DetourTopics
  /** Resolves when the previous owner let go (or its time ran out); rejects (abort) when revoked first. */
  readonly takenOver: Promise<void>
  /** `waiting` until {@link takenOver}; `active` once attempts may run there. */
  phase: 'waiting' | 'active'
  /** Set once this instance committed its ownership (`state=active`) for the partition. */
  claim: Promise<void> | undefined
  claimed: boolean
}

/**
 * The retry worker: consumes the retry topics of a main app's consumer group, runs the main app's
 * handler again with backoff, keeps per-group order within each retry partition, and releases each
 * resolved id with a tombstone on the redirect topic.
 *
 * It orchestrates single-purpose parts, each behind a narrow interface: the {@link ConsumerWatch}
 * (rebalancing, restarts), the {@link Takeover} of newly assigned partitions, durable {@link Resolution}
 * (a redirect follower and its store), the {@link PartitionScheduler}s (per-group order, commit offsets),
 * the {@link RetryProcessor} (attempts), the {@link OffsetCommitter}, the {@link BufferGate} (memory bound)
 * and the {@link RetryRetention} (purging resolved records). Its own state is one {@link LifecycleState}.
 *
 * `eachBatch` only hands records to the partition schedulers and returns; the work (handlers, backoff
 * timers, writes) runs in the background, so a long backoff never blocks heartbeats or other groups.
 * Offsets are committed on a timer, each partition up to its lowest unresolved record.
 */
export class RetryWorker extends SafeEmitter<RetryWorkerEvents> {
  readonly options: ResolvedRetryWorkerOptions
  /** The Prometheus registry holding the worker's metrics. */
  readonly registry: Registry
  /** Random per worker instance: named in the offset metadata of its commits (`detour:owner=<instanceId>;…`). */
  readonly instanceId: string
  private readonly logger: Logger
  private readonly metrics: RetryMetrics
  private readonly consumer: Consumer
  private readonly producer: Producer
  private readonly admin: Admin
  private readonly workerAdmin: WorkerAdmin
  private readonly watch: ConsumerWatch
  private readonly resolution: Resolution
  private readonly takeover: Takeover
  private readonly committer: OffsetCommitter
  private readonly retention: RetryRetention
  private readonly buffer: BufferGate
  private readonly limiter: ConcurrencyLimiter
  private readonly held: HeldGroups
  private readonly processor: RetryProcessor
  /** Assigned partitions. */
  private readonly partitions = new Map<string, AssignedPartition>()
  /** Revoked partitions until their handlers settled and they are handed over. */
  private readonly revoking = new Map<string, AssignedPartition>()
  /** Partition hand-overs, purges and assignment checks running in the background. */
  private readonly background = new WorkTracker()
  /** Worker-wide signals (each partition follows them): no new attempts / abort handlers / abandon writes. */
  private readonly soft = new AbortController()
  private readonly attempts = new AbortController()
  private readonly hard = new AbortController()
  private currentState: LifecycleState = 'idle'
  /** The `ready` event was emitted since the consumer last joined. */
  private readyAnnounced = false
  private commitLoop: Promise<void> | undefined
  private startPromise: Promise<void> | undefined
  private stopPromise: Promise<StopResult> | undefined

  constructor(options: RetryWorkerOptions) {
    const resolved = resolveOptions(options)
    const logger = childLogger(resolved.logger, 'detour.retry-worker', { groupId: resolved.groupId, workerGroupId: resolved.workerGroupId })
    super((error, event) => logger.error(`A listener of the "${event}" event threw`, { error }))
    this.options = resolved
    const o = resolved
    this.logger = logger
    this.instanceId = randomBytes(8).toString('hex')
    this.registry = o.registry
    this.metrics = new RetryMetrics(o.registry)
    for (const deprecation of o.deprecations) this.logger.warn(deprecation)
    this.consumer = o.kafka.consumer({
      allowAutoTopicCreation: false,
      ...o.consumerConfig,
      groupId: o.workerGroupId,
      // `{ retries: 5 }` is what kafkajs uses when a consumer has no retry settings of its own.
      retry: { ...(o.consumerConfig.retry ?? { retries: 5 }), restartOnFailure: (error) => this.watch.restartOnFailure(o.consumerConfig.retry?.restartOnFailure)(error) },
    })
    this.producer = o.kafka.producer({
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
      ...o.producerConfig,
      // A tombstone kafkajs retries late must not land after a later record (of this worker or of anyone).
      idempotent: true,
      maxInFlightRequests: 1,
    })
    this.admin = o.kafka.admin()
    this.workerAdmin = kafkaWorkerAdmin(this.admin, o.workerGroupId)
    setMaxListeners(0, this.soft.signal, this.attempts.signal, this.hard.signal)
    this.watch = new ConsumerWatch(
      this.consumer,
      { onJoin: (assignment) => this.onGroupJoin(assignment), onCrash: (error, restart) => this.onCrash(error, restart) },
      this.logger,
    )
    const store = new GroupStore()
    const follower = new RedirectFollower({
      kafka: o.kafka,
      consumerGroup: o.groupId,
      topics: o.topicsByRetryTopic.values(),
      store,
      groupIdPrefix: `${o.workerGroupId}-follower`,
      consumerConfig: o.followerConfig,
      metrics: createFollowerMetrics(o.registry),
      logger: childLogger(this.logger, 'follower'),
      onError: (error) => this.reportError('The redirect follower failed; it is restarted', error),
      onProgress: (source, partition, position) => this.resolution.progressed(source, partition, position),
    })
    this.resolution = new Resolution({ follower, store, logger: this.logger })
    this.takeover = new Takeover({ admin: this.workerAdmin, instanceId: this.instanceId, handlerTimeoutMs: o.handlerTimeoutMs, logger: this.logger })
    this.committer = new OffsetCommitter(
      {
        commitOffsets: (offsets) => this.consumer.commitOffsets(offsets),
        onCommitted: (listener) => this.consumer.on(this.consumer.events.COMMIT_OFFSETS, listener),
      },
      this.instanceId,
      this.logger,
    )
    this.retention = new RetryRetention({
      admin: this.workerAdmin,
      purge: o.purgeResolvedRecords,
      intervalMs: o.purgeIntervalMs,
      logger: this.logger,
      metrics: {
        purged: (topic) => this.metrics.purges.inc({ topic }),
        purgeFailed: (topic) => this.metrics.purgeFailures.inc({ topic }),
        deletedUnread: (topic, records) => this.metrics.deletedUnread.inc({ topic }, Number(records)),
      },
      // Logged by the retention already: only listeners are told.
      onDeletedUnread: (error) => this.emitLazy('error', () => [error]),
    })
    this.held = new HeldGroups((delta) => this.metrics.heldGroups.inc(delta))
    this.buffer = new BufferGate({
      max: o.maxBufferedMessages,
      control: {
        pause: (partitions) => this.consumer.pause(partitions.map(({ topic, partition }) => ({ topic, partitions: [partition] }))),
        resume: (partitions) => this.consumer.resume(partitions.map(({ topic, partition }) => ({ topic, partitions: [partition] }))),
      },
      blocked: () => {
        let blocked = 0
        for (const { scheduler } of this.partitions.values()) blocked += scheduler.blocked
        for (const { scheduler } of this.revoking.values()) blocked += scheduler.blocked
        return blocked
      },
      heldGroups: () => this.held.size,
      onBufferedChange: (delta) => this.metrics.buffered.inc(delta),
      logger: this.logger,
      onError: (message, error) => this.reportError(message, error),
    })
    this.limiter = new ConcurrencyLimiter(o.maxInFlight)
    const writer = new HandOffWriter(this.producer, o.handOffBackoff, this.logger, (failure) => this.onHandOffFailure(failure))
    this.processor = new RetryProcessor(
      {
        handler: o.handler,
        classify: o.classify,
        backoff: o.backoff,
        maxAttempts: o.maxAttempts,
        maxRetryDurationMs: o.maxRetryDurationMs,
        exhaustedPolicy: o.exhaustedPolicy,
        handlerTimeoutMs: o.handlerTimeoutMs,
        groupId: o.groupId,
      },
      {
        limiter: this.limiter,
        writer,
        // No attempt starts while the consumer group rebalances (ownership is in flux).
        gate: { whenOpen: (_entry, signal) => this.watch.whenStable(signal), isOpen: () => this.watch.stable },
        resolution: this.resolution,
        metrics: this.metrics,
        logger: this.logger,
      },
    )
  }

  get state(): LifecycleState {
    return this.currentState
  }

  /** True once the consumer joined its group and consumes; false before, after a crash, and while stopping. */
  get ready(): boolean {
    return this.currentState === 'running' && this.watch.joined && this.stopPromise === undefined
  }

  /** The retry topics this worker consumes. */
  get retryTopics(): string[] {
    return [...this.options.topicsByRetryTopic.keys()]
  }

  /**
   * Checks (and unless `createTopics` is false, creates) the Detour topics, connects, starts following the
   * redirect topics and consuming. Resolves once the consumer runs; `ready` turns true when it has joined
   * its group. Idempotent while starting or running (the same promise); rejects once stopping or stopped.
   */
  start(): Promise<void> {
    if (this.currentState === 'stopping' || this.currentState === 'stopped') {
      return Promise.reject(new DetourError(`The retry worker is ${this.currentState}; create a new one to start again`, ErrorCodes.NOT_RUNNING))
    }
    this.startPromise ??= this.doStart()
    return this.startPromise
  }

  /**
   * Stops fetching, lets in-flight handlers finish (up to `timeoutMs`, then aborts their signals and
   * abandons the rest), commits what is resolved — `state=released` for partitions whose handlers all
   * settled — and disconnects. Idempotent: later calls return the first call's result.
   */
  stop(options: StopOptions = {}): Promise<StopResult> {
    this.stopPromise ??= this.doStop(options.timeoutMs ?? this.options.shutdownTimeoutMs)
    return this.stopPromise
  }

  /** Groups held by an exhausted message (policy `hold`). */
  heldGroups(): HeldGroup[] {
    return this.held.list()
  }

  /**
   * Releases a held group: writes the held message's tombstone (so the main app moves on) and lets the
   * group's later messages run. The message itself stays in the error topic.
   */
  async releaseHeld(id: string): Promise<ReleaseResult> {
    if (this.currentState !== 'running') return { released: false, reason: 'not-running' }
    const record = this.held.claim(id)
    if (!record) return { released: false, reason: 'not-found' }
    const { entry, scheduler, group } = record
    try {
      await this.processor.release(entry, scheduler.signals.hard)
    } catch (error) {
      this.held.unclaim(id)
      if (isAbortError(error)) return { released: false, reason: 'aborted' }
      throw error
    }
    this.held.remove(id)
    this.logger.info('Held group released by an operator; tombstone written', { id, groupKey: group.groupKey, topic: group.topic, partition: group.partition })
    this.markResolved(entry, scheduler, 'released')
    this.emit('released', group)
    return { released: true, group }
  }

  stats(): RetryWorkerStats {
    const partitions: PartitionStats[] = []
    for (const run of [...this.partitions.values(), ...this.revoking.values()]) {
      const { scheduler } = run
      partitions.push({
        topic: scheduler.topic,
        partition: scheduler.partition,
        buffered: scheduler.buffered,
        phase: scheduler.phase !== 'active' ? 'revoking' : run.phase,
        committedOffset: this.committer.committedOffset(scheduler.topic, scheduler.partition),
        commitOffset: scheduler.commitOffset(),
      })
    }
    return {
      state: this.currentState,
      ready: this.ready,
      instanceId: this.instanceId,
      assignedPartitions: this.partitions.size,
      buffered: this.buffer.buffered,
      inFlight: this.limiter.inUse,
      heldGroups: this.held.size,
      pausedPartitions: this.buffer.pausedPartitions,
      rebalancing: this.watch.rebalancing,
      lastHeartbeat: this.watch.lastHeartbeat?.toISOString(),
      partitions,
    }
  }

  private async doStart(): Promise<void> {
    const o = this.options
    this.currentState = 'starting'
    try {
      for (const topics of o.topicsByRetryTopic.values()) {
        const result = await provisionTopics({
          admin: o.topicAdmin,
          topics,
          create: o.createTopics,
          replicationFactor: o.replicationFactor,
          checkTopicSettings: o.checkTopicSettings,
          logger: this.logger,
        })
        this.logger.info('Detour topics checked', { ...topics, partitions: result.partitions, created: result.created })
      }
      await Promise.all([this.producer.connect(), this.admin.connect(), this.resolution.start()])
      await this.consumer.connect()
      await this.consumer.subscribe({ topics: this.retryTopics, fromBeginning: true })
      await this.consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        eachBatch: async (payload) => this.onBatch(payload),
      })
    } catch (error) {
      this.logger.error('Retry worker failed to start', { error })
      this.currentState = 'failed'
      this.watch.closing = true
      await this.disconnectQuietly()
      throw error
    }
    this.commitLoop = this.runCommitLoop()
    // A crash that kafkajs gave up on may already have failed the worker.
    if (this.currentState === 'starting') this.currentState = 'running'
    this.logger.info('Retry worker started', {
      retryTopics: this.retryTopics,
      instanceId: this.instanceId,
      exhaustedPolicy: o.exhaustedPolicy,
      maxAttempts: o.maxAttempts,
      maxInFlight: o.maxInFlight,
      handlerTimeoutMs: o.handlerTimeoutMs,
    })
    // kafkajs' run() resolves after the first join: announce readiness now if it happened already.
    this.announceReady()
  }

  private announceReady(): void {
    if (!this.ready || this.readyAnnounced) return
    this.readyAnnounced = true
    this.emit('ready')
  }

  private async doStop(timeoutMs: number): Promise<StopResult> {
    if (this.currentState === 'idle') {
      this.currentState = 'stopped'
      return this.finishStop({ clean: true, abandoned: 0 })
    }
    if (this.startPromise) await this.startPromise.catch(() => undefined)
    if (this.currentState === 'failed' && this.commitLoop === undefined) {
      // The start failed: everything is disconnected already.
      this.currentState = 'stopped'
      return this.finishStop({ clean: true, abandoned: 0 })
    }
    this.currentState = 'stopping'
    this.watch.closing = true
    this.buffer.close()
    this.logger.info('Retry worker stopping', { inFlight: this.limiter.inUse, buffered: this.buffer.buffered, timeoutMs })
    let clean = true
    this.soft.abort()
    try {
      this.consumer.pause(this.retryTopics.map((topic) => ({ topic })))
    } catch (error) {
      this.logger.warn('Could not pause the retry consumer', { error })
    }
    const deadline = Date.now() + timeoutMs
    let abandoned = await this.idle(timeoutMs)
    if (abandoned > 0) {
      // Handlers that listen to their signal stop now; a short grace lets them return, so their partition can be released.
      this.attempts.abort()
      abandoned = await this.idle(Math.min(1000, this.options.handlerTimeoutMs))
      if (abandoned > 0) this.logger.warn('Shutdown timeout: abandoning in-flight work (not committed; retried after a restart)', { abandoned, timeoutMs })
    }
    this.hard.abort()
    await this.commitLoop
    // Hand-overs of revoked partitions and purges in progress: bounded by what is left of the timeout.
    await this.background.idle(Math.max(0, deadline - Date.now()))
    if (!(await this.watch.awaitRestart(timeoutMs))) clean = false
    if (!(await this.finalCommit())) clean = false
    if (!(await this.disconnectQuietly())) clean = false
    for (const key of [...this.partitions.keys()]) this.dropPartition(this.partitions, key)
    for (const key of [...this.revoking.keys()]) this.dropPartition(this.revoking, key)
    this.watch.detach()
    this.currentState = 'stopped'
    return this.finishStop({ clean: clean && abandoned === 0, abandoned })
  }

  /** Waits for the work of every partition; returns how much was still running at the timeout. */
  private async idle(timeoutMs: number): Promise<number> {
    const runs = [...this.partitions.values(), ...this.revoking.values()]
    const left = await Promise.all(runs.map(({ scheduler }) => scheduler.work.idle(timeoutMs)))
    return left.reduce((sum, n) => sum + n, 0)
  }

  /**
   * The last commit: each claimed partition up to its lowest unresolved record, `state=released` when its
   * work has settled (the next owner may start at once), `active` otherwise (it waits `handlerTimeoutMs` +
   * 2 s for the abandoned handlers).
   */
  private async finalCommit(): Promise<boolean> {
    const targets: CommitTarget[] = []
    for (const run of this.partitions.values()) {
      const { scheduler } = run
      const offset = scheduler.commitOffset()
      if (!run.claimed || offset === undefined) continue
      targets.push({ topic: scheduler.topic, partition: scheduler.partition, offset, state: scheduler.work.size === 0 ? 'released' : 'active' })
    }
    if (targets.length === 0) return true
    const result = await this.committer.commit(targets)
    if (result.kind === 'committed') {
      for (const { state } of targets) this.metrics.partitionReleases.inc({ outcome: state === 'released' ? 'released' : 'unsettled' })
      this.logger.debug('Committed retry offsets at stop', { offsets: targets })
      this.emit('committed', { offsets: targets })
      return true
    }
    if (result.kind === 'failed') {
      this.metrics.commitFailures.inc()
      this.reportError('Committing retry offsets at stop failed', result.error, { offsets: targets })
    } else {
      this.logger.warn('Retry offsets not committed at stop: the consumer is not running (kafkajs is restarting it)', { offsets: targets })
    }
    return false
  }

  private finishStop(result: StopResult): StopResult {
    this.logger.info('Retry worker stopped', { ...result })
    this.emit('stopped', result)
    return result
  }

  private async disconnectQuietly(): Promise<boolean> {
    let ok = true
    const steps: Array<[string, () => Promise<void>]> = [
      ['consumer', () => this.consumer.disconnect()],
      ['redirect follower', () => this.resolution.stop()],
      ['producer', () => this.producer.disconnect()],
      ['admin client', () => this.admin.disconnect()],
    ]
    for (const [name, step] of steps) {
      try {
        await step()
      } catch (error) {
        ok = false
        this.logger.warn(`Disconnecting the ${name} failed`, { error })
      }
    }
    return ok
  }

  private onBatch(payload: EachBatchPayload): void {
    const { batch } = payload
    if (this.soft.signal.aborted || !payload.isRunning() || payload.isStale()) return
    const run = this.partitions.get(topicPartitionKey(batch.topic, batch.partition))
    if (!run || run.scheduler.phase !== 'active') return
    const { scheduler, topics } = run
    let barrier: Promise<void> | undefined
    let added = 0
    for (const message of batch.messages) {
      if (!scheduler.accepts(message.offset)) continue
      const entry = createRetryEntry(batch.topic, batch.partition, message, topics, this.options.groupId)
      // Taken after this fetch: every redirect record and tombstone written before these records were read is applied first.
      entry.barrier = barrier ??= this.batchBarrier(run)
      if (scheduler.add(entry)) added++
    }
    const last = batch.messages[batch.messages.length - 1]
    if (last) payload.resolveOffset(last.offset)
    this.buffer.added(added)
    this.buffer.afterBatch({ topic: batch.topic, partition: batch.partition }, () => payload.pause())
  }

  /**
   * What the records of a batch wait for before their first attempt: the takeover of the partition, this
   * instance's claim of it, then the redirect follower's barrier.
   */
  private batchBarrier(run: AssignedPartition): Promise<void> {
    const { scheduler, topics } = run
    const barrier = run.takenOver
      .then(() => this.claim(run))
      .then(() => this.resolution.barrier(topics.source, scheduler.partition, scheduler.signals.soft))
    // Entries await it (an abort ends them as stopped); nobody else must see a rejection.
    barrier.catch(() => undefined)
    return barrier
  }

  /**
   * Commits `state=active` for a partition taken over, before its first attempt: until then the committed
   * metadata may name nobody (never committed) or a previous owner that released it, and a third instance
   * getting the partition in a quick second rebalance would start at once while this one's handlers run.
   */
  private claim(run: AssignedPartition): Promise<void> {
    if (run.claimed) return Promise.resolve()
    // Concurrent batches share one claim in progress.
    run.claim ??= this.claimNow(run).finally(() => {
      run.claim = undefined
    })
    return run.claim
  }

  private async claimNow(run: AssignedPartition): Promise<void> {
    const { scheduler } = run
    for (let attempt = 1; ; attempt++) {
      const offset = scheduler.commitOffset()
      if (offset === undefined) return
      if (this.watch.stable) {
        const result = await this.committer.commit([{ topic: scheduler.topic, partition: scheduler.partition, offset, state: 'active' }])
        if (result.kind === 'committed') {
          run.claimed = true
          return
        }
        if (attempt === 1 || attempt % 20 === 0) {
          this.logger.warn('Could not commit the ownership of a newly assigned partition yet; its records wait', {
            topic: scheduler.topic,
            partition: scheduler.partition,
            attempt,
            error: result.kind === 'failed' ? result.error : 'the consumer is not running',
          })
        }
      }
      await sleep(this.options.commitIntervalMs, scheduler.signals.soft)
    }
  }

  private startEntry(entry: RetryEntry, scheduler: PartitionScheduler): void {
    const work = this.processor
      .process(entry, scheduler)
      .then((outcome) => this.onOutcome(entry, scheduler, outcome))
      .catch((error: unknown) => {
        this.reportError('Processing a retry record failed unexpectedly; its group is stuck until a restart', error, {
          topic: entry.retryTopic,
          partition: entry.retryPartition,
          offset: entry.offset,
        })
      })
    scheduler.work.track(work)
  }

  /** Applies an outcome to the scheduler, the held groups and the buffer; only then tells the listeners. */
  private onOutcome(entry: RetryEntry, scheduler: PartitionScheduler, outcome: ProcessOutcome): void {
    if (outcome.kind === 'stopped') return
    if (outcome.kind === 'resolved') {
      this.markResolved(entry, scheduler, outcome.resolution, outcome.deadLetter)
      return
    }
    const envelope = entry.envelope
    if (!envelope || !scheduler.hold(entry)) return
    const group: HeldGroup = {
      id: envelope.id,
      topic: envelope.source.topic,
      partition: envelope.source.partition,
      groupKey: displayGroupKey(envelope.groupKey),
      retryTopic: entry.retryTopic,
      retryPartition: entry.retryPartition,
      retryOffset: entry.offset,
      attempts: entry.attempts,
      since: new Date().toISOString(),
      lastError: describeError(entry.lastError).message.slice(0, 1024),
    }
    this.held.add(group, entry, scheduler)
    // The held group no longer drains: the buffer may already be as low as it gets.
    this.buffer.resumeIfDrained()
    this.emit('dead-lettered', outcome.deadLetter)
    this.emit('held', group)
  }

  private markResolved(entry: RetryEntry, scheduler: PartitionScheduler, kind: ResolutionKind, deadLetter?: DeadLetteredEvent): void {
    if (!scheduler.resolve(entry)) return
    this.buffer.removed(1)
    if (deadLetter) this.emit('dead-lettered', deadLetter)
    this.emitLazy('resolved', () => [
      { kind, id: entry.envelope?.id, retryTopic: entry.retryTopic, retryPartition: entry.retryPartition, retryOffset: entry.offset, attempts: entry.attempts },
    ])
  }

  private onGroupJoin(memberAssignment: IMemberAssignment): void {
    if (this.currentState === 'stopped') {
      this.logger.warn('The retry consumer joined its group after the worker stopped (kafkajs finished a restart late); exit the process to leave the group')
      return
    }
    const next = new Set<string>()
    const assigned: TopicPartition[] = []
    for (const [topic, partitions] of Object.entries(memberAssignment)) {
      const topics = this.options.topicsByRetryTopic.get(topic)
      if (!topics) continue
      for (const partition of partitions) {
        const key = topicPartitionKey(topic, partition)
        next.add(key)
        if (!this.partitions.has(key)) assigned.push({ topic, partition })
      }
    }
    const revoked: TopicPartition[] = []
    for (const [key, run] of [...this.partitions]) {
      if (next.has(key)) continue
      revoked.push(parseTopicPartitionKey(key))
      this.revokePartition(key, run)
    }
    if (assigned.length > 0) {
      try {
        this.consumer.pause(assigned.map(({ topic, partition }) => ({ topic, partitions: [partition] })))
      } catch (error) {
        this.reportError('Could not pause newly assigned retry partitions for their inspection', error)
      }
    }
    for (const { topic, partition } of assigned) this.assignPartition(topic, partition)
    // kafkajs skips commits while its runner restarts: commit the kept partitions again in the new generation.
    this.committer.forgetAll()
    this.buffer.reapply()
    if (this.soft.signal.aborted) this.pauseAll()
    this.logger.info('Retry consumer joined its group', { assigned, revoked, partitions: next.size })
    this.emit('rebalanced', { assigned, revoked })
    this.announceReady()
  }

  private pauseAll(): void {
    try {
      this.consumer.pause(this.retryTopics.map((topic) => ({ topic })))
    } catch (error) {
      this.reportError('Could not pause the retry consumer again after it joined its group', error)
    }
  }

  private assignPartition(topic: string, partition: number): void {
    const topics = this.options.topicsByRetryTopic.get(topic)
    if (!topics) return
    const key = topicPartitionKey(topic, partition)
    // Assigned back before its hand-over finished: the handlers still running there settle first.
    const previous = this.revoking.get(key)
    const settled = previous ? previous.scheduler.work.idle(this.options.handlerTimeoutMs) : Promise.resolve(0)
    const scheduler = new PartitionScheduler(topic, partition, { start: (entry, s) => this.startEntry(entry, s) }, {
      soft: this.soft.signal,
      attempts: this.attempts.signal,
      hard: this.hard.signal,
    })
    const inspected = this.inspect(key, topic, topics.source, partition)
    const takenOver = Promise.all([settled, inspected])
      .then(() => this.takeover.whenFree(topic, partition, scheduler.signals.soft))
      .then((result) => {
        run.phase = 'active'
        if (!result.waited) return
        this.metrics.takeoverWaits.inc({ outcome: result.outcome })
        this.metrics.takeoverWait.observe(result.waitedMs / 1000)
        this.logger.info(result.outcome === 'released' ? 'The previous owner released the partition; starting' : "Starting without the previous owner's release", {
          topic,
          partition,
          previousOwner: result.previousOwner,
          waitedMs: result.waitedMs,
        })
        this.emit('taken-over', { topic, partition, outcome: result.outcome, previousOwner: result.previousOwner, waitedMs: result.waitedMs })
      })
    takenOver.catch(() => undefined)
    const run: AssignedPartition = { scheduler, topics, takenOver, phase: 'waiting', claim: undefined, claimed: false }
    this.partitions.set(key, run)
  }

  /**
   * A newly assigned partition stays paused (from its `GROUP_JOIN`, before kafkajs' first fetch) until its
   * committed offset was compared with the log start offset: a committed offset below it means records
   * were deleted before they were retried. kafkajs would otherwise meet OFFSET_OUT_OF_RANGE first and
   * commit "earliest" over the evidence. Then it fetches: its records are buffered while the takeover waits.
   */
  private async inspect(key: string, topic: string, source: string, partition: number): Promise<void> {
    try {
      const committed = (await this.workerAdmin.committedOffsets(topic)).get(partition)?.offset
      await this.retention.checkAssigned(topic, source, new Map([[partition, committed]]))
    } catch (error) {
      this.logger.warn('Cannot read the committed offset of a newly assigned partition; records deleted unread would go unnoticed', { topic, partition, error })
    } finally {
      if (this.partitions.has(key) && !this.soft.signal.aborted && !this.buffer.isPaused(topic, partition)) {
        try {
          this.consumer.resume([{ topic, partitions: [partition] }])
        } catch (error) {
          this.reportError('Could not resume a newly assigned retry partition', error, { topic, partition })
        }
      }
    }
  }

  /**
   * A partition was taken away. No attempt starts there any more and its running handlers are asked to
   * stop; once they settled (at most `handlerTimeoutMs`), its offset is committed with `state=released`
   * (best effort) so that the new owner starts at once. Their results still count: a handler that succeeds
   * meanwhile gets its tombstone written, and the new owner's barrier sees it.
   */
  private revokePartition(key: string, run: AssignedPartition): void {
    const { scheduler } = run
    this.partitions.delete(key)
    this.revoking.set(key, run)
    scheduler.revoke()
    this.held.removePartition(scheduler)
    this.buffer.forget(scheduler.topic, scheduler.partition)
    const handOver = (async () => {
      const left = await scheduler.work.idle(this.options.handlerTimeoutMs)
      const offset = scheduler.commitOffset()
      if (this.revoking.get(key) === run) this.dropPartition(this.revoking, key)
      // Assigned back here meanwhile: the new assignment owns the partition's commits and metadata now.
      if (this.partitions.has(key)) return
      try {
        if (run.claimed && offset !== undefined) await this.release(scheduler.topic, scheduler.partition, offset, left)
      } finally {
        if (!this.partitions.has(key)) {
          this.committer.forget(scheduler.topic, scheduler.partition)
          this.retention.forget(scheduler.topic, scheduler.partition)
        }
      }
    })()
    this.background.track(handOver.catch((error: unknown) => this.reportError('Handing over a revoked partition failed', error)))
  }

  /**
   * Commits `state=released` for a revoked partition whose handlers all settled (`running` = 0), so that its
   * new owner starts at once. Otherwise nothing is committed: the new owner waits for its own timeout.
   */
  private async release(topic: string, partition: number, offset: string, running: number): Promise<void> {
    if (running > 0) {
      this.metrics.partitionReleases.inc({ outcome: 'unsettled' })
      this.logger.warn('Handlers of a revoked partition did not settle within handlerTimeoutMs; not releasing it (the new owner waits for its own timeout)', {
        topic,
        partition,
        running,
      })
      return
    }
    const target: CommitTarget = { topic, partition, offset, state: 'released' }
    const result = await this.committer.commit([target])
    if (result.kind === 'committed') {
      this.metrics.partitionReleases.inc({ outcome: 'released' })
      this.logger.info('Revoked partition released', { ...target })
      this.emit('committed', { offsets: [target] })
      return
    }
    this.metrics.partitionReleases.inc({ outcome: 'unsettled' })
    this.logger.warn('Could not commit the release of a revoked partition (the new owner waits for its own timeout)', {
      ...target,
      error: result.kind === 'failed' ? result.error : 'the consumer is not running',
    })
  }

  /** Forgets a partition: queued work is abandoned, in-flight work ends without resolving or committing. */
  private dropPartition(from: Map<string, AssignedPartition>, key: string): void {
    const run = from.get(key)
    if (!run) return
    from.delete(key)
    const { scheduler } = run
    const left = scheduler.drop().length
    this.held.removePartition(scheduler)
    this.buffer.forget(scheduler.topic, scheduler.partition)
    this.buffer.removed(left)
  }

  private onCrash(error: Error, restart: boolean): void {
    this.readyAnnounced = false
    if (restart) return
    if (this.currentState === 'stopping' || this.currentState === 'stopped') return
    this.currentState = 'failed'
    this.logger.error('Retry consumer crashed and will not restart; stop the worker', { error })
    this.emit('crash', error)
  }

  private async runCommitLoop(): Promise<void> {
    // Goes on while a stop drains (resolved work is committed meanwhile); the stop's final commit follows.
    const signal = this.hard.signal
    while (!signal.aborted) {
      try {
        await sleep(this.options.commitIntervalMs, signal)
      } catch {
        return
      }
      await this.commit()
    }
  }

  /** Commits each claimed, active partition up to its lowest unresolved offset; then purges what is resolved. */
  private async commit(): Promise<void> {
    // The coordinator refuses commits while the group rebalances; the next tick after the join commits.
    if (!this.watch.stable) return
    const candidates: CommitTarget[] = []
    const runs = new Map<string, AssignedPartition>()
    for (const [key, run] of this.partitions) {
      const offset = run.scheduler.commitOffset()
      if (!run.claimed || run.scheduler.phase !== 'active' || offset === undefined) continue
      candidates.push({ topic: run.scheduler.topic, partition: run.scheduler.partition, offset, state: 'active' })
      runs.set(key, run)
    }
    const targets = this.committer.changed(candidates)
    if (targets.length === 0) return
    const result = await this.committer.commit(targets)
    if (result.kind === 'failed') {
      this.metrics.commitFailures.inc()
      if (isRebalanceError(result.error)) {
        // A rebalance began after the check above: expected, not a failure worth an `error` event.
        this.logger.info('Retry offsets not committed: the group is rebalancing; retrying after it joined', { offsets: targets })
        return
      }
      this.reportError('Committing retry offsets failed; retrying at the next interval', result.error, { offsets: targets })
      return
    }
    if (result.kind === 'not-running') {
      this.logger.debug('Retry offsets not committed: the consumer is not running (kafkajs is restarting it)', { offsets: targets })
      return
    }
    this.logger.debug('Committed retry offsets', { offsets: targets })
    this.emit('committed', { offsets: targets })
    for (const target of targets) {
      const run = runs.get(topicPartitionKey(target.topic, target.partition))
      if (!run) continue
      this.background.track(this.retention.purge(target.topic, run.topics.source, target.partition, target.offset))
    }
  }

  private onHandOffFailure(failure: HandOffFailure): void {
    this.metrics.handOffFailures.inc({ target: failure.target })
    this.emitLazy('error', () => [
      new DetourHandOffError(failure.topic, `Writing a ${failure.target} to ${failure.topic} failed (attempt ${failure.attempt}); retrying`, failure.error),
    ])
  }

  /** Logs a background failure and reports it to `error` listeners (never an unhandled rejection). */
  private reportError(message: string, error: unknown, fields: LogFields = {}): void {
    this.logger.error(message, { ...fields, error })
    this.emitLazy('error', () => [error instanceof Error ? error : new Error(String(error))])
  }
}

/** Creates a retry worker (validates the options now; call `start()` to run it). */
export function createRetryWorker(options: RetryWorkerOptions): RetryWorker {
  return new RetryWorker(options)
}


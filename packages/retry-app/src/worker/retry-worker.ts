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
  buildBarrierRecord,
  createFollowerMetrics,
  describeError,
  displayGroupKey,
  provisionTopics,
  type LifecycleState,
  type LogFields,
  type Logger,
  type StopResult,
  type TopicPartition,
} from '@detour/core'
import { RetryMetrics } from '../metrics/retry-metrics.js'
import { isAbortError, withinTime } from './abort.js'
import { BufferGate } from './buffer-gate.js'
import { CommitLoop } from './commit-loop.js'
import { ConcurrencyLimiter } from './concurrency-limiter.js'
import { ConsumerWatch, type JoinInfo } from './consumer-watch.js'
import { HandOffWriter, type HandOffFailure } from './hand-off-writer.js'
import { HeldGroups } from './held-groups.js'
import { OffsetCommitter } from './offset-committer.js'
import { PartitionAssignments } from './partition-assignments.js'
import type { PartitionScheduler } from './partition-scheduler.js'
import { Resolution } from './resolution.js'
import { RetryRetention } from './retention.js'
import type { RetryEntry } from './retry-entry.js'
import { RetryProcessor, type ProcessOutcome } from './retry-processor.js'
import { resolveOptions, type ResolvedRetryWorkerOptions, type RetryWorkerOptions } from './retry-worker-options.js'
import { Takeover } from './takeover.js'
import type { DeadLetteredEvent, HeldGroup, ReleaseResult, ResolutionKind, RetryWorkerEvents, RetryWorkerStats, StopOptions } from './types.js'
import { kafkaWorkerAdmin } from './worker-admin.js'
import { WorkTracker } from './work-tracker.js'

/** The kafkajs clients of a worker. */
interface Clients {
  readonly consumer: Consumer
  readonly producer: Producer
  readonly admin: Admin
}

/**
 * The retry worker: consumes the retry topics of a main app's consumer group, runs the main app's
 * handler again with backoff, keeps per-group order within each retry partition, and releases each
 * resolved id with a tombstone on the redirect topic.
 *
 * It orchestrates single-purpose parts, each behind a narrow interface and unit-tested with stand-ins:
 * the {@link ConsumerWatch} (rebalancing, kafkajs restarts), the {@link PartitionAssignments} (takeover,
 * claim and hand-over of partitions, their {@link PartitionScheduler}s), durable {@link Resolution} (a
 * redirect follower and its store), the {@link RetryProcessor} (attempts), the {@link CommitLoop} over the
 * {@link OffsetCommitter}, the {@link BufferGate} (memory bound) and the {@link RetryRetention} (purging).
 * Its own state is one {@link LifecycleState}; events are emitted once the parts agree.
 *
 * `eachBatch` only hands records to the partition schedulers and returns; the work (handlers, backoff
 * timers, writes) runs in the background, so a long backoff never blocks heartbeats or other groups.
 */
export class RetryWorker extends SafeEmitter<RetryWorkerEvents> {
  readonly options: ResolvedRetryWorkerOptions
  /** The Prometheus registry holding the worker's metrics. */
  readonly registry: Registry
  /** Random per worker instance: named in the offset metadata of its commits (`detour:owner=<instanceId>;…`). */
  readonly instanceId: string
  private readonly logger: Logger
  private readonly metrics: RetryMetrics
  private readonly clients: Clients
  private readonly watch: ConsumerWatch
  private readonly resolution: Resolution
  private readonly assignments: PartitionAssignments
  private readonly commits: CommitLoop
  private readonly buffer: BufferGate
  private readonly held: HeldGroups
  private readonly processor: RetryProcessor
  /** Hand-overs of revoked partitions and purges, running in the background. */
  private readonly background = new WorkTracker()
  /** Worker-wide signals (each partition follows them): no new attempts / abort handlers / abandon writes. */
  private readonly stopping = { soft: new AbortController(), attempts: new AbortController(), hard: new AbortController() }
  private currentState: LifecycleState = 'idle'
  /** The `ready` event was emitted since the consumer last joined. */
  private readyAnnounced = false
  private startPromise: Promise<void> | undefined
  private stopPromise: Promise<StopResult> | undefined

  constructor(options: RetryWorkerOptions) {
    const o = resolveOptions(options)
    const logger = childLogger(o.logger, 'detour.retry-worker', { groupId: o.groupId, workerGroupId: o.workerGroupId })
    super((error, event) => logger.error(`A listener of the "${event}" event threw`, { error }))
    this.options = o
    this.logger = logger
    this.instanceId = randomBytes(8).toString('hex')
    this.registry = o.registry
    this.metrics = new RetryMetrics(o.registry)
    for (const deprecation of o.deprecations) this.logger.warn(deprecation)
    const signals = { soft: this.stopping.soft.signal, attempts: this.stopping.attempts.signal, hard: this.stopping.hard.signal }
    setMaxListeners(0, signals.soft, signals.attempts, signals.hard)
    const consumer = o.kafka.consumer({
      allowAutoTopicCreation: false,
      ...o.consumerConfig,
      groupId: o.workerGroupId,
      // `{ retries: 5 }` is what kafkajs uses when a consumer has no retry settings of its own.
      retry: { ...(o.consumerConfig.retry ?? { retries: 5 }), restartOnFailure: (error) => this.watch.restartOnFailure(o.consumerConfig.retry?.restartOnFailure)(error) },
    })
    this.clients = {
      consumer,
      producer: o.kafka.producer({
        allowAutoTopicCreation: false,
        createPartitioner: Partitioners.DefaultPartitioner,
        ...o.producerConfig,
        // A tombstone kafkajs retries late must not land after a later record (of this worker or of anyone).
        idempotent: true,
        maxInFlightRequests: 1,
      }),
      admin: o.kafka.admin(),
    }
    const admin = kafkaWorkerAdmin(this.clients.admin, o.workerGroupId)
    this.watch = new ConsumerWatch(
      consumer,
      {
        onJoin: (assignment, info) => this.onGroupJoin(assignment, info),
        onCrash: (error, restart) => this.onCrash(error, restart),
        onLost: (reason) => this.onMembershipLost(reason),
        onStuck: (silentMs) => this.onConsumerStuck(silentMs),
      },
      logger,
      // The heartbeat lease: no successful heartbeat for a session means the coordinator evicted this member.
      // Lost and silent for a session plus a rebalance: kafkajs is hung.
      { sessionTimeoutMs: o.consumerConfig.sessionTimeout, rebalanceTimeoutMs: o.consumerConfig.rebalanceTimeout },
    )
    const store = new GroupStore()
    this.resolution = new Resolution({
      follower: new RedirectFollower({
        kafka: o.kafka,
        consumerGroup: o.groupId,
        topics: o.topicsByRetryTopic.values(),
        store,
        groupIdPrefix: `${o.workerGroupId}-follower`,
        consumerConfig: o.followerConfig,
        metrics: createFollowerMetrics(o.registry),
        logger: childLogger(logger, 'follower'),
        onError: (error) => this.reportError('The redirect follower failed; it is restarted', error),
        onProgress: (source, partition, position) => this.resolution.progressed(source, partition, position),
      }),
      store,
      writeBarrier: async (sourceTopic, partition) => {
        const topics = [...o.topicsByRetryTopic.values()].find((t) => t.source === sourceTopic)
        if (!topics) throw new Error(`${sourceTopic} is not a source topic of this worker`)
        const [metadata] = await this.clients.producer.send({ topic: topics.redirect, acks: -1, messages: [buildBarrierRecord(partition, o.groupId)] })
        if (metadata?.baseOffset === undefined) throw new Error(`No offset for the barrier record of ${topics.redirect}/${partition}`)
        return BigInt(metadata.baseOffset)
      },
      logger,
    })
    const committer = new OffsetCommitter(
      { commitOffsets: (offsets) => consumer.commitOffsets(offsets), onCommitted: (listener) => consumer.on(consumer.events.COMMIT_OFFSETS, listener) },
      this.instanceId,
      logger,
    )
    const retention = new RetryRetention({
      admin,
      purge: o.purgeResolvedRecords,
      intervalMs: o.purgeIntervalMs,
      logger,
      metrics: {
        purged: (topic) => this.metrics.purges.inc({ topic }),
        purgeFailed: (topic) => this.metrics.purgeFailures.inc({ topic }),
        deletedUnread: (topic, records) => this.metrics.deletedUnread.inc({ topic }, Number(records)),
      },
      // Logged by the retention already: only listeners are told.
      onDeletedUnread: (error) => this.emitLazy('error', () => [error]),
    })
    this.held = new HeldGroups((delta) => this.metrics.heldGroups.inc(delta))
    const fetch = {
      pause: (partitions: readonly TopicPartition[]) => consumer.pause(partitions.map(({ topic, partition }) => ({ topic, partitions: [partition] }))),
      resume: (partitions: readonly TopicPartition[]) => consumer.resume(partitions.map(({ topic, partition }) => ({ topic, partitions: [partition] }))),
    }
    this.buffer = new BufferGate({
      max: o.maxBufferedMessages,
      control: fetch,
      blocked: () => this.assignments.all().reduce((sum, { scheduler }) => sum + scheduler.blocked, 0),
      heldGroups: () => this.held.size,
      onBufferedChange: (delta) => this.metrics.buffered.inc(delta),
      logger,
      onError: (message, error) => this.reportError(message, error),
    })
    const consumerStable = (): boolean => this.watch.stable
    this.assignments = new PartitionAssignments({
      topicsByRetryTopic: o.topicsByRetryTopic,
      groupId: o.groupId,
      instanceId: this.instanceId,
      handlerTimeoutMs: o.handlerTimeoutMs,
      commitIntervalMs: o.commitIntervalMs,
      signals,
      fetch,
      consumerStable,
      takeover: new Takeover({ admin, instanceId: this.instanceId, handlerTimeoutMs: o.handlerTimeoutMs, logger }),
      committer,
      committedOffsets: (topic) => admin.committedOffsets(topic),
      retention,
      resolution: this.resolution,
      buffer: this.buffer,
      held: this.held,
      background: this.background,
      metrics: this.metrics,
      logger,
      start: (entry, scheduler) => this.startEntry(entry, scheduler),
      onTakenOver: (event) => this.emit('taken-over', event),
      onReleased: (target) => this.emit('committed', { offsets: [target] }),
      reportError: (message, error, fields) => this.reportError(message, error, fields),
    })
    this.commits = new CommitLoop({
      intervalMs: o.commitIntervalMs,
      committer,
      retention,
      claimed: () => this.assignments.claimed(),
      consumerStable,
      background: this.background,
      metrics: this.metrics,
      logger,
      onCommitted: (event) => this.emit('committed', event),
      reportError: (message, error, fields) => this.reportError(message, error, fields),
    })
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
        limiter: new ConcurrencyLimiter(o.maxInFlight),
        writer: new HandOffWriter(this.clients.producer, o.handOffBackoff, logger, (failure) => this.onHandOffFailure(failure)),
        // No attempt starts while the consumer group rebalances (ownership is in flux).
        gate: { whenOpen: (_entry, signal) => this.watch.whenStable(signal), isOpen: consumerStable },
        resolution: this.resolution,
        metrics: this.metrics,
        logger,
      },
    )
  }

  get state(): LifecycleState {
    return this.currentState
  }

  /** True once the consumer joined its group and consumes; false before, after a crash, and while stopping. */
  get ready(): boolean {
    return this.currentState === 'running' && this.watch.joined && !this.watch.lost && this.stopPromise === undefined
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
   * settled — and disconnects. Bounded: returns within `timeoutMs` + min(1 s, `handlerTimeoutMs`) +
   * `closeTimeoutMs` whatever hangs (then `{ clean: false, timedOut: true }`). Idempotent: later calls
   * return the first call's result.
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
      // Tracked as the partition's work: a revocation or a stop waits for the tombstone write.
      await this.processor.release(entry, scheduler)
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
    return {
      state: this.currentState,
      ready: this.ready,
      instanceId: this.instanceId,
      assignedPartitions: this.assignments.size,
      buffered: this.buffer.buffered,
      inFlight: this.processor.inFlight,
      heldGroups: this.held.size,
      pausedPartitions: this.buffer.pausedPartitions,
      rebalancing: this.watch.rebalancing,
      lastHeartbeat: this.watch.lastHeartbeat?.toISOString(),
      partitions: this.assignments.all().map((run) => ({
        topic: run.scheduler.topic,
        partition: run.scheduler.partition,
        buffered: run.scheduler.buffered,
        phase: run.scheduler.phase !== 'active' ? 'revoking' : run.phase,
        committedOffset: this.commits.committedOffset(run.scheduler.topic, run.scheduler.partition),
        commitOffset: run.scheduler.commitOffset(),
      })),
    }
  }

  private async doStart(): Promise<void> {
    const o = this.options
    const { consumer, producer, admin } = this.clients
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
      await Promise.all([producer.connect(), admin.connect(), this.resolution.start()])
      await consumer.connect()
      await consumer.subscribe({ topics: this.retryTopics, fromBeginning: true })
      await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: async (payload) => this.onBatch(payload) })
    } catch (error) {
      this.logger.error('Retry worker failed to start', { error })
      this.currentState = 'failed'
      this.watch.closing = true
      await this.disconnectQuietly()
      throw error
    }
    // Goes on while a stop drains (resolved work is committed meanwhile); the stop's final commit follows.
    this.commits.start(this.stopping.hard.signal)
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
    if (this.currentState === 'failed' && !this.commits.started) {
      // The start failed: everything is disconnected already.
      this.currentState = 'stopped'
      return this.finishStop({ clean: true, abandoned: 0 })
    }
    this.currentState = 'stopping'
    this.watch.closing = true
    this.buffer.close()
    this.logger.info('Retry worker stopping', { inFlight: this.processor.inFlight, buffered: this.buffer.buffered, timeoutMs })
    let clean = true
    this.stopping.soft.abort()
    try {
      this.clients.consumer.pause(this.retryTopics.map((topic) => ({ topic })))
    } catch (error) {
      this.logger.warn('Could not pause the retry consumer', { error })
    }
    const deadline = Date.now() + timeoutMs
    // The whole stop is bounded: drain, grace, then closeTimeoutMs for the rest (see the option).
    const closeBy = deadline + Math.min(1000, this.options.handlerTimeoutMs) + this.options.closeTimeoutMs
    let timedOut = false
    const bounded = async <T>(name: string, step: Promise<T>): Promise<T | undefined> => {
      const outcome = await withinTime(step, closeBy - Date.now())
      if (outcome.done) return outcome.value
      timedOut = true
      this.logger.warn(`Stop: ${name} did not end within the stop's bound; going on without it (exit the process)`, {
        shutdownTimeoutMs: timeoutMs,
        closeTimeoutMs: this.options.closeTimeoutMs,
      })
      return undefined
    }
    let abandoned = await this.idle(timeoutMs)
    if (abandoned > 0) {
      // Handlers that listen to their signal stop now; a short grace lets them return, so their partition can be released.
      this.stopping.attempts.abort()
      abandoned = await this.idle(Math.min(1000, this.options.handlerTimeoutMs))
      if (abandoned > 0) this.logger.warn('Shutdown timeout: abandoning in-flight work (not committed; retried after a restart)', { abandoned, timeoutMs })
    }
    this.stopping.hard.abort()
    await bounded('the commit loop', this.commits.stopped())
    // Hand-overs of revoked partitions and purges in progress: bounded by what is left of the timeout.
    await this.background.idle(Math.max(0, Math.min(deadline, closeBy) - Date.now()))
    if (!(await bounded('the restarting consumer', this.watch.awaitRestart(Math.max(0, Math.min(timeoutMs, closeBy - Date.now())))))) clean = false
    if (!(await bounded('the last commit', this.commits.final()))) clean = false
    if (!(await bounded('the disconnect', this.disconnectQuietly()))) clean = false
    if (timedOut) {
      // Whatever still runs is abandoned (a handler that ignored its signal, a write): aborted, not committed.
      this.stopping.attempts.abort()
      abandoned = Math.max(abandoned, this.assignments.all().reduce((sum, { scheduler }) => sum + scheduler.work.size, 0))
    }
    this.assignments.dropAll()
    this.watch.detach()
    this.currentState = 'stopped'
    return this.finishStop(timedOut ? { clean: false, abandoned, timedOut: true } : { clean: clean && abandoned === 0, abandoned })
  }

  /** Waits for the work of every partition; returns how much was still running at the timeout. */
  private async idle(timeoutMs: number): Promise<number> {
    const left = await Promise.all(this.assignments.all().map(({ scheduler }) => scheduler.work.idle(timeoutMs)))
    return left.reduce((sum, n) => sum + n, 0)
  }

  private finishStop(result: StopResult): StopResult {
    this.logger.info('Retry worker stopped', { ...result })
    this.emit('stopped', result)
    return result
  }

  private async disconnectQuietly(): Promise<boolean> {
    let ok = true
    const steps: Array<[string, () => Promise<void>]> = [
      ['consumer', () => this.clients.consumer.disconnect()],
      ['redirect follower', () => this.resolution.stop()],
      ['producer', () => this.clients.producer.disconnect()],
      ['admin client', () => this.clients.admin.disconnect()],
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
    if (this.stopping.soft.signal.aborted || !payload.isRunning() || payload.isStale()) return
    const added = this.assignments.accept(batch.topic, batch.partition, batch.messages)
    const last = batch.messages[batch.messages.length - 1]
    if (last) payload.resolveOffset(last.offset)
    this.buffer.added(added)
    this.buffer.afterBatch({ topic: batch.topic, partition: batch.partition }, () => payload.pause())
  }

  private startEntry(entry: RetryEntry, scheduler: PartitionScheduler): void {
    const work = this.processor
      .process(entry, scheduler)
      .then((outcome) => this.onOutcome(entry, scheduler, outcome))
      .catch((error: unknown) => {
        const fields = { topic: entry.retryTopic, partition: entry.retryPartition, offset: entry.offset }
        // Revoked or stopping: whatever failed meanwhile is the end of this partition's work here, not a
        // failure to report (one per buffered entry would flood the error listeners at each revocation).
        if (isAbortError(error) || scheduler.signals.soft.aborted) {
          this.logger.debug('Work on a retry record ended with its partition (revoked or stopping)', { ...fields, error })
          return
        }
        this.reportError('Processing a retry record failed unexpectedly; its group is stuck until a restart', error, fields)
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

  private onGroupJoin(memberAssignment: IMemberAssignment, info: JoinInfo): void {
    if (this.currentState === 'stopped') {
      this.logger.warn('The retry consumer joined its group after the worker stopped (kafkajs finished a restart late); exit the process to leave the group')
      return
    }
    // A regained membership takes every kept partition over again (takeover, claim, barrier). Not while
    // stopping: no attempt starts any more, and the stop's last commit covers what the old work resolved.
    const regained = info.regained && !this.stopping.soft.signal.aborted
    if (regained) this.logger.warn('The retry consumer regained its group membership; every partition it keeps is taken over again')
    const { assigned, revoked } = this.assignments.onJoin(memberAssignment, { regained })
    // kafkajs skips commits while its runner restarts: commit the kept partitions again in the new generation.
    this.commits.forgetCommitted()
    this.buffer.reapply()
    if (this.stopping.soft.signal.aborted) {
      try {
        this.clients.consumer.pause(this.retryTopics.map((topic) => ({ topic })))
      } catch (error) {
        this.reportError('Could not pause the retry consumer again after it joined its group', error)
      }
    }
    this.logger.info('Retry consumer joined its group', { assigned, revoked, partitions: this.assignments.size })
    this.emit('rebalanced', { assigned, revoked })
    this.announceReady()
  }

  /** The membership is lost (a crash, the heartbeat lease ran out): the partitions' work stops at once. */
  private onMembershipLost(reason: 'crash' | 'heartbeat-lease'): void {
    this.readyAnnounced = false
    const stopped = this.assignments.lose()
    if (stopped.length > 0) this.logger.warn('Group membership lost; the work of every assigned partition stops until the group is joined again', { reason, partitions: stopped })
  }

  /**
   * kafkajs lost the membership and went silent (no rejoin, no crash): it will not recover by itself. The
   * worker fails as after a crash without restart (`crash` event; the CLI stops and exits 1), so that the
   * process is restarted instead of holding its retry partitions' work forever.
   */
  private onConsumerStuck(silentMs: number): void {
    this.onCrash(new DetourError(`The retry consumer lost its group membership and showed no sign of life for ${silentMs} ms (kafkajs is hung); restart the worker`, ErrorCodes.NOT_RUNNING), false)
  }

  private onCrash(error: Error, restart: boolean): void {
    this.readyAnnounced = false
    if (restart) return
    if (this.currentState === 'stopping' || this.currentState === 'stopped') return
    this.currentState = 'failed'
    this.logger.error('Retry consumer crashed and will not restart; stop the worker', { error })
    this.emit('crash', error)
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

import { EventEmitter, setMaxListeners } from 'node:events'
import { setTimeout as delay } from 'node:timers/promises'
import { Partitioners, type Consumer, type EachBatchPayload, type IMemberAssignment, type Producer } from 'kafkajs'
import { LRUCache } from 'lru-cache'
import type { Registry } from 'prom-client'
import {
  DetourError,
  DetourHandOffError,
  ErrorCodes,
  childLogger,
  describeError,
  displayGroupKey,
  provisionTopics,
  type LogFields,
  type Logger,
} from '@detour/core'
import { RetryMetrics } from '../metrics/retry-metrics.js'
import { isAbortError, sleep } from './abort.js'
import { ConcurrencyLimiter } from './concurrency-limiter.js'
import { HandOffWriter, type HandOffFailure } from './hand-off-writer.js'
import { HeldGroups } from './held-groups.js'
import { PartitionScheduler } from './partition-scheduler.js'
import { createRetryEntry, type RetryEntry } from './retry-entry.js'
import { RetryProcessor, type ProcessOutcome } from './retry-processor.js'
import { resolveOptions, type ResolvedRetryWorkerOptions, type RetryWorkerOptions } from './retry-worker-options.js'
import type {
  HeldGroup,
  ReleaseResult,
  ResolutionKind,
  RetryWorkerEvents,
  RetryWorkerStats,
  StopOptions,
  StopResult,
  WorkerState,
} from './types.js'

function partitionKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`
}

/**
 * The retry worker: consumes the retry topics of a main app's consumer group, runs the main app's
 * handler again with backoff, keeps per-group order within each retry partition, and releases each
 * resolved id with a tombstone on the redirect topic.
 *
 * `eachBatch` only hands records to the partition schedulers and returns; the work (handlers, backoff
 * timers, writes) runs in the background, so a long backoff never blocks heartbeats or other groups.
 * Offsets are committed on a timer, each partition up to its lowest unresolved record.
 */
export class RetryWorker extends EventEmitter<RetryWorkerEvents> {
  readonly options: ResolvedRetryWorkerOptions
  /** The Prometheus registry holding the worker's metrics. */
  readonly registry: Registry
  private readonly logger: Logger
  private readonly metrics: RetryMetrics
  private readonly consumer: Consumer
  private readonly producer: Producer
  private readonly limiter: ConcurrencyLimiter
  private readonly completed: LRUCache<string, true>
  private readonly held: HeldGroups
  private readonly processor: RetryProcessor
  private readonly partitions = new Map<string, PartitionScheduler>()
  /** Partitions this worker paused because the buffer was full. */
  private readonly pausedForBuffer = new Map<string, { topic: string; partition: number }>()
  private readonly work = new Set<Promise<void>>()
  /** Aborted at the start of `stop()`: no new attempts. */
  private readonly soft = new AbortController()
  /** Aborted when the shutdown timeout expires: abandon everything. */
  private readonly hard = new AbortController()
  private readonly commitStop = new AbortController()
  private assignment: Set<string> | undefined
  private currentState: WorkerState = 'idle'
  private joined = false
  /** Set when the worker disconnects its clients (stop, failed start): kafkajs must not restart the consumer. */
  private closing = false
  /** kafkajs is restarting the crashed consumer: set by CRASH (restart), cleared by GROUP_JOIN or a final CRASH. */
  private restarting = false
  private readonly restartSettled = new Set<() => void>()
  private bufferedTotal = 0
  /** The "buffer full of held groups" warning was logged (reset once it no longer applies). */
  private warnedHeldFull = false
  private commitLoop: Promise<void> | undefined
  private startPromise: Promise<void> | undefined
  private stopPromise: Promise<StopResult> | undefined

  constructor(options: RetryWorkerOptions) {
    super()
    this.options = resolveOptions(options)
    const o = this.options
    this.registry = o.registry
    this.logger = childLogger(o.logger, 'detour.retry-worker', { groupId: o.groupId })
    this.metrics = new RetryMetrics(o.registry)
    const retry = o.consumerConfig.retry
    const userRestart = retry?.restartOnFailure
    // kafkajs restarts a crashed consumer on a timer, even one whose disconnect() already ran: once the worker
    // shuts down, a restart would bring back a group member (holding partitions, keeping the process alive)
    // that nobody stops.
    const restartOnFailure = async (error: Error): Promise<boolean> => !this.closing && (userRestart ? await userRestart(error) : true)
    this.consumer = o.kafka.consumer({
      allowAutoTopicCreation: false,
      ...o.consumerConfig,
      groupId: o.groupId,
      // `{ retries: 5 }` is what kafkajs uses when a consumer has no retry settings of its own.
      retry: retry ? { ...retry, restartOnFailure } : { retries: 5, restartOnFailure },
    })
    this.producer = o.kafka.producer({
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
      ...o.producerConfig,
    })
    // Each partition scheduler listens to these: one listener per assigned partition.
    setMaxListeners(0, this.soft.signal, this.hard.signal)
    this.limiter = new ConcurrencyLimiter(o.maxInFlight)
    this.completed = new LRUCache<string, true>({ max: o.completedIdCacheSize })
    this.held = new HeldGroups((delta) => this.metrics.heldGroups.inc(delta))
    const writer = new HandOffWriter(this.producer, o.handOffBackoff, this.logger, (failure) => this.onHandOffFailure(failure))
    this.processor = new RetryProcessor(
      {
        handler: o.handler,
        classify: o.classify,
        backoff: o.backoff,
        maxAttempts: o.maxAttempts,
        maxRetryDurationMs: o.maxRetryDurationMs,
        exhaustedPolicy: o.exhaustedPolicy,
        consumerGroup: o.consumerGroup,
      },
      this.limiter,
      writer,
      this.completed,
      this.metrics,
      this.logger,
    )
    this.consumer.on(this.consumer.events.GROUP_JOIN, (event) => this.onGroupJoin(event.payload.memberAssignment))
    this.consumer.on(this.consumer.events.CRASH, (event) => this.onCrash(event.payload.error, event.payload.restart))
  }

  get state(): WorkerState {
    return this.currentState
  }

  /** True once the consumer joined its group and consumes; false before, after a crash, and while stopping. */
  get ready(): boolean {
    return this.currentState === 'running' && this.joined && this.stopPromise === undefined
  }

  /** The retry topics this worker consumes. */
  get retryTopics(): string[] {
    return [...this.options.topicsByRetryTopic.keys()]
  }

  /**
   * Checks (and unless `createTopics` is false, creates) the Detour topics, connects, and starts
   * consuming. Resolves once the consumer runs; `ready` turns true when it has joined its group.
   */
  start(): Promise<void> {
    if (this.currentState !== 'idle') {
      return Promise.reject(new DetourError(`The retry worker is ${this.currentState}; start() can be called once`, ErrorCodes.NOT_RUNNING))
    }
    this.currentState = 'starting'
    this.startPromise = this.doStart()
    return this.startPromise
  }

  /**
   * Stops fetching, lets in-flight handlers finish (up to `timeoutMs`, abandoning the rest), commits what
   * is resolved and disconnects. Idempotent: later calls return the first call's result.
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
    if (this.listenerCount('released') > 0) this.emit('released', group)
    this.markResolved(entry, scheduler, 'released')
    return { released: true, group }
  }

  stats(): RetryWorkerStats {
    return {
      state: this.currentState,
      ready: this.ready,
      assignedPartitions: this.assignment?.size ?? 0,
      buffered: this.bufferedTotal,
      inFlight: this.limiter.inUse,
      heldGroups: this.held.size,
      pausedPartitions: this.pausedForBuffer.size,
      partitions: [...this.partitions.values()].map((s) => ({
        topic: s.topic,
        partition: s.partition,
        buffered: s.buffered,
        committedOffset: s.committedOffset,
        commitOffset: s.commitOffset(),
      })),
    }
  }

  private async doStart(): Promise<void> {
    const o = this.options
    try {
      for (const topics of o.topicsByRetryTopic.values()) {
        const result = await provisionTopics({
          admin: o.topicAdmin,
          topics,
          create: o.createTopics,
          replicationFactor: o.replicationFactor,
          logger: this.logger,
        })
        this.logger.info('Detour topics checked', { ...topics, partitions: result.partitions, created: result.created })
      }
      await this.producer.connect()
      await this.consumer.connect()
      await this.consumer.subscribe({ topics: this.retryTopics, fromBeginning: true })
      await this.consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        eachBatch: (payload) => this.onBatch(payload),
      })
      this.commitLoop = this.runCommitLoop()
      if (this.currentState === 'starting') this.currentState = 'running'
      // kafkajs' run() resolves after the first join: announce readiness now if it happened already.
      if (this.ready && this.listenerCount('ready') > 0) this.emit('ready')
      this.logger.info('Retry worker started', {
        retryTopics: this.retryTopics,
        consumerGroup: o.consumerGroup,
        exhaustedPolicy: o.exhaustedPolicy,
        maxAttempts: o.maxAttempts,
        maxInFlight: o.maxInFlight,
      })
    } catch (error) {
      this.logger.error('Retry worker failed to start', { error })
      this.closing = true
      await this.disconnectQuietly()
      this.currentState = 'stopped'
      throw error
    }
  }

  private async doStop(timeoutMs: number): Promise<StopResult> {
    if (this.currentState === 'idle') {
      this.currentState = 'stopped'
      return this.finishStop({ clean: true, abandoned: 0 })
    }
    if (this.startPromise) await this.startPromise.catch(() => undefined)
    if (this.currentState === 'stopped') return this.finishStop({ clean: true, abandoned: 0 })
    this.currentState = 'stopping'
    this.closing = true
    this.logger.info('Retry worker stopping', { inFlight: this.limiter.inUse, buffered: this.bufferedTotal, timeoutMs })
    let clean = true
    this.soft.abort()
    try {
      this.consumer.pause(this.retryTopics.map((topic) => ({ topic })))
    } catch (error) {
      this.logger.warn('Could not pause the retry consumer', { error })
    }
    const abandoned = await this.drain(timeoutMs)
    if (abandoned > 0) this.logger.warn('Shutdown timeout: abandoning in-flight work (not committed; retried after a restart)', { abandoned, timeoutMs })
    this.hard.abort()
    this.commitStop.abort()
    await this.commitLoop
    if (this.restarting && !(await this.awaitRestart(timeoutMs))) clean = false
    if (!(await this.commit(true))) clean = false
    if (!(await this.disconnectQuietly())) clean = false
    for (const key of [...this.partitions.keys()]) this.dropPartition(key)
    this.currentState = 'stopped'
    this.joined = false
    return this.finishStop({ clean: clean && abandoned === 0, abandoned })
  }

  /**
   * Waits (up to `timeoutMs`) until the consumer kafkajs is restarting has joined its group or given up.
   * Disconnecting in the middle of that join does not stop it: kafkajs would finish the join afterwards and
   * keep a member in the group that nobody can stop (it holds partitions and the process). Once joined,
   * the consumer can also commit what was resolved meanwhile.
   */
  private async awaitRestart(timeoutMs: number): Promise<boolean> {
    this.logger.info('kafkajs is restarting the crashed consumer; waiting for it before committing and disconnecting', { timeoutMs })
    const settled = await new Promise<boolean>((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        resolve(true)
      }
      const timer = setTimeout(() => {
        this.restartSettled.delete(done)
        resolve(false)
      }, timeoutMs)
      this.restartSettled.add(done)
    })
    if (!settled) {
      this.logger.warn('The restarting consumer did not join within the shutdown timeout; disconnecting anyway (exit the process so it cannot rejoin)', { timeoutMs })
      return false
    }
    // kafkajs marks its runner running right after GROUP_JOIN: let it, so that the commit and the disconnect reach it.
    await new Promise<void>((resolve) => setImmediate(resolve))
    return true
  }

  private settleRestart(): void {
    this.restarting = false
    const waiters = [...this.restartSettled]
    this.restartSettled.clear()
    for (const done of waiters) done()
  }

  private finishStop(result: StopResult): StopResult {
    this.logger.info('Retry worker stopped', { ...result })
    if (this.listenerCount('stopped') > 0) this.emit('stopped', result)
    return result
  }

  /** Waits for background work to end; returns how much was still running at the timeout. */
  private async drain(timeoutMs: number): Promise<number> {
    const timeout = new AbortController()
    const expired = delay(timeoutMs, 'timeout' as const, { signal: timeout.signal }).catch(() => 'cancelled' as const)
    try {
      while (this.work.size > 0) {
        const outcome = await Promise.race([Promise.allSettled([...this.work]), expired])
        if (outcome === 'timeout') return this.work.size
      }
      return 0
    } finally {
      timeout.abort()
    }
  }

  private async disconnectQuietly(): Promise<boolean> {
    let ok = true
    for (const [name, client] of [
      ['consumer', this.consumer],
      ['producer', this.producer],
    ] as const) {
      try {
        await client.disconnect()
      } catch (error) {
        ok = false
        this.logger.warn(`Disconnecting the ${name} failed`, { error })
      }
    }
    return ok
  }

  private async onBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload
    if (this.soft.signal.aborted || !payload.isRunning() || payload.isStale()) return
    const key = partitionKey(batch.topic, batch.partition)
    const topics = this.options.topicsByRetryTopic.get(batch.topic)
    if (!topics || (this.assignment && !this.assignment.has(key))) return
    let scheduler = this.partitions.get(key)
    if (!scheduler) {
      scheduler = new PartitionScheduler(batch.topic, batch.partition, { start: (entry, s) => this.startEntry(entry, s) }, this.signals)
      this.partitions.set(key, scheduler)
    }
    for (const message of batch.messages) {
      const entry = createRetryEntry(batch.topic, batch.partition, message, topics, this.options.consumerGroup)
      if (scheduler.add(entry)) {
        this.bufferedTotal++
        this.metrics.buffered.inc()
      }
    }
    const last = batch.messages[batch.messages.length - 1]
    if (last) payload.resolveOffset(last.offset)
    if (this.bufferedTotal >= this.options.maxBufferedMessages) {
      // Paused again even when it is marked paused: a partition that delivers is not paused in kafkajs
      // (a consumer restarted after a crash starts with no paused partitions).
      payload.pause()
      if (this.pausedForBuffer.has(key)) return
      this.pausedForBuffer.set(key, { topic: batch.topic, partition: batch.partition })
      this.logger.info('Buffer full; pausing the retry partition', {
        topic: batch.topic,
        partition: batch.partition,
        buffered: this.bufferedTotal,
        maxBufferedMessages: this.options.maxBufferedMessages,
      })
    }
  }

  private get signals(): { soft: AbortSignal; hard: AbortSignal } {
    return { soft: this.soft.signal, hard: this.hard.signal }
  }

  private startEntry(entry: RetryEntry, scheduler: PartitionScheduler): void {
    const work: Promise<void> = this.processor
      .process(entry, scheduler.signals)
      .then((outcome) => this.onOutcome(entry, scheduler, outcome))
      .catch((error: unknown) => {
        this.reportError('Processing a retry record failed unexpectedly; its group is stuck until a restart', error, {
          topic: entry.retryTopic,
          partition: entry.retryPartition,
          offset: entry.offset,
        })
      })
      .finally(() => this.work.delete(work))
    this.work.add(work)
  }

  private onOutcome(entry: RetryEntry, scheduler: PartitionScheduler, outcome: ProcessOutcome): void {
    if (outcome.kind === 'stopped') return
    if (outcome.deadLetter && this.listenerCount('dead-lettered') > 0) this.emit('dead-lettered', outcome.deadLetter)
    if (outcome.kind === 'resolved') {
      this.markResolved(entry, scheduler, outcome.resolution)
      return
    }
    if (!scheduler.hold(entry) || !entry.envelope) return
    const envelope = entry.envelope
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
    if (this.listenerCount('held') > 0) this.emit('held', group)
    // The held group no longer drains: the buffer may already be as low as it gets.
    this.resumeIfDrained()
  }

  private markResolved(entry: RetryEntry, scheduler: PartitionScheduler, kind: ResolutionKind): void {
    if (!scheduler.resolve(entry)) return
    this.bufferedTotal--
    this.metrics.buffered.dec()
    if (this.listenerCount('resolved') > 0) {
      this.emit('resolved', {
        kind,
        id: entry.envelope?.id,
        retryTopic: entry.retryTopic,
        retryPartition: entry.retryPartition,
        retryOffset: entry.offset,
        attempts: entry.attempts,
      })
    }
    this.resumeIfDrained()
  }

  /**
   * Resumes the partitions paused for the buffer once the records that can still make progress have
   * drained to half of the room left. Records of held groups (the held record and those queued behind
   * it) wait for an operator, not for the buffer: counting them as draining would keep partitions
   * paused forever, other groups and partitions included. Only when held work alone fills the buffer
   * does everything wait for a release (the memory bound).
   */
  private resumeIfDrained(): void {
    if (this.pausedForBuffer.size === 0 || this.soft.signal.aborted) return
    const max = this.options.maxBufferedMessages
    let blocked = 0
    for (const scheduler of this.partitions.values()) blocked += scheduler.blocked
    if (blocked >= max) {
      if (!this.warnedHeldFull) {
        this.warnedHeldFull = true
        this.logger.warn('The buffer is full of held groups; retry partitions stay paused until a held group is released', {
          buffered: this.bufferedTotal,
          blocked,
          heldGroups: this.held.size,
          maxBufferedMessages: max,
        })
      }
      return
    }
    this.warnedHeldFull = false
    if (this.bufferedTotal - blocked > Math.floor((max - blocked) / 2)) return
    const partitions = [...this.pausedForBuffer.values()]
    this.pausedForBuffer.clear()
    this.resume(partitions)
    this.logger.info('Buffer drained; resuming retry partitions', { partitions: partitions.length, buffered: this.bufferedTotal })
  }

  private resume(partitions: Array<{ topic: string; partition: number }>): void {
    try {
      this.consumer.resume(partitions.map(({ topic, partition }) => ({ topic, partitions: [partition] })))
    } catch (error) {
      this.reportError('Could not resume retry partitions', error)
    }
  }

  private onGroupJoin(memberAssignment: IMemberAssignment): void {
    if (this.currentState === 'stopped') {
      this.logger.warn('The retry consumer joined its group after the worker stopped (kafkajs finished a restart late); exit the process to leave the group')
      return
    }
    const next = new Set<string>()
    const assigned: Array<{ topic: string; partition: number }> = []
    for (const [topic, partitions] of Object.entries(memberAssignment)) {
      for (const partition of partitions) {
        const key = partitionKey(topic, partition)
        next.add(key)
        if (!this.assignment?.has(key)) assigned.push({ topic, partition })
      }
    }
    const revoked: Array<{ topic: string; partition: number }> = []
    for (const key of this.assignment ?? []) {
      if (next.has(key)) continue
      const scheduler = this.partitions.get(key)
      const [topic = '', partition = '0'] = key.split('\u0000')
      revoked.push({ topic, partition: Number(partition) })
      if (scheduler) this.dropPartition(key)
    }
    this.assignment = next
    this.reapplyPauses()
    // Dropped partitions freed buffer room: partitions paused for the buffer may go on.
    if (revoked.length > 0) this.resumeIfDrained()
    // kafkajs skips commits while its runner restarts: commit the kept partitions again in the new generation.
    for (const scheduler of this.partitions.values()) scheduler.committedOffset = undefined
    const wasReady = this.ready
    this.joined = true
    this.logger.info('Retry consumer joined its group', { assigned, revoked, partitions: next.size })
    if (this.listenerCount('rebalanced') > 0) this.emit('rebalanced', { assigned, revoked })
    if (!wasReady && this.ready && this.listenerCount('ready') > 0) this.emit('ready')
    if (this.restarting) this.settleRestart()
  }

  /**
   * After a crash, kafkajs restarts the consumer with a new consumer group whose partitions are all
   * resumed. GROUP_JOIN comes before the first fetch of the new session: pause again what this worker
   * keeps paused (the partitions paused for the buffer, or everything while stopping).
   */
  private reapplyPauses(): void {
    try {
      if (this.soft.signal.aborted) {
        this.consumer.pause(this.retryTopics.map((topic) => ({ topic })))
      } else if (this.pausedForBuffer.size > 0) {
        this.consumer.pause([...this.pausedForBuffer.values()].map(({ topic, partition }) => ({ topic, partitions: [partition] })))
      }
    } catch (error) {
      this.reportError('Could not pause retry partitions again after the consumer joined its group', error)
    }
  }

  /** Forgets a partition: queued work is abandoned, in-flight work ends without resolving or committing. */
  private dropPartition(key: string): void {
    const scheduler = this.partitions.get(key)
    if (!scheduler) return
    this.partitions.delete(key)
    const left = scheduler.drop().length
    this.bufferedTotal -= left
    this.metrics.buffered.dec(left)
    this.held.removePartition(scheduler)
    const paused = this.pausedForBuffer.get(key)
    if (paused) {
      this.pausedForBuffer.delete(key)
      if (!this.soft.signal.aborted) this.resume([paused])
    }
  }

  private onCrash(error: Error, restart: boolean): void {
    this.joined = false
    if (restart) {
      this.restarting = true
      this.logger.warn('Retry consumer crashed; kafkajs restarts it', { error })
      return
    }
    // kafkajs gave up (or was told not to restart while the worker stops).
    if (this.restarting) this.settleRestart()
    if (this.currentState === 'stopping' || this.currentState === 'stopped') return
    this.currentState = 'failed'
    this.logger.error('Retry consumer crashed and will not restart; stop the worker', { error })
    if (this.listenerCount('crash') > 0) this.emit('crash', error)
  }

  private async runCommitLoop(): Promise<void> {
    const signal = this.commitStop.signal
    while (!signal.aborted) {
      try {
        await sleep(this.options.commitIntervalMs, signal)
      } catch {
        return
      }
      await this.commit()
    }
  }

  /**
   * Commits each partition up to its lowest unresolved offset. Returns false when the offsets could not be
   * committed (`final`: the commit of a stop, whose result decides whether the stop is clean).
   */
  private async commit(final = false): Promise<boolean> {
    const targets: Array<{ scheduler: PartitionScheduler; offset: string }> = []
    for (const scheduler of this.partitions.values()) {
      const offset = scheduler.commitOffset()
      if (offset !== undefined && offset !== scheduler.committedOffset) targets.push({ scheduler, offset })
    }
    if (targets.length === 0) return true
    const offsets = targets.map(({ scheduler, offset }) => ({ topic: scheduler.topic, partition: scheduler.partition, offset }))
    // kafkajs' commitOffsets() resolves without committing anything while its consumer is not running (it
    // crashed and is being restarted): only its COMMIT_OFFSETS event says that the broker stored the offsets.
    let stored = false
    const stopListening = this.consumer.on(this.consumer.events.COMMIT_OFFSETS, () => {
      stored = true
    })
    try {
      await this.consumer.commitOffsets(offsets)
    } catch (error) {
      this.metrics.commitFailures.inc()
      this.reportError('Committing retry offsets failed; retrying at the next interval', error, { offsets })
      return false
    } finally {
      stopListening()
    }
    if (!stored) {
      const message = 'Retry offsets not committed: the consumer is not running (kafkajs is restarting it)'
      if (final) this.logger.warn(message, { offsets })
      else this.logger.debug(message, { offsets })
      return false
    }
    for (const { scheduler, offset } of targets) scheduler.committedOffset = offset
    this.logger.debug('Committed retry offsets', { offsets })
    if (this.listenerCount('committed') > 0) this.emit('committed', { offsets })
    return true
  }

  private onHandOffFailure(failure: HandOffFailure): void {
    this.metrics.handOffFailures.inc({ target: failure.target })
    if (this.listenerCount('error') > 0) {
      this.emit('error', new DetourHandOffError(failure.topic, `Writing a ${failure.target} to ${failure.topic} failed (attempt ${failure.attempt}); retrying`, failure.error))
    }
  }

  /** Logs a background failure and reports it to `error` listeners (never an unhandled rejection). */
  private reportError(message: string, error: unknown, fields: LogFields = {}): void {
    this.logger.error(message, { ...fields, error })
    if (this.listenerCount('error') > 0) this.emit('error', error instanceof Error ? error : new Error(String(error)))
  }
}

/** Creates a retry worker (validates the options now; call `start()` to run it). */
export function createRetryWorker(options: RetryWorkerOptions): RetryWorker {
  return new RetryWorker(options)
}

import type { IMemberAssignment, KafkaMessage } from 'kafkajs'
import { parseTopicPartitionKey, topicPartitionKey, type DetourTopics, type LogFields, type Logger, type TopicPartition } from '@detour/core'
import type { RetryMetrics } from '../metrics/retry-metrics.js'
import { WorkAbortedError, sleep } from './abort.js'
import type { FetchControl } from './buffer-gate.js'
import type { CommitResult, CommitTarget } from './offset-committer.js'
import { parseOwnerMetadata } from './owner-metadata.js'
import { PartitionScheduler, type PartitionSignals } from './partition-scheduler.js'
import { createRetryEntry, type RetryEntry } from './retry-entry.js'
import type { TakeoverResult } from './takeover.js'
import type { TakeoverEvent } from './types.js'
import type { CommittedOffset } from './worker-admin.js'
import type { WorkTracker } from './work-tracker.js'

/** A retry partition assigned to this worker. */
export interface AssignedPartition {
  readonly key: string
  readonly scheduler: PartitionScheduler
  readonly topics: DetourTopics
  /** Resolves when the previous owner let go (or its time ran out); rejects (abort) when revoked first. */
  readonly takenOver: Promise<void>
  /** `waiting` until {@link takenOver}; `active` once attempts may run there. */
  phase: 'waiting' | 'active'
  /** This instance committed its ownership (`state=active`) of the partition. */
  claimed: boolean
  /** The claim in progress. */
  claim: Promise<void> | undefined
}

/** What the assignments see of the worker: its parts, behind narrow interfaces (stand-ins in unit tests). */
export interface AssignmentsContext {
  readonly topicsByRetryTopic: ReadonlyMap<string, DetourTopics>
  /** The main app's group (retry records of another group are malformed). */
  readonly groupId: string
  /** This worker instance (as named in the owner metadata of its commits). */
  readonly instanceId: string
  readonly handlerTimeoutMs: number
  /** Delay between two attempts to claim a partition. */
  readonly commitIntervalMs: number
  /** Worker-wide signals; each partition follows them. */
  readonly signals: Partial<PartitionSignals>
  /** Pauses and resumes fetching of partitions (the kafkajs consumer). */
  readonly fetch: FetchControl
  /** The consumer group is joined and not rebalancing. */
  readonly consumerStable: () => boolean
  readonly takeover: { whenFree(topic: string, partition: number, signal: AbortSignal): Promise<TakeoverResult> }
  readonly committer: { commit(targets: readonly CommitTarget[]): Promise<CommitResult>; forget(topic: string, partition: number): void }
  readonly committedOffsets: (topic: string) => Promise<Map<number, CommittedOffset>>
  readonly retention: {
    checkAssigned(retryTopic: string, sourceTopic: string, committed: ReadonlyMap<number, string | undefined>): Promise<void>
    forget(retryTopic: string, partition: number): void
  }
  readonly resolution: { barrier(sourceTopic: string, partition: number, signal: AbortSignal): Promise<void> }
  readonly buffer: { isPaused(topic: string, partition: number): boolean; forget(topic: string, partition: number): void; removed(count: number): void }
  readonly held: { removePartition(scheduler: PartitionScheduler): void }
  /** Hand-overs run here (a stop waits for them). */
  readonly background: WorkTracker
  readonly metrics: Pick<RetryMetrics, 'takeoverWaits' | 'takeoverWait' | 'partitionReleases'>
  readonly logger: Logger
  /** Starts work on an entry that became the head of its group. */
  start(entry: RetryEntry, scheduler: PartitionScheduler): void
  onTakenOver(event: TakeoverEvent): void
  /** A revoked partition was released (`state=released` committed). */
  onReleased(target: CommitTarget): void
  reportError(message: string, error: unknown, fields?: LogFields): void
}

/**
 * The retry partitions of this worker and their hand-over between instances:
 *
 * - **Assignment.** A new partition is paused (from `GROUP_JOIN`, before kafkajs' first fetch) until its
 *   committed offset was compared with the log start offset (records deleted unread), then fetches while
 *   the takeover waits for the previous owner; its records are buffered, not started. Before its first
 *   attempt this instance claims it (commits `state=active`), and each batch waits for the redirect
 *   follower's barrier.
 * - **Revocation.** The partition takes no new records and starts no attempt; its handlers are asked to
 *   stop (their `signal`), and once they settled (at most `handlerTimeoutMs`) `state=released` is
 *   committed (best effort), so that the new owner starts at once. What they still finish counts: a
 *   success gets its tombstone, which the new owner's barrier sees.
 * - **Lost membership** ({@link lose}: a crash, the heartbeat lease ran out). Every partition's work stops as
 *   at a revocation, but the partitions stay here until the next join. A join that regains the membership
 *   (a crash's restart, a new member id, a heartbeat after the lease) treats every partition it keeps as a
 *   new assignment: the old work is handed over, and the partition goes through the takeover (the committed
 *   metadata's owner), a new claim and a new barrier before any attempt — another member may have owned it
 *   and processed its records meanwhile.
 * - **Assigned back** while the old work of the partition still runs here: the new scheduler starts only
 *   once every old handler has returned (however long that takes: two runs of one group never overlap in
 *   one process), or the new assignment is itself revoked.
 */
export class PartitionAssignments {
  private readonly assigned = new Map<string, AssignedPartition>()
  /** Revoked partitions until their handlers settled and they are handed over. */
  private readonly revoking = new Map<string, AssignedPartition>()

  constructor(private readonly context: AssignmentsContext) {}

  /** Assigned partitions (not the ones being handed over). */
  get size(): number {
    return this.assigned.size
  }

  /** Assigned partitions, then the ones being handed over. */
  all(): AssignedPartition[] {
    return [...this.assigned.values(), ...this.revoking.values()]
  }

  /** Assigned partitions whose ownership this instance committed: the ones its commits may move. */
  *claimed(): Iterable<AssignedPartition> {
    for (const run of this.assigned.values()) if (run.claimed) yield run
  }

  get(topic: string, partition: number): AssignedPartition | undefined {
    return this.assigned.get(topicPartitionKey(topic, partition))
  }

  /**
   * A group join: revokes what is no longer assigned (first), assigns what is new. Returns both, for the
   * `rebalanced` event.
   */
  onJoin(memberAssignment: IMemberAssignment, info: { readonly regained: boolean } = { regained: false }): { assigned: TopicPartition[]; revoked: TopicPartition[] } {
    const next = new Set<string>()
    for (const [topic, partitions] of Object.entries(memberAssignment)) {
      if (!this.context.topicsByRetryTopic.has(topic)) continue
      for (const partition of partitions) next.add(topicPartitionKey(topic, partition))
    }
    const revoked: TopicPartition[] = []
    for (const [key, run] of [...this.assigned]) {
      // A regained membership keeps nothing: a kept partition is revoked here and assigned again below.
      if (next.has(key) && !info.regained) continue
      revoked.push(parseTopicPartitionKey(key))
      // Kept through a regained membership: its buffer pause stays (the new run's records count against the same bound).
      this.revoke(run, { keepPause: next.has(key) })
    }
    const assigned: TopicPartition[] = []
    for (const key of next) if (!this.assigned.has(key)) assigned.push(parseTopicPartitionKey(key))
    if (assigned.length > 0) {
      try {
        this.context.fetch.pause(assigned)
      } catch (error) {
        this.context.reportError('Could not pause newly assigned retry partitions for their inspection', error)
      }
    }
    for (const { topic, partition } of assigned) this.assign(topic, partition)
    return { assigned, revoked }
  }

  /**
   * Takes the records of a fetched batch. Returns how many entered the buffer (records at or below an offset
   * seen already are skipped: kafkajs refetches from the committed offset after a rebalance).
   */
  accept(topic: string, partition: number, messages: readonly KafkaMessage[]): number {
    const run = this.get(topic, partition)
    if (!run || run.scheduler.phase !== 'active') return 0
    const { scheduler, topics } = run
    let barrier: Promise<void> | undefined
    let added = 0
    for (const message of messages) {
      if (!scheduler.accepts(message.offset)) continue
      const entry = createRetryEntry(topic, partition, message, topics, this.context.groupId)
      // Taken after this fetch: every redirect record and tombstone written before these records were read is applied first.
      entry.barrier = barrier ??= this.batchBarrier(run)
      if (scheduler.add(entry)) added++
    }
    return added
  }

  /**
   * The membership is lost (a crash, the heartbeat lease ran out): the partitions may be someone else's
   * already. No new record, no new attempt; running handlers are asked to stop. What they still finish is
   * resolved (its tombstone written), so a stop can still commit it. The next join decides what happens to
   * them (see the class comment). Returns the partitions whose work was stopped.
   */
  lose(): TopicPartition[] {
    const stopped: TopicPartition[] = []
    for (const run of this.assigned.values()) {
      if (run.scheduler.phase !== 'active') continue
      run.scheduler.revoke()
      this.context.held.removePartition(run.scheduler)
      stopped.push({ topic: run.scheduler.topic, partition: run.scheduler.partition })
    }
    return stopped
  }

  /** Stops every partition (the worker stopped): queued work is abandoned. */
  dropAll(): void {
    for (const key of [...this.assigned.keys()]) this.drop(this.assigned, key)
    for (const key of [...this.revoking.keys()]) this.drop(this.revoking, key)
  }

  private assign(topic: string, partition: number): void {
    const topics = this.context.topicsByRetryTopic.get(topic)
    if (!topics) return
    const key = topicPartitionKey(topic, partition)
    const scheduler = new PartitionScheduler(topic, partition, { start: (entry, s) => this.context.start(entry, s) }, this.context.signals)
    // Assigned back before the old work of the partition ended here: every old handler returns first.
    const previous = this.revoking.get(key)
    const settled = previous ? this.settled(previous, scheduler.signals.soft) : Promise.resolve()
    const inspected = this.inspect(key, topic, topics.source, partition)
    const takenOver = Promise.all([settled, inspected])
      .then(() => this.context.takeover.whenFree(topic, partition, scheduler.signals.soft))
      .then((result) => {
        run.phase = 'active'
        if (!result.waited) return
        this.context.metrics.takeoverWaits.inc({ outcome: result.outcome })
        this.context.metrics.takeoverWait.observe(result.waitedMs / 1000)
        this.context.logger.info(result.outcome === 'released' ? 'The previous owner released the partition; starting' : "Starting without the previous owner's release", {
          topic,
          partition,
          previousOwner: result.previousOwner,
          waitedMs: result.waitedMs,
        })
        this.context.onTakenOver({ topic, partition, outcome: result.outcome, previousOwner: result.previousOwner, waitedMs: result.waitedMs })
      })
    takenOver.catch(() => undefined)
    const run: AssignedPartition = { key, scheduler, topics, takenOver, phase: 'waiting', claimed: false, claim: undefined }
    this.assigned.set(key, run)
  }

  /**
   * Resolves once the old work of a partition assigned back here has ended, however long it takes (a
   * warning every `handlerTimeoutMs`); rejects with a `WorkAbortedError` when `signal` aborts first.
   */
  private async settled(previous: AssignedPartition, signal: AbortSignal): Promise<void> {
    const { scheduler } = previous
    for (let round = 1; ; round++) {
      const running = await scheduler.work.idle(this.context.handlerTimeoutMs, signal)
      if (signal.aborted) throw new WorkAbortedError()
      if (running === 0) return
      this.context.logger.warn('A partition assigned back here waits for its old handlers to return before it starts again (strict order)', {
        topic: scheduler.topic,
        partition: scheduler.partition,
        running,
        waitedMs: round * this.context.handlerTimeoutMs,
      })
    }
  }

  /**
   * A newly assigned partition stays paused until its committed offset was compared with the log start
   * offset: below it, records were deleted before they were retried. kafkajs would otherwise meet
   * OFFSET_OUT_OF_RANGE first and commit "earliest" over the evidence.
   */
  private async inspect(key: string, topic: string, source: string, partition: number): Promise<void> {
    try {
      const committed = (await this.context.committedOffsets(topic)).get(partition)?.offset
      await this.context.retention.checkAssigned(topic, source, new Map([[partition, committed]]))
    } catch (error) {
      this.context.logger.warn('Cannot read the committed offset of a newly assigned partition; records deleted unread would go unnoticed', { topic, partition, error })
    } finally {
      const run = this.assigned.get(key)
      if (run && !run.scheduler.signals.soft.aborted && !this.context.buffer.isPaused(topic, partition)) {
        try {
          this.context.fetch.resume([{ topic, partition }])
        } catch (error) {
          this.context.reportError('Could not resume a newly assigned retry partition', error, { topic, partition })
        }
      }
    }
  }

  /**
   * What the records of a batch wait for before their first attempt: the takeover of the partition, this
   * instance's claim of it, then the redirect follower's barrier.
   */
  private batchBarrier(run: AssignedPartition): Promise<void> {
    const { scheduler, topics } = run
    const barrier = run.takenOver
      .then(() => this.claim(run))
      .then(() => this.context.resolution.barrier(topics.source, scheduler.partition, scheduler.signals.soft))
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
      if (this.context.consumerStable()) {
        const result = await this.context.committer.commit([{ topic: scheduler.topic, partition: scheduler.partition, offset, state: 'active' }])
        if (result.kind === 'committed') {
          run.claimed = true
          return
        }
        if (attempt === 1 || attempt % 20 === 0) {
          this.context.logger.warn('Could not commit the ownership of a newly assigned partition yet; its records wait', {
            topic: scheduler.topic,
            partition: scheduler.partition,
            attempt,
            error: result.kind === 'failed' ? result.error : 'the consumer is not running',
          })
        }
      }
      await sleep(this.context.commitIntervalMs, scheduler.signals.soft)
    }
  }

  private revoke(run: AssignedPartition, options: { readonly keepPause?: boolean } = {}): void {
    const { key, scheduler } = run
    this.assigned.delete(key)
    this.revoking.set(key, run)
    scheduler.revoke()
    this.context.held.removePartition(scheduler)
    if (!options.keepPause) this.context.buffer.forget(scheduler.topic, scheduler.partition)
    const handOver = (async () => {
      const running = await scheduler.work.idle(this.context.handlerTimeoutMs)
      const offset = scheduler.commitOffset()
      if (this.revoking.get(key) === run) this.drop(this.revoking, key)
      // Assigned back here meanwhile: the new assignment owns the partition's commits and metadata now.
      if (this.assigned.has(key)) return
      try {
        if (run.claimed && offset !== undefined) await this.release(scheduler.topic, scheduler.partition, offset, running)
      } finally {
        if (!this.assigned.has(key)) {
          this.context.committer.forget(scheduler.topic, scheduler.partition)
          this.context.retention.forget(scheduler.topic, scheduler.partition)
        }
      }
    })()
    this.context.background.track(handOver.catch((error: unknown) => this.context.reportError('Handing over a revoked partition failed', error)))
  }

  /**
   * Commits `state=released` for a revoked partition whose handlers all settled (`running` = 0), so that its
   * new owner starts at once. Otherwise nothing is committed: the new owner waits for its own timeout.
   * Nor when the committed metadata names another owner already (or cannot be read): the new owner gave up
   * waiting and claimed the partition, and a release now would overwrite its claim (see `Takeover`).
   */
  private async release(topic: string, partition: number, offset: string, running: number): Promise<void> {
    const { metrics, logger } = this.context
    if (running > 0) {
      metrics.partitionReleases.inc({ outcome: 'unsettled' })
      logger.warn('Handlers of a revoked partition did not settle within handlerTimeoutMs; not releasing it (the new owner waits for its own timeout)', {
        topic,
        partition,
        running,
      })
      return
    }
    let owner: string | undefined
    try {
      owner = parseOwnerMetadata((await this.context.committedOffsets(topic)).get(partition)?.metadata)?.owner
    } catch (error) {
      metrics.partitionReleases.inc({ outcome: 'unsettled' })
      logger.warn('Cannot read the committed metadata of a revoked partition; not releasing it (the new owner waits for its own timeout)', { topic, partition, error })
      return
    }
    if (owner !== undefined && owner !== this.context.instanceId) {
      metrics.partitionReleases.inc({ outcome: 'superseded' })
      logger.info('A revoked partition is claimed by its new owner already; not releasing it (a release would overwrite that claim)', { topic, partition, newOwner: owner })
      return
    }
    const target: CommitTarget = { topic, partition, offset, state: 'released' }
    const result = await this.context.committer.commit([target])
    if (result.kind === 'committed') {
      metrics.partitionReleases.inc({ outcome: 'released' })
      logger.info('Revoked partition released', { ...target })
      this.context.onReleased(target)
      return
    }
    metrics.partitionReleases.inc({ outcome: 'unsettled' })
    logger.warn('Could not commit the release of a revoked partition (the new owner waits for its own timeout)', {
      ...target,
      error: result.kind === 'failed' ? result.error : 'the consumer is not running',
    })
  }

  /** Forgets a partition: queued work is abandoned, in-flight work ends without resolving or committing. */
  private drop(from: Map<string, AssignedPartition>, key: string): void {
    const run = from.get(key)
    if (!run) return
    from.delete(key)
    const { scheduler } = run
    const left = scheduler.drop().length
    this.context.held.removePartition(scheduler)
    // Assigned back meanwhile: the pause (if any) is the new assignment's.
    if (!this.assigned.has(key)) this.context.buffer.forget(scheduler.topic, scheduler.partition)
    this.context.buffer.removed(left)
  }
}

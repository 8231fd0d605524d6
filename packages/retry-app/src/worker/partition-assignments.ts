import type { IMemberAssignment, KafkaMessage } from 'kafkajs'
import { parseTopicPartitionKey, topicPartitionKey, type DetourTopics, type LogFields, type Logger, type TopicPartition } from '@detour/core'
import type { RetryMetrics } from '../metrics/retry-metrics.js'
import { sleep } from './abort.js'
import type { FetchControl } from './buffer-gate.js'
import type { CommitResult, CommitTarget } from './offset-committer.js'
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
  onJoin(memberAssignment: IMemberAssignment): { assigned: TopicPartition[]; revoked: TopicPartition[] } {
    const next = new Set<string>()
    const assigned: TopicPartition[] = []
    for (const [topic, partitions] of Object.entries(memberAssignment)) {
      if (!this.context.topicsByRetryTopic.has(topic)) continue
      for (const partition of partitions) {
        const key = topicPartitionKey(topic, partition)
        next.add(key)
        if (!this.assigned.has(key)) assigned.push({ topic, partition })
      }
    }
    const revoked: TopicPartition[] = []
    for (const [key, run] of [...this.assigned]) {
      if (next.has(key)) continue
      revoked.push(parseTopicPartitionKey(key))
      this.revoke(run)
    }
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

  /** Stops every partition (the worker stopped): queued work is abandoned. */
  dropAll(): void {
    for (const key of [...this.assigned.keys()]) this.drop(this.assigned, key)
    for (const key of [...this.revoking.keys()]) this.drop(this.revoking, key)
  }

  private assign(topic: string, partition: number): void {
    const topics = this.context.topicsByRetryTopic.get(topic)
    if (!topics) return
    const key = topicPartitionKey(topic, partition)
    // Assigned back before its hand-over finished: the handlers still running there settle first.
    const previous = this.revoking.get(key)
    const settled = previous ? previous.scheduler.work.idle(this.context.handlerTimeoutMs) : Promise.resolve(0)
    const scheduler = new PartitionScheduler(topic, partition, { start: (entry, s) => this.context.start(entry, s) }, this.context.signals)
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

  private revoke(run: AssignedPartition): void {
    const { key, scheduler } = run
    this.assigned.delete(key)
    this.revoking.set(key, run)
    scheduler.revoke()
    this.context.held.removePartition(scheduler)
    this.context.buffer.forget(scheduler.topic, scheduler.partition)
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
    this.context.buffer.forget(scheduler.topic, scheduler.partition)
    this.context.buffer.removed(left)
  }
}

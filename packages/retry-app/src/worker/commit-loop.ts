import { isRebalanceError, type LogFields, type Logger } from '@detour/core'
import type { RetryMetrics } from '../metrics/retry-metrics.js'
import { sleep } from './abort.js'
import type { CommitResult, CommitTarget } from './offset-committer.js'
import type { AssignedPartition } from './partition-assignments.js'
import type { CommittedEvent } from './types.js'
import type { WorkTracker } from './work-tracker.js'

/** What the commit loop sees of the worker (stand-ins in unit tests). */
export interface CommitLoopContext {
  readonly intervalMs: number
  /**
   * An unchanged `active` commit is made again once it is this old: the claim is re-asserted, in case a
   * previous owner's late `released` commit overwrote it. @defaultValue 5000
   */
  readonly reassertIntervalMs?: number
  readonly committer: {
    changed(targets: Iterable<CommitTarget>, reassertAfterMs?: number): CommitTarget[]
    commit(targets: readonly CommitTarget[]): Promise<CommitResult>
    committedOffset(topic: string, partition: number): string | undefined
    forgetAll(): void
  }
  readonly retention: { purge(retryTopic: string, sourceTopic: string, partition: number, offset: string): Promise<void> }
  /** The partitions whose ownership this instance committed. */
  claimed(): Iterable<AssignedPartition>
  /** The consumer group is joined and not rebalancing (the coordinator refuses commits otherwise). */
  readonly consumerStable: () => boolean
  /** Purges run here (a stop waits for them). */
  readonly background: WorkTracker
  readonly metrics: Pick<RetryMetrics, 'commitFailures' | 'partitionReleases'>
  readonly logger: Logger
  onCommitted(event: CommittedEvent): void
  reportError(message: string, error: unknown, fields?: LogFields): void
}

/**
 * Commits each claimed partition up to its lowest unresolved record every `intervalMs` (state `active`),
 * then purges what the commit made deletable; and, at a stop, the last commit, `released` for the
 * partitions whose work settled. An unchanged claim is committed again every `reassertIntervalMs`: the
 * committed metadata is last-writer-wins, and a previous owner's late `released` (its commit retried by
 * kafkajs, delayed by a coordinator move) may land after this instance's claim; re-asserting bounds how
 * long the metadata can wrongly say `released` while this instance works on the partition.
 */
export class CommitLoop {
  private running: Promise<void> | undefined

  constructor(private readonly context: CommitLoopContext) {}

  /** Runs until `signal` aborts. */
  start(signal: AbortSignal): void {
    this.running ??= (async () => {
      while (!signal.aborted) {
        try {
          await sleep(this.context.intervalMs, signal)
        } catch {
          return
        }
        await this.tick()
      }
    })()
  }

  get started(): boolean {
    return this.running !== undefined
  }

  /** The offset committed last for a partition. */
  committedOffset(topic: string, partition: number): string | undefined {
    return this.context.committer.committedOffset(topic, partition)
  }

  /** After a group join: kafkajs drops commits while it restarts its consumer, so everything is committed again. */
  forgetCommitted(): void {
    this.context.committer.forgetAll()
  }

  /** Resolves when the loop has ended (after its signal aborted). */
  async stopped(): Promise<void> {
    await this.running
  }

  /** One commit of what changed; failures are reported, never thrown. */
  async tick(): Promise<void> {
    const { context } = this
    if (!context.consumerStable()) return
    const sources = new Map<string, string>()
    const candidates: CommitTarget[] = []
    for (const run of context.claimed()) {
      const offset = run.scheduler.commitOffset()
      if (run.scheduler.phase !== 'active' || offset === undefined) continue
      candidates.push({ topic: run.scheduler.topic, partition: run.scheduler.partition, offset, state: 'active' })
      sources.set(run.key, run.topics.source)
    }
    const targets = context.committer.changed(candidates, context.reassertIntervalMs ?? 5000)
    if (targets.length === 0) return
    const result = await context.committer.commit(targets)
    if (result.kind === 'failed') {
      context.metrics.commitFailures.inc()
      if (isRebalanceError(result.error)) {
        // A rebalance began after the check above: expected, not a failure worth an `error` event.
        context.logger.info('Retry offsets not committed: the group is rebalancing; retrying after it joined', { offsets: targets })
        return
      }
      context.reportError('Committing retry offsets failed; retrying at the next interval', result.error, { offsets: targets })
      return
    }
    if (result.kind === 'not-running') {
      context.logger.debug('Retry offsets not committed: the consumer is not running (kafkajs is restarting it)', { offsets: targets })
      return
    }
    context.logger.debug('Committed retry offsets', { offsets: targets })
    context.onCommitted({ offsets: targets })
    for (const run of context.claimed()) {
      const target = targets.find((t) => t.topic === run.scheduler.topic && t.partition === run.scheduler.partition)
      const source = sources.get(run.key)
      if (target && source !== undefined) context.background.track(context.retention.purge(target.topic, source, target.partition, target.offset))
    }
  }

  /**
   * The last commit: each claimed partition up to its lowest unresolved record, `state=released` when its
   * work has settled (the next owner may start at once), `active` otherwise (it waits `handlerTimeoutMs` +
   * 2 s for the abandoned handlers). Returns false when the offsets did not reach the broker.
   */
  async final(): Promise<boolean> {
    const { context } = this
    const targets: CommitTarget[] = []
    for (const run of context.claimed()) {
      const { scheduler } = run
      const offset = scheduler.commitOffset()
      if (offset === undefined) continue
      targets.push({ topic: scheduler.topic, partition: scheduler.partition, offset, state: scheduler.work.size === 0 ? 'released' : 'active' })
    }
    if (targets.length === 0) return true
    const result = await context.committer.commit(targets)
    if (result.kind === 'committed') {
      for (const { state } of targets) context.metrics.partitionReleases.inc({ outcome: state === 'released' ? 'released' : 'unsettled' })
      context.logger.debug('Committed retry offsets at stop', { offsets: targets })
      context.onCommitted({ offsets: targets })
      return true
    }
    if (result.kind === 'failed') {
      context.metrics.commitFailures.inc()
      context.reportError('Committing retry offsets at stop failed', result.error, { offsets: targets })
    } else {
      context.logger.warn('Retry offsets not committed at stop: the consumer is not running (kafkajs is restarting it)', { offsets: targets })
    }
    return false
  }
}

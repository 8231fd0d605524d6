import { DetourHeaders, displayGroupKey, headerString, topicPartitionKey } from '@detour/core'
import type { AdminScope } from '../model/scope.js'
import type { PartitionRange, TopicLog } from '../kafka/topic-log.js'
import type { HeldGroup, WorkerClient } from '../worker/worker-client.js'
import type { PendingEntry } from './pending-index.js'
import type { RedirectProgress, RedirectTail } from './redirect-tail.js'
import type { GroupView, InspectReport, OldestPending, PartitionView, PendingIdView, PendingState, TopicView } from './inspect-report.js'

export interface InspectorDeps {
  readonly log: TopicLog
  readonly scope: AdminScope
  readonly tail: RedirectTail
  readonly worker?: WorkerClient
  readonly now?: () => number
}

export interface InspectOptions {
  /**
   * Read the unresolved part of the retry topics (from the worker's committed offsets) to tell waiting ids
   * from stuck ones and show their errors. @defaultValue true
   */
  readonly retryScan?: boolean
}

interface RetrySeen {
  readonly offset: string
  readonly errorName?: string
  readonly errorMessage?: string
}

function olderOf(a: OldestPending | undefined, b: OldestPending | undefined): OldestPending | undefined {
  if (!a) return b
  if (!b) return a
  return a.ageMs >= b.ageMs ? a : b
}

/** Builds the pending view of a scope: the redirect topics (read to their end), the worker's held groups, the retry tails. */
export class Inspector {
  private readonly now: () => number

  constructor(private readonly deps: InspectorDeps) {
    this.now = deps.now ?? Date.now
  }

  async inspect(options: InspectOptions = {}): Promise<InspectReport> {
    const { scope, tail } = this.deps
    const warnings: string[] = []
    // The reads run at once: each reading consumer's group join waits the broker's
    // group.initial.rebalance.delay.ms (3 s by default). The retry topics' bounds are taken after the
    // redirect topics' ones, so every id the redirect read finds has its retry record within the retry read.
    let redirectBoundsTaken!: () => void
    const redirectBounds = new Promise<void>((resolve) => (redirectBoundsTaken = resolve))
    const [progress, held, retrySeen] = await Promise.all([
      tail.catchUp(redirectBoundsTaken),
      this.heldGroups(warnings),
      (options.retryScan ?? true) ? redirectBounds.then(() => this.scanRetry(warnings)) : Promise.resolve(undefined),
    ])
    const workerError = this.deps.worker && held === undefined ? warnings[0] : undefined
    const heldById = new Map((held ?? []).map((group) => [group.id, group]))
    const groups = tail.index.groups()
    const now = this.now()

    const topics: TopicView[] = []
    const pendingIds = new Set<string>()
    for (const detourTopics of scope.topics.values()) {
      const topicProgress = progress.filter((entry) => entry.sourceTopic === detourTopics.source)
      const partitions: PartitionView[] = []
      for (const entry of topicProgress.sort((a, b) => a.partition - b.partition)) {
        const views = groups
          .filter((group) => group.sourceTopic === detourTopics.source && group.partition === entry.partition)
          .map((group) => this.groupView(group.ids, heldById, retrySeen?.ids, now))
        for (const view of views) for (const id of view.ids) pendingIds.add(id.id)
        partitions.push(this.partitionView(entry, views, retrySeen?.committed.get(topicPartitionKey(detourTopics.source, entry.partition))))
        if (!entry.complete) {
          warnings.push(`${entry.redirectTopic}/${entry.partition} could not be read to its end (${entry.end}): the view may miss ids`)
        }
      }
      if (topicProgress.length === 0) warnings.push(`The redirect topic ${detourTopics.redirect} does not exist (nothing redirected yet, or other topic names?)`)
      const sum = (pick: (p: PartitionView) => number): number => partitions.reduce((total, p) => total + pick(p), 0)
      topics.push({
        source: detourTopics.source,
        retry: detourTopics.retry,
        redirect: detourTopics.redirect,
        error: detourTopics.error,
        redirectExists: topicProgress.length > 0,
        pendingIds: sum((p) => p.pendingIds),
        groups: sum((p) => p.groups.length),
        oldest: partitions.reduce<OldestPending | undefined>((oldest, p) => olderOf(oldest, p.oldest), undefined),
        partitions,
        ignored: tail.index.ignored(detourTopics.source),
      })
    }
    const report: InspectReport = {
      consumerGroup: scope.consumerGroup,
      generatedAt: new Date(now).toISOString(),
      pendingIds: topics.reduce((total, t) => total + t.pendingIds, 0),
      groups: topics.reduce((total, t) => total + t.groups, 0),
      oldest: topics.reduce<OldestPending | undefined>((oldest, t) => olderOf(oldest, t.oldest), undefined),
      topics,
      warnings,
      ...(this.deps.worker
        ? {
            worker: {
              url: this.deps.worker.url,
              held: held ?? [],
              heldNotPending: (held ?? []).filter((group) => !pendingIds.has(group.id)),
              ...(workerError !== undefined ? { error: workerError } : {}),
            },
          }
        : {}),
    }
    return report
  }

  private groupView(ids: readonly PendingEntry[], heldById: Map<string, HeldGroup>, retryIds: Map<string, RetrySeen> | undefined, now: number): GroupView {
    const first = ids[0]
    const groupKey = first?.groupKey ?? null
    return {
      groupKey: displayGroupKey(groupKey),
      groupKeyBase64: groupKey === null ? null : groupKey.toString('base64'),
      ids: ids.map((entry, position): PendingIdView => {
        const held = heldById.get(entry.id)
        const retry = retryIds?.get(entry.id)
        let state: PendingState
        if (held) state = 'held'
        else if (retryIds === undefined) state = 'unknown'
        else if (retry === undefined) state = 'no-retry-record'
        else state = position === 0 ? 'retrying' : 'waiting'
        const redirected = entry.redirectedAt === undefined ? Number.NaN : Date.parse(entry.redirectedAt)
        return {
          id: entry.id,
          position,
          reason: entry.reason,
          redirectedAt: entry.redirectedAt,
          ageMs: Number.isFinite(redirected) ? Math.max(0, now - redirected) : undefined,
          redirectOffset: entry.redirectOffset,
          state,
          ...(retry ? { retry } : {}),
          ...(held ? { held } : {}),
        }
      }),
    }
  }

  private partitionView(progress: RedirectProgress, groups: GroupView[], workerCommitted: bigint | undefined): PartitionView {
    let oldest: OldestPending | undefined
    for (const group of groups) {
      for (const id of group.ids) {
        if (id.ageMs !== undefined && id.redirectedAt !== undefined) oldest = olderOf(oldest, { id: id.id, redirectedAt: id.redirectedAt, ageMs: id.ageMs })
      }
    }
    return {
      partition: progress.partition,
      pendingIds: groups.reduce((total, group) => total + group.ids.length, 0),
      groups,
      oldest,
      redirectEnd: progress.end.toString(),
      complete: progress.complete,
      workerCommitted: workerCommitted?.toString(),
    }
  }

  /** The worker's held groups; `undefined` (and a warning) when the worker does not answer. */
  private async heldGroups(warnings: string[]): Promise<HeldGroup[] | undefined> {
    if (!this.deps.worker) return []
    try {
      return await this.deps.worker.held()
    } catch (error) {
      warnings.unshift((error as Error).message)
      return undefined
    }
  }

  /**
   * Reads every retry partition from the worker's committed offset (everything it has not resolved yet) to
   * its end, and notes which ids have a retry record there.
   */
  private async scanRetry(warnings: string[]): Promise<{ ids: Map<string, RetrySeen>; committed: Map<string, bigint> }> {
    const { log, scope } = this.deps
    const ids = new Map<string, RetrySeen>()
    const committed = new Map<string, bigint>()
    const ranges: PartitionRange[] = []
    for (const topics of scope.topics.values()) {
      const bounds = await log.bounds(topics.retry)
      if (bounds === undefined) {
        warnings.push(`The retry topic ${topics.retry} does not exist: pending ids of ${topics.source} have no retry records`)
        continue
      }
      const commits = await log.committedOffsets(scope.workerGroupId, topics.retry)
      for (const [partition, bound] of bounds) {
        const from = commits.get(partition)
        if (from !== undefined) committed.set(topicPartitionKey(topics.source, partition), from)
        const start = from !== undefined && from > bound.low ? from : bound.low
        ranges.push({ topic: topics.retry, partition, from: start, to: bound.high })
      }
    }
    const outcomes = await log.read(ranges, (record) => {
      const id = headerString(record.headers, DetourHeaders.ID)
      if (id === undefined || ids.has(id)) return
      const errorName = headerString(record.headers, DetourHeaders.ERROR_NAME)
      const errorMessage = headerString(record.headers, DetourHeaders.ERROR_MESSAGE)
      ids.set(id, { offset: record.offset, ...(errorName !== undefined ? { errorName } : {}), ...(errorMessage !== undefined ? { errorMessage } : {}) })
    })
    for (const outcome of outcomes) {
      if (!outcome.complete) warnings.push(`${outcome.topic}/${outcome.partition} could not be read to its end: some ids may show no-retry-record`)
    }
    return { ids, committed }
  }
}

import { groupKeyToStoreKey, topicPartitionKey, type GroupStore, type Logger, type RetryEnvelope, type WaitOptions } from '@detour/core'
import { WorkAbortedError, isAbortError, sleep } from './abort.js'
import type { ResolutionCheck } from './retry-processor.js'

/** The part of core's `RedirectFollower` that durable resolution uses. */
export interface ResolutionFollower {
  readonly running: boolean
  start(): Promise<void>
  stop(): Promise<void>
  /** Resolves once the follower has applied the redirect partition up to `target` (exclusive). */
  waitForPosition(sourceTopic: string, partition: number, target: bigint, options?: WaitOptions): Promise<void>
  /** The next offset of the redirect partition to apply. */
  position(sourceTopic: string, partition: number): bigint
}

export interface ResolutionOptions {
  readonly follower: ResolutionFollower
  /**
   * Appends a barrier record (core `buildBarrierRecord`) to the redirect partition of this source partition
   * and returns its offset, once acknowledged.
   */
  readonly writeBarrier: (sourceTopic: string, partition: number) => Promise<bigint>
  /** The follower's store: pending ids by source partition and group. */
  readonly store: GroupStore
  readonly logger: Logger
  /** Delay before a failed barrier is tried again. @defaultValue 500 ms, doubling to 5 s */
  readonly retryDelayMs?: (attempt: number) => number
  /** A barrier that takes longer is logged and taken again (the follower may be restarting). @defaultValue 30000 */
  readonly barrierTimeoutMs?: number
}

/**
 * Durable resolution: whether a retry record still has work to do is read from the redirect topic, not
 * remembered. A core `RedirectFollower` (a private consumer group reading the redirect topics
 * `read_committed`) applies redirect records (pending) and tombstones (released) to a `GroupStore`; a retry
 * record is attempted only while its id is pending. That survives restarts, rebalances and duplicates: an
 * id resolved before (by this worker, a previous owner, or an operator) is never run again.
 *
 * - {@link barrier}: taken after a batch is fetched, it waits until everything written to the redirect
 *   partition before that moment is decided and applied. It appends a barrier record and waits until the
 *   follower passes it: reading `read_committed`, the follower passes it only once every hand-off
 *   transaction open at that moment is committed or aborted. (The last stable offset would not do: a
 *   retry record is visible as soon as the retry partition's commit marker is written, and the redirect
 *   partition's marker — with the record that makes its id pending — may come later, e.g. while that
 *   partition's leader restarts. A tombstone written after an open transaction is hidden the same way.)
 *   After the barrier the store knows the record's id, and every tombstone written before the fetch.
 * - This worker's own tombstones are known at once ({@link resolved}): a second copy of an id queued
 *   behind the first must not run before the follower reads the tombstone back. Each is forgotten once the
 *   follower's position passes it.
 */
export class Resolution implements ResolutionCheck {
  /** Ids this worker tombstoned that the follower has not applied yet: partition key → id → tombstone offset. */
  private readonly recent = new Map<string, Map<string, bigint>>()

  constructor(private readonly options: ResolutionOptions) {}

  get running(): boolean {
    return this.options.follower.running
  }

  start(): Promise<void> {
    return this.options.follower.start()
  }

  stop(): Promise<void> {
    return this.options.follower.stop()
  }

  /**
   * Resolves once the follower has applied everything written to the redirect partition of
   * `sourceTopic`/`partition` before the call (see the class comment). Concurrent callers of one partition
   * share a barrier record; a caller arriving while one is being written waits for the next. A failed
   * barrier (the write, the follower restarting) is tried again; only `signal` ends it, always with a
   * `WorkAbortedError` (never the failure that happened to be in progress).
   */
  async barrier(sourceTopic: string, partition: number, signal: AbortSignal): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const offset = await this.barrierOffset(sourceTopic, partition)
        await this.options.follower.waitForPosition(sourceTopic, partition, offset + 1n, { signal, timeoutMs: this.options.barrierTimeoutMs ?? 30_000 })
        return
      } catch (error) {
        // Revoked or stopping: whatever failed meanwhile (a write to a partition whose leader is down) is no
        // longer this caller's problem, and must not be reported as if the record's group were stuck.
        if (signal.aborted) throw new WorkAbortedError()
        if (isAbortError(error)) throw error
        const delayMs = this.options.retryDelayMs?.(attempt) ?? Math.min(5000, 500 * 2 ** (attempt - 1))
        this.options.logger.warn('Waiting for the redirect follower failed; trying again (no attempt starts before it)', {
          topic: sourceTopic,
          partition,
          attempt,
          delayMs,
          error,
        })
        await sleep(delayMs, signal)
      }
    }
  }

  /** Barrier records being written, per partition: the one in flight, and the next (fresh for later callers). */
  private readonly writes = new Map<string, { inFlight?: Promise<bigint>; next?: Promise<bigint> }>()

  private barrierOffset(sourceTopic: string, partition: number): Promise<bigint> {
    const key = topicPartitionKey(sourceTopic, partition)
    let state = this.writes.get(key)
    if (!state) {
      state = {}
      this.writes.set(key, state)
    }
    const slot = state
    const start = (): Promise<bigint> => {
      const write = this.options.writeBarrier(sourceTopic, partition)
      slot.inFlight = write
      const clear = (): void => {
        if (slot.inFlight === write) slot.inFlight = undefined
      }
      write.then(clear, clear)
      return write
    }
    if (slot.next) return slot.next
    if (!slot.inFlight) return start()
    const next = slot.inFlight
      .then(
        () => undefined,
        () => undefined,
      )
      .then(() => {
        if (slot.next === next) slot.next = undefined
        return start()
      })
    slot.next = next
    return next
  }

  isPending(envelope: RetryEnvelope): boolean {
    const { topic, partition } = envelope.source
    if (this.recent.get(topicPartitionKey(topic, partition))?.has(envelope.id)) return false
    return this.options.store.isPending(topic, partition, groupKeyToStoreKey(envelope.groupKey, envelope.id), envelope.id)
  }

  resolved(envelope: RetryEnvelope, tombstoneOffset: bigint | undefined): void {
    const { topic, partition } = envelope.source
    // Without an offset, keep it until the follower passes whatever it has read now: the tombstone is later.
    const offset = tombstoneOffset ?? this.options.follower.position(topic, partition)
    if (this.options.follower.position(topic, partition) > offset) return
    const key = topicPartitionKey(topic, partition)
    let ids = this.recent.get(key)
    if (!ids) {
      ids = new Map()
      this.recent.set(key, ids)
    }
    ids.set(envelope.id, offset)
  }

  /** The follower's position advanced: forget own tombstones it has applied. Wire to its `onProgress`. */
  progressed(sourceTopic: string, partition: number, position: bigint): void {
    const key = topicPartitionKey(sourceTopic, partition)
    const ids = this.recent.get(key)
    if (!ids) return
    for (const [id, offset] of ids) if (offset < position) ids.delete(id)
    if (ids.size === 0) this.recent.delete(key)
  }

  /** Own tombstones not applied by the follower yet (diagnostics). */
  get unapplied(): number {
    let count = 0
    for (const ids of this.recent.values()) count += ids.size
    return count
  }
}

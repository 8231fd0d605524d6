import { setMaxListeners } from 'node:events'
import { linkAbort } from './abort.js'
import { Fifo } from './fifo.js'
import type { RetryEntry } from './retry-entry.js'
import { WorkTracker } from './work-tracker.js'

export interface SchedulerCallbacks {
  /**
   * Starts work on an entry that just became the head of its group (every earlier entry of the group
   * is resolved). Called once per entry, synchronously; the work runs in the background and ends with
   * {@link PartitionScheduler.resolve} or {@link PartitionScheduler.hold}.
   */
  start(entry: RetryEntry, scheduler: PartitionScheduler): void
}

/** The signals work on a partition's entries obeys. */
export interface PartitionSignals {
  /** No new attempt starts once aborted (backoff and gate waits end). */
  readonly soft: AbortSignal
  /** Aborted to ask running handlers to stop (their `signal`): a revocation, or a stop that gives up waiting. */
  readonly attempts: AbortSignal
  /** Writes in progress are abandoned once aborted. */
  readonly hard: AbortSignal
}

/** Where a partition is in its life on this worker. */
export type PartitionPhase = 'active' | 'revoking' | 'dropped'

/**
 * The ordering state of one retry partition.
 *
 * - Per-group order: each group (group key) has a FIFO of entries; only its head is worked on. A later
 *   entry of the group starts when the head is resolved. Different groups run concurrently.
 * - Commit rule: the committable offset is the lowest unresolved offset of the partition, or the last
 *   offset seen + 1 when everything is resolved. A held or in-flight entry therefore pins the commit,
 *   and a restart begins at it (durable resolution skips what was resolved after it).
 * - Offsets are compared as BigInt; records at or below an offset already seen are ignored (kafkajs
 *   fetches again from the committed offset after every rebalance, even for partitions it kept).
 * - Life: `active` → `revoking` (taken away: no new records, no new attempts, running handlers are asked
 *   to stop, but what they finish is still resolved, so the hand-over commit is exact) → `dropped`.
 */
export class PartitionScheduler {
  /** Handlers and their writes on this partition (settled before the partition is handed over). */
  readonly work = new WorkTracker()
  private readonly soft = new AbortController()
  private readonly attempts = new AbortController()
  private readonly hard = new AbortController()
  private readonly log = new Fifo<RetryEntry>()
  private readonly groups = new Map<string, Fifo<RetryEntry>>()
  private nextOffset: bigint | undefined
  private unresolved = 0
  /** Unresolved entries of held groups (the held head and everything queued behind it). */
  private blockedCount = 0
  private currentPhase: PartitionPhase = 'active'
  private readonly unlink: Array<() => void> = []

  /**
   * @param parent - the worker's signals: aborting one aborts this partition's signal of the same name.
   */
  constructor(
    readonly topic: string,
    readonly partition: number,
    private readonly callbacks: SchedulerCallbacks,
    parent?: Partial<PartitionSignals>,
  ) {
    // Every waiting group (backoff timer, concurrency slot, running handler) listens to these: thousands is normal.
    setMaxListeners(0, this.soft.signal, this.attempts.signal, this.hard.signal)
    if (parent?.soft) this.unlink.push(linkAbort(parent.soft, this.soft))
    if (parent?.attempts) this.unlink.push(linkAbort(parent.attempts, this.attempts))
    if (parent?.hard) this.unlink.push(linkAbort(parent.hard, this.hard))
  }

  get signals(): PartitionSignals {
    return { soft: this.soft.signal, attempts: this.attempts.signal, hard: this.hard.signal }
  }

  get phase(): PartitionPhase {
    return this.currentPhase
  }

  /** Unresolved entries (queued, active or held). */
  get buffered(): number {
    return this.unresolved
  }

  /**
   * Unresolved entries that cannot make progress until an operator releases a held group: each held
   * entry and the entries of its group queued behind it. Backpressure must not wait for them to drain.
   */
  get blocked(): number {
    return this.blockedCount
  }

  /** Whether {@link add} would take a record at this offset. */
  accepts(offset: string): boolean {
    return this.currentPhase === 'active' && (this.nextOffset === undefined || BigInt(offset) >= this.nextOffset)
  }

  /**
   * Adds the next record of the partition. Returns false (and ignores it) when its offset is not
   * beyond every offset seen so far, or the partition is no longer active.
   */
  add(entry: RetryEntry): boolean {
    if (this.currentPhase !== 'active') return false
    const offset = BigInt(entry.offset)
    if (this.nextOffset !== undefined && offset < this.nextOffset) return false
    this.nextOffset = offset + 1n
    this.log.push(entry)
    this.unresolved++
    const queue = this.groups.get(entry.groupKey)
    if (queue) {
      queue.push(entry)
      if (queue.peek()?.state === 'held') this.blockedCount++
      return true
    }
    const fresh = new Fifo<RetryEntry>()
    fresh.push(entry)
    this.groups.set(entry.groupKey, fresh)
    this.activate(entry)
    return true
  }

  /**
   * Marks the head of a group resolved (its tombstone or dead letter is acknowledged) and starts the
   * group's next entry (which, on a revoking partition, ends at once). Returns false when the partition
   * was dropped or the entry is not the active (or held) head of its group.
   */
  resolve(entry: RetryEntry): boolean {
    if (this.currentPhase === 'dropped' || entry.state === 'resolved') return false
    const queue = this.groups.get(entry.groupKey)
    if (queue?.peek() !== entry) return false
    if (entry.state === 'held') this.blockedCount -= queue.length
    entry.state = 'resolved'
    this.unresolved--
    queue.shift()
    const next = queue.peek()
    if (next === undefined) this.groups.delete(entry.groupKey)
    while (this.log.peek()?.state === 'resolved') this.log.shift()
    if (next !== undefined) this.activate(next)
    return true
  }

  /** Marks the head of a group held: it stays unresolved and the group waits. */
  hold(entry: RetryEntry): boolean {
    if (this.currentPhase !== 'active' || entry.state !== 'active') return false
    const queue = this.groups.get(entry.groupKey)
    if (queue?.peek() !== entry) return false
    entry.state = 'held'
    this.blockedCount += queue.length
    return true
  }

  /** The offset to commit: the lowest unresolved offset, or last seen + 1. `undefined` before any record. */
  commitOffset(): string | undefined {
    if (this.nextOffset === undefined) return undefined
    return this.log.peek()?.offset ?? this.nextOffset.toString()
  }

  /** Entries of a group, head first (diagnostics and tests). */
  groupEntries(groupKey: string): RetryEntry[] {
    return [...(this.groups.get(groupKey) ?? [])]
  }

  /**
   * The partition was taken away: no more records, no new attempts, running handlers are asked to stop
   * (their `signal` aborts). What they still finish is resolved, so the hand-over commit is exact. Call
   * {@link drop} once {@link work} has settled (or the wait for it gave up).
   */
  revoke(): void {
    if (this.currentPhase !== 'active') return
    this.currentPhase = 'revoking'
    this.soft.abort()
    this.attempts.abort()
  }

  /** Stops all work of the partition (writes included). Returns the unresolved entries. */
  drop(): RetryEntry[] {
    if (this.currentPhase === 'dropped') return []
    this.currentPhase = 'dropped'
    this.soft.abort()
    this.attempts.abort()
    this.hard.abort()
    for (const unlink of this.unlink.splice(0)) unlink()
    const left = [...this.log].filter((entry) => entry.state !== 'resolved')
    this.groups.clear()
    this.unresolved = 0
    this.blockedCount = 0
    return left
  }

  private activate(entry: RetryEntry): void {
    entry.state = 'active'
    this.callbacks.start(entry, this)
  }
}

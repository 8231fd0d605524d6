import { setMaxListeners } from 'node:events'
import { Fifo } from './fifo.js'
import type { RetryEntry } from './retry-entry.js'

export interface SchedulerCallbacks {
  /**
   * Starts work on an entry that just became the head of its group (every earlier entry of the group
   * is resolved). Called once per entry, synchronously; the work runs in the background and ends with
   * {@link PartitionScheduler.resolve} or {@link PartitionScheduler.hold}.
   */
  start(entry: RetryEntry, scheduler: PartitionScheduler): void
}

/**
 * The ordering state of one retry partition.
 *
 * - Per-group order: each group (group key) has a FIFO of entries; only its head is worked on. A later
 *   entry of the group starts when the head is resolved. Different groups run concurrently.
 * - Commit rule: the committable offset is the lowest unresolved offset of the partition, or the last
 *   offset seen + 1 when everything is resolved. A held or in-flight entry therefore pins the commit,
 *   and a restart begins at it.
 * - Offsets are compared as BigInt; records at or below an offset already seen are ignored (kafkajs
 *   fetches again from the committed offset after every rebalance, even for partitions it kept).
 */
export class PartitionScheduler {
  /** Aborted when the partition is revoked or the worker stops: no new attempts. */
  readonly soft = new AbortController()
  /** Aborted when the partition is revoked or shutdown times out: abandon writes too. */
  readonly hard = new AbortController()
  /** The offset committed last for this partition. */
  committedOffset: string | undefined
  private readonly log = new Fifo<RetryEntry>()
  private readonly groups = new Map<string, Fifo<RetryEntry>>()
  private nextOffset: bigint | undefined
  private unresolved = 0
  /** Unresolved entries of held groups (the held head and everything queued behind it). */
  private blockedCount = 0
  private dropped = false

  private readonly unlink: Array<() => void> = []

  /**
   * @param parent - the worker's signals: aborting them aborts this partition's {@link soft} / {@link hard}.
   */
  constructor(
    readonly topic: string,
    readonly partition: number,
    private readonly callbacks: SchedulerCallbacks,
    parent?: { readonly soft: AbortSignal; readonly hard: AbortSignal },
  ) {
    // Every waiting group (backoff timer, concurrency slot) listens to these signals: thousands is normal.
    setMaxListeners(0, this.soft.signal, this.hard.signal)
    if (parent) {
      this.link(parent.soft, this.soft)
      this.link(parent.hard, this.hard)
    }
  }

  /** The signals work on this partition's entries obeys. */
  get signals(): { readonly soft: AbortSignal; readonly hard: AbortSignal } {
    return { soft: this.soft.signal, hard: this.hard.signal }
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

  get isDropped(): boolean {
    return this.dropped
  }

  /**
   * Adds the next record of the partition. Returns false (and ignores it) when its offset is not
   * beyond every offset seen so far, or the partition was dropped.
   */
  add(entry: RetryEntry): boolean {
    if (this.dropped) return false
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
   * group's next entry. Returns false when the partition was dropped or the entry is not the active
   * head of its group.
   */
  resolve(entry: RetryEntry): boolean {
    if (this.dropped || entry.state === 'resolved') return false
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
    if (this.dropped || entry.state !== 'active') return false
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

  /** Stops all work of the partition (revoked, or the worker stopped). Returns the unresolved entries. */
  drop(): RetryEntry[] {
    if (this.dropped) return []
    this.dropped = true
    this.soft.abort()
    this.hard.abort()
    for (const unlink of this.unlink) unlink()
    const left = [...this.log].filter((entry) => entry.state !== 'resolved')
    this.groups.clear()
    this.unresolved = 0
    this.blockedCount = 0
    return left
  }

  private link(parent: AbortSignal, child: AbortController): void {
    if (parent.aborted) {
      child.abort()
      return
    }
    const onAbort = (): void => child.abort()
    parent.addEventListener('abort', onAbort, { once: true })
    this.unlink.push(() => parent.removeEventListener('abort', onAbort))
  }

  private activate(entry: RetryEntry): void {
    entry.state = 'active'
    this.callbacks.start(entry, this)
  }
}

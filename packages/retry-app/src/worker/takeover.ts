import type { Logger } from '@detour/core'
import { WorkAbortedError, isAbortError, sleep } from './abort.js'
import { parseOwnerMetadata } from './owner-metadata.js'
import type { CommittedOffset, WorkerAdmin } from './worker-admin.js'

export interface TakeoverOptions {
  readonly admin: Pick<WorkerAdmin, 'committedOffsets'>
  /** This worker instance (as named in its commits' metadata). */
  readonly instanceId: string
  /** The previous owner gets this long (+ {@link graceMs}) to let its handlers settle and commit `released`. */
  readonly handlerTimeoutMs: number
  /** @defaultValue 2000 */
  readonly graceMs?: number
  /** How often the committed metadata is read while waiting. @defaultValue 500 */
  readonly pollIntervalMs?: number
  readonly logger: Logger
  readonly now?: () => number
}

/** How a newly assigned partition may start. */
export type TakeoverResult =
  /** At once: never committed, committed by this instance, or released by the previous owner. */
  | { readonly waited: false; readonly committed: CommittedOffset | undefined }
  /** After waiting for the previous owner (`active` in the committed metadata) to commit `released`, or for the timeout. */
  | { readonly waited: true; readonly outcome: 'released' | 'timeout'; readonly previousOwner: string; readonly waitedMs: number; readonly committed: CommittedOffset | undefined }

/**
 * The hand-over of a retry partition between worker instances. A rebalance revokes a partition from its
 * old owner while that owner's handlers (and a tombstone in flight) may still run; if the new owner started
 * at once, one group would run on two instances and the old owner's late result could land after the new
 * owner processed the next record of the key.
 *
 * So the old owner commits `state=released` once its handlers have settled, and a new owner reads the
 * committed metadata first: it starts at once when there is none (never committed), when it names this
 * instance, or when it says `released`; otherwise it polls until `released` appears or `handlerTimeoutMs`
 * + 2 s have passed (the old owner gives up waiting for its handlers after `handlerTimeoutMs`). Records
 * fetched meanwhile are buffered, not started.
 *
 * A regressed commit (the old owner committing a lower offset after the new owner went on) is harmless:
 * durable resolution skips every record whose id was resolved already.
 *
 * **Late releases.** The committed metadata is last-writer-wins, and the broker does not check who owns a
 * partition: a previous owner's `released` commit can land after the next owner claimed the partition (the
 * next owner gave up waiting, and the release was retried by kafkajs or delayed by a coordinator move).
 * Three rules keep such a write from letting a third instance start while the claiming owner still works:
 * - an owner commits `released` only if the committed metadata still names it (the hand-over reads it
 *   first): once another owner claimed the partition, its release would overwrite that claim;
 * - the holder re-commits its `active` claim periodically even when its offset did not change (the commit
 *   loop's re-assertion), so an overwritten claim is restored within that interval;
 * - here, a `released` counts only when it is by the owner this wait saw `active` (or when no active owner
 *   was seen): a release by anyone else is a stale write, and the wait goes on for the owner it saw.
 */
export class Takeover {
  private readonly graceMs: number
  private readonly pollIntervalMs: number
  private readonly now: () => number

  constructor(private readonly options: TakeoverOptions) {
    this.graceMs = options.graceMs ?? 2000
    this.pollIntervalMs = options.pollIntervalMs ?? 500
    this.now = options.now ?? Date.now
  }

  /** Resolves when the partition may start here; rejects with a `WorkAbortedError` when `signal` aborts (revoked, stopping). */
  async whenFree(topic: string, partition: number, signal: AbortSignal): Promise<TakeoverResult> {
    const started = this.now()
    const deadline = started + this.options.handlerTimeoutMs + this.graceMs
    let previousOwner: string | undefined
    let committed: CommittedOffset | undefined
    let staleReleaseLogged = false
    for (;;) {
      let readable = true
      try {
        committed = (await this.options.admin.committedOffsets(topic)).get(partition)
      } catch (error) {
        // Revoked or stopping: a `WorkAbortedError`, not the read error that happened to be in progress.
        if (signal.aborted) throw new WorkAbortedError()
        if (isAbortError(error)) throw error
        readable = false
        this.options.logger.warn('Cannot read the committed offset metadata of a newly assigned partition; trying again', { topic, partition, error })
      }
      if (readable) {
        const owner = committed === undefined || committed.offset === '-1' ? undefined : parseOwnerMetadata(committed.metadata)
        // A release by another owner than the one seen active is a late write of an older owner (see the class comment).
        const released = owner?.state === 'released' && (previousOwner === undefined || owner.owner === previousOwner)
        const free = owner === undefined || owner.owner === this.options.instanceId || released
        if (owner?.state === 'released' && !released && !staleReleaseLogged) {
          staleReleaseLogged = true
          this.options.logger.info('Ignoring a release by an older owner of the partition; still waiting for the owner that claimed it', {
            topic,
            partition,
            releasedBy: owner.owner,
            previousOwner,
          })
        }
        if (free && previousOwner === undefined) return { waited: false, committed }
        if (free) return { waited: true, outcome: 'released', previousOwner: previousOwner ?? '(unknown)', waitedMs: this.now() - started, committed }
        if (previousOwner === undefined && owner !== undefined) {
          previousOwner = owner.owner
          this.options.logger.info('Partition still active on its previous owner; waiting for it to release the partition before starting', {
            topic,
            partition,
            previousOwner,
            maxWaitMs: deadline - started,
          })
        }
      }
      const left = deadline - this.now()
      if (left <= 0) {
        this.options.logger.warn('The previous owner did not release the partition in time; starting anyway', {
          topic,
          partition,
          previousOwner: previousOwner ?? '(unknown)',
          waitedMs: this.now() - started,
        })
        return { waited: true, outcome: 'timeout', previousOwner: previousOwner ?? '(unknown)', waitedMs: this.now() - started, committed }
      }
      await sleep(Math.min(this.pollIntervalMs, left), signal)
    }
  }
}

import type { KafkaMessage } from 'kafkajs'
import type { DeadLetterReason, DetourTopics, GroupKey, RedirectReason, SourceCoordinates } from '@detour/core'

/** Everything a write of the main app needs about the source message. */
export interface HandOffContext {
  readonly topics: DetourTopics
  readonly source: SourceCoordinates
  readonly message: KafkaMessage
  readonly id: string
  readonly groupKey: GroupKey
  /** The main app's consumer group. */
  readonly consumerGroup: string
}

/**
 * How the main app writes a hand-off:
 * - `transactional` (the default): the redirect record, the retry record and the source offset in one Kafka
 *   transaction, with one transactional id per source partition. A new owner of the partition initialises
 *   that id before it reads the redirect partition, which fences the previous owner and settles its open
 *   transaction: an evicted instance can no longer hand off late, and a hand-off whose acknowledgement was
 *   lost is committed or aborted, never half-written.
 * - `sequential`: the redirect record (acknowledged), then the retry record; no transactions (for clusters
 *   without them). An unknown outcome still sends the partition back behind its barrier, but an evicted
 *   instance is not fenced (see docs/ARCHITECTURE.md, "Fencing").
 */
export type HandOffMode = 'transactional' | 'sequential'

/** The outcome of a redirect that the broker refused for the record's size (it can never be written). */
export interface TooLarge {
  readonly kind: 'too-large'
  /** The redirect record was written (sequential mode): the id is pending and must be released. */
  readonly redirectWritten: boolean
  readonly error: unknown
}

export type RedirectOutcome = { readonly kind: 'redirected' } | TooLarge

/** One hand-off of a batch: a redirect (the redirect record and the retry record) or a resume (the retry record). */
export interface PlannedHandOff {
  readonly ctx: HandOffContext
  readonly kind: 'redirect' | 'resume'
  readonly reason: RedirectReason
  readonly error: unknown
}

/**
 * The writes of the main app. Every write waits for the broker's acknowledgement (acks=all).
 *
 * Failures: a write whose outcome is unknown throws `DetourHandOffError` (retriable): the caller sends the
 * partition back behind its barrier, and kafkajs delivers the message again. A fenced producer throws
 * `DetourFencedError`: another instance owns the partition now. A record too large for the broker is an
 * outcome, not an error ({@link TooLarge}): retrying could never help.
 */
export interface HandOff {
  readonly mode: HandOffMode
  start(): Promise<void>
  /**
   * Becomes the writer of a source partition. Transactional: creates the partition's producer and
   * initialises its transactional id, which fences the previous owner's producer and settles its open
   * transaction (committed or aborted). Called at every assignment, and again after a failed write.
   */
  claim(topic: string, partition: number): Promise<void>
  /** True when the partition's writes can go ahead without a new claim. */
  isClaimed(topic: string, partition: number): boolean
  /** Forgets a partition (revoked, or its writer broke). */
  release(topic: string, partition: number): Promise<void>
  /**
   * The id becomes pending and the message goes to the retry topic. `onPending` runs once the id is
   * durably pending (transaction committed; redirect record acknowledged) — the caller then records it.
   * Transactional: it gets the offset the redirect record landed at. The retry record became readable
   * with the commit, so the worker may already have retried it and the follower applied its tombstone:
   * once the follower is past that offset, the store already holds the truth (pending or released), and
   * recording the id would make a released id pending forever.
   */
  redirect(ctx: HandOffContext, reason: RedirectReason, error: unknown, onPending: (redirectBaseOffset?: string) => void): Promise<RedirectOutcome>
  /** The id is pending already (a hand-off whose retry record may be missing): writes the retry record again. */
  resume(ctx: HandOffContext, reason: RedirectReason, error: unknown): Promise<RedirectOutcome>
  /**
   * Several hand-offs of one source partition, in their order: one transaction for all of them and the
   * source offset `nextOffset` (transactional), or every redirect record (acknowledged) before every retry
   * record (sequential). `onPending` runs once the redirect records are durably pending (transaction
   * committed; redirect records acknowledged), before any retry record can be read. Too large as a whole:
   * nothing is written (transactional), or the redirect records only when `redirectWritten` says so
   * (sequential); the caller then hands them off one by one.
   */
  handOffMany(plans: readonly PlannedHandOff[], nextOffset: string, onPending: (redirectBaseOffset?: string) => void): Promise<{ readonly kind: 'redirected' } | TooLarge>
  /** The message goes to the error topic (without its value when too large). */
  deadLetter(ctx: HandOffContext, reason: DeadLetterReason, error: unknown, attempts: number): Promise<void>
  /** Releases an id whose retry record can never be written (the main app's only tombstone). */
  tombstone(ctx: HandOffContext): Promise<void>
  stop(): Promise<void>
}

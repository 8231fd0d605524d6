import { topicPartitionKey, type Logger } from '@detour/core'
import { formatOwnerMetadata, type OwnerState } from './owner-metadata.js'

/** The part of a kafkajs `Consumer` that commits (a stand-in in unit tests). */
export interface CommitClient {
  /** kafkajs `consumer.commitOffsets` (offset metadata included). */
  commitOffsets(offsets: Array<{ topic: string; partition: number; offset: string; metadata: string }>): Promise<void>
  /** Subscribes to kafkajs' `COMMIT_OFFSETS` event (emitted once the broker stored a commit); returns the unsubscribe function. */
  onCommitted(listener: () => void): () => void
}

export interface CommitTarget {
  readonly topic: string
  readonly partition: number
  readonly offset: string
  /** `released`: the partition is handed over and its handlers have settled. */
  readonly state: OwnerState
}

/**
 * - `committed`: the broker stored the offsets;
 * - `not-running`: kafkajs returned without committing (its consumer is not running: being restarted or taken down);
 * - `failed`: the commit request failed (`error`: kafkajs' error).
 */
export type CommitResult = { readonly kind: 'committed' } | { readonly kind: 'not-running' } | { readonly kind: 'failed'; readonly error: unknown }

/**
 * Commits retry offsets with the owner metadata (`detour:owner=<instanceId>;state=active|released`), one
 * commit at a time (a `released` commit must never be overtaken by an older `active` one), and remembers
 * what it committed so that unchanged offsets are not committed again.
 *
 * kafkajs' `commitOffsets()` resolves without committing anything while its consumer is not running (it
 * crashed and is being restarted): only its `COMMIT_OFFSETS` event says that the broker stored the offsets.
 */
export class OffsetCommitter {
  private readonly last = new Map<string, { offset: string; state: OwnerState; at: number }>()
  private chain: Promise<unknown> = Promise.resolve()

  constructor(
    private readonly client: CommitClient,
    private readonly instanceId: string,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** The offset this worker committed last for the partition (since it was assigned here). */
  committedOffset(topic: string, partition: number): string | undefined {
    return this.last.get(topicPartitionKey(topic, partition))?.offset
  }

  /**
   * The targets whose offset or state differ from what was committed last, and (`reassertAfterMs`) the ones
   * committed longer ago than that: the holder re-asserts its `active` claim, because a late `released`
   * commit of a previous owner may have overwritten it (see {@link Takeover}).
   */
  changed(targets: Iterable<CommitTarget>, reassertAfterMs = Number.POSITIVE_INFINITY): CommitTarget[] {
    const out: CommitTarget[] = []
    const now = this.now()
    for (const target of targets) {
      const last = this.last.get(topicPartitionKey(target.topic, target.partition))
      if (last?.offset !== target.offset || last.state !== target.state || now - last.at >= reassertAfterMs) out.push(target)
    }
    return out
  }

  /** Forgets a partition (revoked and released). */
  forget(topic: string, partition: number): void {
    this.last.delete(topicPartitionKey(topic, partition))
  }

  /** Forgets everything: after a group join, kafkajs may have dropped commits while it restarted; commit them again. */
  forgetAll(): void {
    this.last.clear()
  }

  /** Commits `targets` (after any commit in progress). A failure is returned, never thrown. */
  commit(targets: readonly CommitTarget[]): Promise<CommitResult> {
    const next = this.chain.then(() => this.commitNow(targets))
    this.chain = next
    return next
  }

  private async commitNow(targets: readonly CommitTarget[]): Promise<CommitResult> {
    if (targets.length === 0) return { kind: 'committed' }
    const offsets = targets.map(({ topic, partition, offset, state }) => ({ topic, partition, offset, metadata: formatOwnerMetadata(this.instanceId, state) }))
    let stored = false
    const stopListening = this.client.onCommitted(() => {
      stored = true
    })
    try {
      await this.client.commitOffsets(offsets)
    } catch (error) {
      this.logger.debug('Committing retry offsets failed', { offsets, error })
      return { kind: 'failed', error }
    } finally {
      stopListening()
    }
    if (!stored) return { kind: 'not-running' }
    const at = this.now()
    for (const { topic, partition, offset, state } of targets) this.last.set(topicPartitionKey(topic, partition), { offset, state, at })
    return { kind: 'committed' }
  }
}

import type { KafkaMessage } from 'kafkajs'
import {
  DetourFencedError,
  DetourHandOffError,
  DetourStoppingError,
  classifyError,
  groupKeyToStoreKey,
  isRebalanceError,
  messageId,
  resolveGroupKey,
  type BackoffFn,
  type ErrorClassifier,
  type GroupKey,
  type GroupKeyFn,
  type GroupStore,
} from '@detour/core'

/** The id and ordering group of a message. */
export interface RoutingKey {
  readonly id: string
  readonly groupKey: GroupKey
  /** The group's key in the group store. */
  readonly storeKey: string
}

/** What to do with a message before its handler runs. */
export type BeforeHandler =
  /** Nothing of its group is pending: run the handler. `key` is computed only when the partition has pending ids. */
  | { readonly kind: 'process'; readonly key: RoutingKey | undefined }
  /** Its group has pending ids: it goes behind them. */
  | { readonly kind: 'redirect'; readonly key: RoutingKey }
  /** Its own id is pending: a hand-off of this very message happened before (its retry record may be missing). */
  | { readonly kind: 'resume'; readonly key: RoutingKey }
  /** The group-key function failed: the message cannot be routed. */
  | { readonly kind: 'dead-letter'; readonly reason: 'unprocessable'; readonly error: unknown }
  /**
   * A later message of its group in this partition is pending: this one was decided before (processed,
   * dead-lettered or handed off and released), and kafkajs delivered it again after its position went back
   * (a replayed batch, a committed offset that regressed). Processing or redirecting it again would replay it
   * after the later one: it is skipped.
   */
  | { readonly kind: 'skip'; readonly key: RoutingKey }

/** What to do after the handler failed. */
export type AfterFailure =
  /** Hand the error back to kafkajs (a rebalance, a failed hand-off, a stop): the message is delivered again. */
  | { readonly kind: 'rethrow'; readonly error: unknown }
  | { readonly kind: 'retry-in-place'; readonly delayMs: number }
  | { readonly kind: 'redirect'; readonly reason: 'failure' }
  | { readonly kind: 'dead-letter'; readonly reason: 'unprocessable' | 'deserialization' }

export interface MessageRouterSettings {
  readonly groupKey: GroupKeyFn
  readonly classify: ErrorClassifier | undefined
  readonly inPlaceRetries: number
  readonly inPlaceBackoff: BackoffFn
}

/**
 * Decides, per message, between "process", "redirect behind pending ids", "resume a hand-off" and
 * "dead-letter", and after a failure between "hand back to kafkajs", "retry in place", "redirect" and
 * "dead-letter". It only decides: `MessageProcessor` runs handlers and `HandOff` writes.
 */
export class MessageRouter {
  constructor(
    private readonly settings: MessageRouterSettings,
    private readonly store: GroupStore,
  ) {}

  routingKey(topic: string, partition: number, message: KafkaMessage): RoutingKey {
    const id = messageId({ topic, partition, offset: message.offset })
    const groupKey = resolveGroupKey(this.settings.groupKey, message, topic, partition)
    return { id, groupKey, storeKey: groupKeyToStoreKey(groupKey, id) }
  }

  /**
   * `gathered`: hand-offs decided in this batch but not written yet (eachBatch), which count as pending for
   * the batch's later messages.
   */
  beforeHandler(topic: string, partition: number, message: KafkaMessage, gathered?: GroupStore): BeforeHandler {
    const store = this.store
    // The id and group key are needed only when the partition has pending ids (or the message fails).
    if (store.partitionPending(topic, partition) === 0 && (gathered === undefined || gathered.partitionPending(topic, partition) === 0)) {
      return { kind: 'process', key: undefined }
    }
    let key: RoutingKey
    try {
      key = this.routingKey(topic, partition, message)
    } catch (error) {
      return { kind: 'dead-letter', reason: 'unprocessable', error }
    }
    const pendingHere = store.hasPending(topic, partition, key.storeKey)
    if (pendingHere) {
      if (store.isPending(topic, partition, key.storeKey, key.id)) return { kind: 'resume', key }
      const highest = store.highestPendingOffset(topic, partition, key.storeKey)
      if (highest !== undefined && highest > BigInt(message.offset)) return { kind: 'skip', key }
      return { kind: 'redirect', key }
    }
    if (gathered?.hasPending(topic, partition, key.storeKey)) return { kind: 'redirect', key }
    return { kind: 'process', key }
  }

  /**
   * After the handler's `attempt`-th failure (1-based). `stopping`: no in-place retry starts once the
   * consumer or Detour stops.
   */
  afterFailure(error: unknown, attempt: number, stopping: boolean): AfterFailure {
    if (isRebalanceError(error) || error instanceof DetourHandOffError || error instanceof DetourFencedError || error instanceof DetourStoppingError) {
      return { kind: 'rethrow', error }
    }
    let kind
    try {
      kind = classifyError(error, this.settings.classify)
    } catch {
      // A classifier that throws is a bug in user code: the default rules decide.
      kind = classifyError(error)
    }
    if (kind !== 'transient') return { kind: 'dead-letter', reason: kind }
    if (attempt <= this.settings.inPlaceRetries && !stopping) return { kind: 'retry-in-place', delayMs: this.settings.inPlaceBackoff(attempt) }
    return { kind: 'redirect', reason: 'failure' }
  }
}

import type { EachBatchHandler, EachBatchPayload, EachMessageHandler, EachMessagePayload } from 'kafkajs'
import { DetourConfigError, DetourFencedError, DetourStoppingError, GroupStore, type RedirectReason } from '@detour/core'
import type { PlannedHandOff } from '../hand-off/hand-off.js'
import type { RoutingKey } from '../routing/message-router.js'
import type { HandOffSink, MessageProcessor } from './message-processor.js'

export interface BatchProcessorOptions {
  /** Hand-offs gathered before they are written (one transaction). @defaultValue 500 */
  readonly maxHandOffsPerTransaction?: number
}

interface Gathered {
  readonly plan: PlannedHandOff
  readonly payload: EachMessagePayload
  readonly key: RoutingKey
  /** The partition's ready ticket when the hand-off was decided: written only under the same ticket. */
  readonly ticket: number
}

/** The hand-offs of one batch run, not written yet, and their ids as pending (an overlay of the group store). */
class Pending {
  readonly items: Gathered[] = []
  /** Ids of gathered redirects: pending for the batch's later messages, never in the shared store before the write. */
  store = new GroupStore()

  get length(): number {
    return this.items.length
  }

  take(): Gathered[] {
    this.store = new GroupStore()
    return this.items.splice(0)
  }
}

/**
 * Runs a per-message handler over kafkajs batches. Hand-offs of one batch are gathered and written
 * together — one transaction with the source offset (transactional), or all redirect records before all
 * retry records (sequential) — instead of one round trip per message. Order holds as in `eachMessage`: a
 * gathered redirect makes its id pending in the batch's own overlay at once, so the batch's later
 * messages of that group are redirected behind it; the ids reach the shared group store only once the
 * hand-off says they are durably pending (never taken back from it: the follower may have applied them
 * from the broker meanwhile); offsets are resolved only once the writes are acknowledged. If the writes
 * fail, the overlay is dropped, the partition syncs again, and kafkajs delivers the batch again from its
 * first unresolved message (messages processed meanwhile are processed again, in order; messages decided before a later pending id of their group are skipped).
 *
 * A batch that is revoked or stopped midway throws (a retriable `DetourFencedError` or
 * `DetourStoppingError`): returning would let kafkajs resolve — and commit — the whole batch.
 */
export class BatchProcessor {
  private readonly maxHandOffs: number

  constructor(
    private readonly processor: MessageProcessor,
    options: BatchProcessorOptions = {},
  ) {
    this.maxHandOffs = options.maxHandOffsPerTransaction ?? 500
  }

  wrap(handler: EachMessageHandler): EachBatchHandler {
    if (typeof handler !== 'function') throw new DetourConfigError('handler', 'eachBatch needs your per-message handler function')
    return (payload) => this.run(handler, payload)
  }

  private async run(handler: EachMessageHandler, batchPayload: EachBatchPayload): Promise<void> {
    const { batch } = batchPayload
    const resolveOffset = (offset: string): void => batchPayload.resolveOffset(offset)
    const heartbeat = (): Promise<void> => batchPayload.heartbeat()
    const pause = (): (() => void) => batchPayload.pause()
    const { topic, partition } = batch
    const processor = this.processor
    const pending = new Pending()
    let lastOffset: string | undefined
    const sink: HandOffSink = {
      redirect: async (payload, key, reason, error, ticket) => {
        // Written before waiting for room: only their tombstones could free it, and they are not written yet.
        if (pending.length >= this.maxHandOffs || (pending.length > 0 && processor.storeFull(pending.store.pendingCount))) await this.flush(pending, lastOffset, resolveOffset)
        await processor.waitForRoom(payload)
        this.gather(pending, payload, key, 'redirect', reason, error, ticket)
      },
      resume: async (payload, key, ticket) => {
        if (pending.length >= this.maxHandOffs) await this.flush(pending, lastOffset, resolveOffset)
        this.gather(pending, payload, key, 'resume', 'failure', undefined, ticket)
      },
      get gathered() {
        return pending.store
      },
    }
    try {
      for (const message of batch.messages) {
        if (!batchPayload.isRunning()) throw new DetourStoppingError(`The consumer is stopping: ${topic}/${partition} from offset ${message.offset} is delivered again`)
        if (batchPayload.isStale()) {
          throw new DetourFencedError(topic, partition, `${topic}/${partition} was revoked or sought during its batch: delivered again from offset ${message.offset}`)
        }
        const payload: EachMessagePayload = { topic, partition, message, heartbeat, pause }
        if (pending.length === 0 && processor.canProcessDirectly(topic, partition)) {
          const ticket = processor.deps.gate.ticket(topic, partition)
          try {
            await processor.runHandler(handler, payload)
            processor.processed(topic).inc()
          } catch (error) {
            // Decided again by the slow path (redirect, dead letter, rethrow) with the full context, unless
            // the partition changed meanwhile.
            processor.checkTicket(payload, ticket)
            await processor.route(this.failOnce(handler, error), payload, sink)
          }
        } else {
          await processor.route(handler, payload, sink)
        }
        lastOffset = message.offset
        if (pending.length === 0) resolveOffset(message.offset)
        await heartbeat()
      }
      await this.flush(pending, lastOffset, resolveOffset)
    } catch (error) {
      // Nothing gathered reaches the store; kafkajs delivers the batch again from its first unresolved offset.
      pending.take()
      throw error
    }
  }

  /** A handler whose first call rethrows `error` (the attempt already made), then calls the real one. */
  private failOnce(handler: EachMessageHandler, error: unknown): EachMessageHandler {
    let first = true
    return (payload) => {
      if (first) {
        first = false
        // The original value, whatever was thrown: classification depends on it.
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
        return Promise.reject(error)
      }
      return handler(payload)
    }
  }

  private gather(pending: Pending, payload: EachMessagePayload, key: RoutingKey, kind: 'redirect' | 'resume', reason: RedirectReason, error: unknown, ticket: number): void {
    if (kind === 'redirect') pending.store.add(payload.topic, payload.partition, key.storeKey, key.id)
    pending.items.push({ plan: { ctx: this.processor.context(payload, key.id, key.groupKey), kind, reason, error }, payload, key, ticket })
  }

  /** Writes the gathered hand-offs; then the batch's offsets up to `lastOffset` may be resolved. */
  private async flush(pending: Pending, lastOffset: string | undefined, resolveOffset: (offset: string) => void): Promise<void> {
    if (pending.length === 0 || lastOffset === undefined) return
    const first = pending.items[0]!
    for (const item of pending.items) this.processor.checkTicket(item.payload, item.ticket)
    const { handOff, metrics, store } = this.processor.deps
    const plans = pending.items.map((g) => g.plan)
    const record = (redirectBaseOffset?: string): void => {
      // The redirect records are consecutive from their base offset, in the order of the plans.
      let index = 0
      for (const { plan, key } of pending.items) {
        if (plan.kind !== 'redirect') continue
        const { topic: source, partition: p } = plan.ctx.source
        if (!this.processor.followerApplied(source, p, redirectBaseOffset, index++)) store.add(source, p, key.storeKey, key.id)
      }
    }
    const outcome = await this.processor.write(first.payload, () => handOff.handOffMany(plans, (BigInt(lastOffset) + 1n).toString(), record))
    const items = pending.take()
    if (outcome.kind === 'too-large') {
      // One of them can never be written: hand them off one by one (the too-large one is dead-lettered).
      for (const item of items) {
        if (item.plan.kind === 'redirect' && !outcome.redirectWritten) await this.processor.immediate.redirect(item.payload, item.key, item.plan.reason, item.plan.error, item.ticket)
        else await this.processor.immediate.resume(item.payload, item.key, item.ticket)
      }
    } else {
      for (const item of items) metrics.redirected.inc({ topic: item.payload.topic, reason: item.plan.kind === 'resume' ? 'resumed' : item.plan.reason })
    }
    resolveOffset(lastOffset)
  }
}

import type { EachBatchHandler, EachBatchPayload, EachMessageHandler, EachMessagePayload } from 'kafkajs'
import { DetourConfigError, type RedirectReason } from '@detour/core'
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
  /** The id was recorded as pending when gathered (a redirect): taken back if the write fails. */
  readonly recorded: boolean
}

/**
 * Runs a per-message handler over kafkajs batches. Hand-offs of one batch are gathered and written
 * together — one transaction with the source offset (transactional), or all redirect records before all
 * retry records (sequential) — instead of one round trip per message. Order holds as in `eachMessage`: a
 * gathered redirect makes its id pending in the group store at once, so the batch's later messages of
 * that group are redirected behind it; offsets are resolved only once the writes are acknowledged. If the
 * writes fail, the ids are taken back, the partition syncs again, and kafkajs delivers the batch again
 * from its first unresolved message (messages processed meanwhile are processed again, in order).
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
    const isRunning = (): boolean => batchPayload.isRunning()
    const isStale = (): boolean => batchPayload.isStale()
    const pause = (): (() => void) => batchPayload.pause()
    const { topic, partition } = batch
    const processor = this.processor
    const gathered: Gathered[] = []
    let lastOffset: string | undefined
    const sink: HandOffSink = {
      redirect: async (payload, key, reason, error) => {
        // Written before waiting for room: the gathered ids count as pending, and only their tombstones can free it.
        if (gathered.length >= this.maxHandOffs || (gathered.length > 0 && processor.storeFull())) await this.flush(gathered, lastOffset, resolveOffset)
        await processor.waitForRoom(payload)
        this.gather(gathered, payload, key, 'redirect', reason, error)
      },
      resume: async (payload, key) => {
        if (gathered.length >= this.maxHandOffs) await this.flush(gathered, lastOffset, resolveOffset)
        this.gather(gathered, payload, key, 'resume', 'failure', undefined)
      },
    }
    try {
      for (const message of batch.messages) {
        if (!isRunning() || isStale()) {
          // Revoked (or stopping): nothing gathered is written and nothing after the last resolved offset is
          // resolved; the partition's owner handles those messages again, in order.
          this.takeBack(gathered)
          return
        }
        const payload: EachMessagePayload = { topic, partition, message, heartbeat, pause }
        if (gathered.length === 0 && processor.canProcessDirectly(topic, partition)) {
          try {
            await handler(payload)
            processor.processed(topic).inc()
          } catch (error) {
            // The slow path decides (redirect, dead letter, rethrow) with the full context.
            await processor.route(this.failOnce(handler, error), payload, sink)
          }
        } else {
          await processor.route(handler, payload, sink)
        }
        lastOffset = message.offset
        if (gathered.length === 0) resolveOffset(message.offset)
        await heartbeat()
      }
      await this.flush(gathered, lastOffset, resolveOffset)
    } catch (error) {
      this.takeBack(gathered)
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

  private gather(gathered: Gathered[], payload: EachMessagePayload, key: RoutingKey, kind: 'redirect' | 'resume', reason: RedirectReason, error: unknown): void {
    const { store } = this.processor.deps
    const recorded = kind === 'redirect' && store.add(payload.topic, payload.partition, key.storeKey, key.id)
    gathered.push({ plan: { ctx: this.processor.context(payload, key.id, key.groupKey), kind, reason, error }, payload, key, recorded })
  }

  private takeBack(gathered: Gathered[]): void {
    const { store } = this.processor.deps
    for (const { payload, key, recorded } of gathered.splice(0)) {
      if (recorded) store.release(payload.topic, payload.partition, key.storeKey, key.id)
    }
  }

  /** Writes the gathered hand-offs; then the batch's offsets up to `lastOffset` may be resolved. */
  private async flush(gathered: Gathered[], lastOffset: string | undefined, resolveOffset: (offset: string) => void): Promise<void> {
    if (gathered.length === 0 || lastOffset === undefined) return
    const first = gathered[0]!
    const { handOff, metrics } = this.processor.deps
    const plans = gathered.map((g) => g.plan)
    const outcome = await this.processor.write(first.payload, () => handOff.handOffMany(plans, (BigInt(lastOffset) + 1n).toString()))
    const items = gathered.splice(0)
    if (outcome.kind === 'too-large') {
      // One of them can never be written: hand them off one by one (the too-large one is dead-lettered).
      for (const item of items) if (item.recorded && !outcome.redirectWritten) this.processor.deps.store.release(item.payload.topic, item.payload.partition, item.key.storeKey, item.key.id)
      for (const item of items) {
        if (item.plan.kind === 'redirect' && !outcome.redirectWritten) await this.processor.immediate.redirect(item.payload, item.key, item.plan.reason, item.plan.error)
        else await this.processor.immediate.resume(item.payload, item.key)
      }
    } else {
      for (const item of items) metrics.redirected.inc({ topic: item.payload.topic, reason: item.plan.kind === 'resume' ? 'resumed' : item.plan.reason })
    }
    resolveOffset(lastOffset)
  }
}

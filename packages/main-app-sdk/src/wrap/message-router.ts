import type { EachMessageHandler, EachMessagePayload } from 'kafkajs'
import {
  DetourConfigError,
  DetourHandOffError,
  classifyError,
  describeError,
  displayGroupKey,
  groupKeyToStoreKey,
  messageId,
  resolveGroupKey,
  type DetourTopics,
  type GroupKey,
  type GroupStore,
  type Logger,
} from '@detour/core'
import type { SdkMetrics } from '../metrics/sdk-metrics.js'
import type { ResolvedOptions } from '../options.js'
import type { RebuildCoordinator } from '../rebuild/rebuild-coordinator.js'
import { isRecordRejected, type HandOff, type HandOffContext } from '../redirect/hand-off.js'

export interface MessageRouterDeps {
  readonly options: ResolvedOptions
  readonly topics: ReadonlyMap<string, DetourTopics>
  readonly store: GroupStore
  readonly rebuild: RebuildCoordinator
  readonly handOff: HandOff
  readonly metrics: SdkMetrics
  readonly logger: Logger
  /** Pending ids over the assigned partitions (backpressure). */
  readonly assignedPending: () => number
  readonly whenStarted: () => Promise<void>
  readonly isStopping: () => boolean
}

type RouteReason = 'failure' | 'ordering' | 'resumed'

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Decides, per message, between "process", "redirect behind pending ids" and "dead-letter", and
 * performs the writes in the order that keeps every crash point recoverable:
 *
 *   redirect record (acked) → id pending in memory → retry record (acked) → return (offset resolvable)
 *
 * A crash before the redirect ack leaves nothing (or an orphan redirect record whose message is
 * delivered again and resumes the hand-off). A crash between the redirect and retry acks leaves a pending
 * id whose message is delivered again: its own id is pending, so the hand-off is resumed (retry record
 * written). A crash after the retry ack but before the commit re-writes the retry record: the worker
 * recognises the duplicate id. The retry record is never written before its redirect record, so a
 * tombstone can never precede the record it releases.
 */
export class MessageRouter {
  readonly paused = new Set<string>()

  constructor(private readonly deps: MessageRouterDeps) {}

  wrap(handler: EachMessageHandler): EachMessageHandler {
    if (typeof handler !== 'function') throw new DetourConfigError('handler', 'eachMessage needs your handler function')
    return (payload) => this.route(handler, payload)
  }

  private async route(handler: EachMessageHandler, payload: EachMessagePayload): Promise<void> {
    const { options, topics, store, rebuild, metrics } = this.deps
    const { topic, partition, message } = payload
    const detourTopics = topics.get(topic)
    if (!detourTopics) {
      throw new DetourConfigError('topics', `received a message from "${topic}", which is not in options.topics: add it so its failures can be routed`)
    }
    await this.deps.whenStarted()
    await rebuild.waitReady(topic, partition, () => payload.heartbeat(), options.rebuildTimeoutMs)

    const source = { topic, partition, offset: message.offset }
    const id = messageId(source)
    let groupKey: GroupKey
    try {
      groupKey = resolveGroupKey(options.groupKey, message, topic, partition)
    } catch (error) {
      const ctx = this.context(detourTopics, source, payload, id, null)
      await this.deadLetter(ctx, 'unprocessable', error, 0)
      return
    }
    const ctx = this.context(detourTopics, source, payload, id, groupKey)
    const storeKey = groupKeyToStoreKey(groupKey, id)

    if (store.hasPending(topic, partition, storeKey)) {
      const resumed = store.isPending(topic, partition, storeKey, id)
      await this.redirect(ctx, payload, storeKey, resumed ? 'resumed' : 'ordering')
      return
    }

    for (let attempt = 1; ; attempt++) {
      try {
        await handler(payload)
        metrics.processed.inc({ topic })
        return
      } catch (error) {
        if (error instanceof DetourHandOffError) throw error
        const kind = classifyError(error, options.classify)
        if (kind !== 'transient') {
          await this.deadLetter(ctx, kind, error, attempt)
          return
        }
        if (attempt <= options.inPlaceRetries && !this.deps.isStopping()) {
          metrics.inPlaceRetries.inc({ topic })
          await this.sleepWithHeartbeat(options.inPlaceBackoff(attempt), payload)
          continue
        }
        await this.redirect(ctx, payload, storeKey, 'failure', error)
        return
      }
    }
  }

  private context(topics: DetourTopics, source: HandOffContext['source'], payload: EachMessagePayload, id: string, groupKey: GroupKey): HandOffContext {
    return { topics, source, message: payload.message, id, groupKey, consumerGroup: this.deps.options.groupId }
  }

  private async redirect(ctx: HandOffContext, payload: EachMessagePayload, storeKey: string, reason: RouteReason, error?: unknown): Promise<void> {
    const { store, handOff, metrics, logger } = this.deps
    const { topic, partition } = ctx.source
    const headerReason = reason === 'failure' ? 'failure' : 'ordering'
    if (reason !== 'resumed') await this.waitForRoom(payload)
    try {
      await handOff.writeRedirect(ctx, headerReason)
    } catch (writeError) {
      if (isRecordRejected((writeError as DetourHandOffError).cause)) {
        await this.deadLetter(ctx, 'record-too-large', writeError, 1)
        return
      }
      metrics.handOffFailures.inc({ topic })
      throw writeError
    }
    store.add(topic, partition, storeKey, ctx.id)
    try {
      await handOff.writeRetry(ctx, headerReason, error)
    } catch (writeError) {
      if (isRecordRejected((writeError as DetourHandOffError).cause)) {
        // The record can never be written to the retry topic: dead-letter it, then release its id
        // ourselves so the group is not locked by a message that will never be retried.
        await this.deadLetter(ctx, 'record-too-large', writeError, 1)
        await handOff.writeTombstone(ctx)
        store.release(topic, partition, storeKey, ctx.id)
        return
      }
      metrics.handOffFailures.inc({ topic })
      throw writeError
    }
    metrics.redirected.inc({ topic, reason })
    logger.debug('Redirected message to the retry topic', {
      topic,
      partition,
      offset: ctx.source.offset,
      id: ctx.id,
      reason,
      groupKey: displayGroupKey(ctx.groupKey),
      error: error === undefined ? undefined : describeError(error).message,
    })
  }

  private async deadLetter(ctx: HandOffContext, reason: 'unprocessable' | 'deserialization' | 'record-too-large', error: unknown, attempts: number): Promise<void> {
    const { handOff, metrics, logger } = this.deps
    try {
      await handOff.writeDeadLetter(ctx, reason, error, attempts)
    } catch (writeError) {
      metrics.handOffFailures.inc({ topic: ctx.source.topic })
      throw writeError
    }
    metrics.deadLettered.inc({ topic: ctx.source.topic, reason })
    logger.warn('Sent message to the error topic', {
      topic: ctx.source.topic,
      partition: ctx.source.partition,
      offset: ctx.source.offset,
      id: ctx.id,
      reason,
      error: describeError(error).message,
    })
  }

  /** Backpressure: while the store is full, pause this partition (heartbeating) until ids are released. */
  private async waitForRoom(payload: EachMessagePayload): Promise<void> {
    const { options, logger } = this.deps
    if (this.deps.assignedPending() < options.maxPendingIds) return
    const slot = `${payload.topic}/${payload.partition}`
    const resume = payload.pause()
    this.paused.add(slot)
    logger.warn('Group store full: pausing partition until tombstones release pending ids', {
      topic: payload.topic,
      partition: payload.partition,
      pendingIds: this.deps.assignedPending(),
      maxPendingIds: options.maxPendingIds,
    })
    try {
      while (this.deps.assignedPending() >= options.maxPendingIds && !this.deps.isStopping()) {
        await sleep(200)
        await payload.heartbeat()
      }
    } finally {
      this.paused.delete(slot)
      resume()
      logger.info('Group store has room again: resuming partition', { topic: payload.topic, partition: payload.partition })
    }
  }

  private async sleepWithHeartbeat(ms: number, payload: EachMessagePayload): Promise<void> {
    const end = Date.now() + ms
    for (let left = ms; left > 0; left = end - Date.now()) {
      await sleep(Math.min(left, 1000))
      await payload.heartbeat()
    }
  }
}

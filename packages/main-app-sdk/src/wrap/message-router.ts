import type { EachMessageHandler, EachMessagePayload } from 'kafkajs'
import {
  DetourConfigError,
  DetourHandOffError,
  classifyError,
  describeError,
  displayGroupKey,
  groupKeyToStoreKey,
  isRecordTooLargeError,
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
import type { HandOff, HandOffContext } from '../redirect/hand-off.js'

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
  /** True once started and not stopping: then {@link whenStarted} would resolve at once. */
  readonly isRunning: () => boolean
  readonly isStopping: () => boolean
}

type RouteReason = 'failure' | 'ordering' | 'resumed'

interface RoutingKey {
  readonly id: string
  readonly groupKey: GroupKey
  readonly storeKey: string
}

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
  private readonly processedByTopic = new Map<string, { inc(): void }>()

  constructor(private readonly deps: MessageRouterDeps) {}

  wrap(handler: EachMessageHandler): EachMessageHandler {
    if (typeof handler !== 'function') throw new DetourConfigError('handler', 'eachMessage needs your handler function')
    const { store, rebuild, topics } = this.deps
    return (payload) => {
      const { topic, partition } = payload
      // Fast path (running, partition rebuilt, nothing pending in it): call the handler directly, with
      // no extra async frame and no id or group key computed.
      if (this.deps.isRunning() && rebuild.isPartitionReady(topic, partition) && store.partitionPending(topic, partition) === 0) {
        const detourTopics = topics.get(topic)
        if (detourTopics) {
          let result: Promise<void> | undefined
          try {
            result = handler(payload)
          } catch (error) {
            return this.afterFailure(handler, payload, detourTopics, undefined, 1, error)
          }
          if (result === undefined || typeof result.then !== 'function') {
            this.processedCounter(topic).inc()
            return Promise.resolve()
          }
          return result.then(
            () => this.processedCounter(topic).inc(),
            (error: unknown) => this.afterFailure(handler, payload, detourTopics, undefined, 1, error),
          )
        }
      }
      return this.route(handler, payload)
    }
  }

  private async route(handler: EachMessageHandler, payload: EachMessagePayload): Promise<void> {
    const { options, topics, store, rebuild } = this.deps
    const { topic, partition, message } = payload
    const detourTopics = topics.get(topic)
    if (!detourTopics) {
      throw new DetourConfigError('topics', `received a message from "${topic}", which is not in options.topics: add it so its failures can be routed`)
    }
    // Steady state (running, partition rebuilt): no await before the handler. Each await of an
    // already-settled promise still costs a trip through the microtask queue, on every message.
    if (!this.deps.isRunning()) await this.deps.whenStarted()
    if (!rebuild.isPartitionReady(topic, partition)) {
      await rebuild.waitReady(topic, partition, () => payload.heartbeat(), options.rebuildTimeoutMs)
    }

    const source = { topic, partition, offset: message.offset }
    // The id and group key are needed only when the partition has pending ids or the message fails:
    // a partition with nothing pending (the common case) skips both.
    let key: RoutingKey | undefined
    if (store.partitionPending(topic, partition) > 0) {
      try {
        key = this.routingKey(source, message)
      } catch (error) {
        await this.deadLetter(this.context(detourTopics, source, payload, messageId(source), null), 'unprocessable', error, 0, payload)
        return
      }
      if (store.hasPending(topic, partition, key.storeKey)) {
        const resumed = store.isPending(topic, partition, key.storeKey, key.id)
        await this.redirect(this.context(detourTopics, source, payload, key.id, key.groupKey), payload, key.storeKey, resumed ? 'resumed' : 'ordering')
        return
      }
    }

    try {
      await handler(payload)
    } catch (error) {
      await this.afterFailure(handler, payload, detourTopics, key, 1, error)
      return
    }
    this.processedCounter(topic).inc()
  }

  /** A handler attempt failed: classify, retry in place, dead-letter or redirect. */
  private async afterFailure(
    handler: EachMessageHandler,
    payload: EachMessagePayload,
    detourTopics: DetourTopics,
    knownKey: RoutingKey | undefined,
    failedAttempt: number,
    firstError: unknown,
  ): Promise<void> {
    const { options, metrics } = this.deps
    const { topic, partition, message } = payload
    const source = { topic, partition, offset: message.offset }
    let key = knownKey
    let error = firstError
    for (let attempt = failedAttempt; ; attempt++) {
      if (attempt > failedAttempt) {
        try {
          await handler(payload)
          this.processedCounter(topic).inc()
          return
        } catch (retryError) {
          error = retryError
        }
      }
      if (error instanceof DetourHandOffError) throw error
      if (key === undefined) {
        try {
          key = this.routingKey(source, message)
        } catch (keyError) {
          await this.deadLetter(this.context(detourTopics, source, payload, messageId(source), null), 'unprocessable', keyError, attempt, payload)
          return
        }
      }
      // Built only on failure: the successful path (most messages) needs no hand-off context.
      const ctx = this.context(detourTopics, source, payload, key.id, key.groupKey)
      const kind = classifyError(error, options.classify)
      if (kind !== 'transient') {
        await this.deadLetter(ctx, kind, error, attempt, payload)
        return
      }
      if (attempt <= options.inPlaceRetries && !this.deps.isStopping()) {
        metrics.inPlaceRetries.inc({ topic })
        await this.sleepWithHeartbeat(options.inPlaceBackoff(attempt), payload)
        continue
      }
      await this.redirect(ctx, payload, key.storeKey, 'failure', error)
      return
    }
  }

  private routingKey(source: HandOffContext['source'], message: EachMessagePayload['message']): RoutingKey {
    const id = messageId(source)
    const groupKey = resolveGroupKey(this.deps.options.groupKey, message, source.topic, source.partition)
    return { id, groupKey, storeKey: groupKeyToStoreKey(groupKey, id) }
  }

  /** Labelled counter children cached per topic: prom-client hashes label sets on every `inc({...})`. */
  private processedCounter(topic: string): { inc(): void } {
    let child = this.processedByTopic.get(topic)
    if (!child) {
      child = this.deps.metrics.processed.labels({ topic })
      this.processedByTopic.set(topic, child)
    }
    return child
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
      await this.heartbeating(payload, handOff.writeRedirect(ctx, headerReason))
    } catch (writeError) {
      if (isRecordTooLargeError(writeError)) {
        await this.deadLetter(ctx, 'record-too-large', writeError, 1, payload)
        return
      }
      metrics.handOffFailures.inc({ topic })
      throw writeError
    }
    store.add(topic, partition, storeKey, ctx.id)
    try {
      await this.heartbeating(payload, handOff.writeRetry(ctx, headerReason, error))
    } catch (writeError) {
      if (isRecordTooLargeError(writeError)) {
        // The record can never be written to the retry topic: dead-letter it, then release its id
        // ourselves so the group is not locked by a message that will never be retried.
        await this.deadLetter(ctx, 'record-too-large', writeError, 1, payload)
        await this.heartbeating(payload, handOff.writeTombstone(ctx))
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

  private async deadLetter(
    ctx: HandOffContext,
    reason: 'unprocessable' | 'deserialization' | 'record-too-large',
    error: unknown,
    attempts: number,
    payload?: EachMessagePayload,
  ): Promise<void> {
    const { handOff, metrics, logger } = this.deps
    try {
      await this.heartbeating(payload, handOff.writeDeadLetter(ctx, reason, error, attempts))
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

  /**
   * Awaits a write while heartbeating, so a write that kafkajs retries for a while (broker errors) does
   * not cost the group membership. Heartbeat errors (a rebalance) are left for kafkajs to notice after
   * this message; the write itself is always awaited to the end.
   */
  private async heartbeating<T>(payload: EachMessagePayload | undefined, work: Promise<T>): Promise<T> {
    if (!payload) return work
    let timer: NodeJS.Timeout | undefined
    let done = false
    const beat = (): void => {
      if (done) return
      timer = setTimeout(() => {
        payload.heartbeat().then(beat, beat)
      }, 1000)
    }
    beat()
    try {
      return await work
    } finally {
      done = true
      clearTimeout(timer)
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

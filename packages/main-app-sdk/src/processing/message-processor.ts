import type { EachMessageHandler, EachMessagePayload } from 'kafkajs'
import {
  DetourConfigError,
  DetourFencedError,
  DetourStoppingError,
  describeError,
  displayGroupKey,
  messageId,
  type DeadLetterReason,
  type DetourTopics,
  type GroupStore,
  type Logger,
  type RedirectReason,
} from '@detour/core'
import type { HandOff, HandOffContext, RedirectOutcome } from '../hand-off/hand-off.js'
import type { SdkMetrics } from '../metrics/sdk-metrics.js'
import type { PartitionGate } from '../partitions/partition-gate.js'
import type { MessageRouter, RoutingKey } from '../routing/message-router.js'
import type { HandlerHeartbeats } from './handler-heartbeats.js'

export interface MessageProcessorDeps {
  readonly topics: ReadonlyMap<string, DetourTopics>
  readonly consumerGroup: string
  readonly store: GroupStore
  readonly gate: PartitionGate
  readonly router: MessageRouter
  readonly handOff: HandOff
  readonly metrics: SdkMetrics
  readonly logger: Logger
  readonly rebuildTimeoutMs: number
  readonly maxPendingIds: number
  /** Pending ids over the assigned partitions (backpressure). */
  readonly assignedPending: () => number
  /** True once started and not stopping. */
  readonly isRunning: () => boolean
  /** Resolves once Detour runs; rejects when it was never started. */
  readonly whenStarted: () => Promise<void>
  /** Aborted when the consumer or Detour is stopping: every wait ends with a retriable error. */
  readonly stopping: () => AbortSignal
  /** Pauses a partition in kafkajs (a source partition without Detour partitions). */
  readonly pausePartition: (payload: EachMessagePayload) => void
  /** Heartbeats for handlers that run long (kafkajs heartbeats only between messages). */
  readonly heartbeats: HandlerHeartbeats
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(done, ms)
    function done(): void {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done, { once: true })
  })

/**
 * Runs one message: waits for its partition, asks the router, runs the handler, and has the hand-off
 * perform what the router decided. Errors that kafkajs must see (a failed or fenced hand-off, a rebalance,
 * a stop) leave `eachMessage` unresolved, so kafkajs delivers the message again.
 */
/** Where the decisions to hand a message off go: performed at once (eachMessage), or gathered (eachBatch). */
export interface HandOffSink {
  /**
   * `ticket`: the partition's ready ticket when the decision was made ({@link PartitionGate.ticket}); a
   * decision is written only while the partition is still ready under the same ticket.
   */
  redirect(payload: EachMessagePayload, key: RoutingKey, reason: RedirectReason, error: unknown, ticket: number): Promise<void>
  resume(payload: EachMessagePayload, key: RoutingKey, ticket: number): Promise<void>
  /** Hand-offs decided but not written yet (eachBatch): pending for the later messages of their groups. */
  readonly gathered?: GroupStore
}

/** Hand-offs remembered after a failed write (bounded): their reason and error survive the redelivery. */
const MAX_REMEMBERED_HAND_OFFS = 1000

export class MessageProcessor {
  readonly paused = new Set<string>()
  private readonly processedByTopic = new Map<string, { inc(): void }>()
  /**
   * Why a message whose hand-off failed was redirected: when kafkajs delivers it again and its own id is
   * pending (a write landed), the resumed retry record keeps the original reason and error.
   */
  private readonly unfinished = new Map<string, { reason: RedirectReason; error: unknown }>()

  /** Hand-offs performed at once, one per message. */
  readonly immediate: HandOffSink = {
    redirect: (payload, key, reason, error, ticket) => this.redirect(payload, key, reason, error, ticket),
    resume: (payload, key, ticket) => this.resume(payload, key, ticket),
  }

  constructor(readonly deps: MessageProcessorDeps) {}

  wrap(handler: EachMessageHandler): EachMessageHandler {
    if (typeof handler !== 'function') throw new DetourConfigError('handler', 'eachMessage needs your handler function')
    const { gate, store, topics } = this.deps
    return (payload) => {
      const { topic, partition } = payload
      // Fast path (running, partition ready, nothing pending in it): the handler directly, with no extra
      // async frame and no id or group key computed.
      if (this.deps.isRunning() && gate.isReady(topic, partition) && store.partitionPending(topic, partition) === 0 && topics.has(topic)) {
        let result: Promise<void> | undefined
        try {
          result = handler(payload)
        } catch (error) {
          return this.afterFailure(handler, payload, undefined, 1, error, this.immediate, gate.ticket(topic, partition))
        }
        if (result === undefined || typeof result.then !== 'function') {
          this.processed(topic).inc()
          return Promise.resolve()
        }
        const { heartbeats } = this.deps
        heartbeats.started(payload)
        // Promise.resolve: the same object for a native promise; a foreign thenable cannot end twice or never.
        return Promise.resolve(result).then(
          () => {
            heartbeats.ended()
            this.processed(topic).inc()
          },
          (error: unknown) => {
            heartbeats.ended()
            return this.afterFailure(handler, payload, undefined, 1, error, this.immediate, gate.ticket(topic, partition))
          },
        )
      }
      return this.route(handler, payload, this.immediate)
    }
  }

  /** True when the group store holds `maxPendingIds` over the assigned partitions (with `gathered` ids not written yet). */
  storeFull(gathered = 0): boolean {
    return this.deps.assignedPending() + gathered >= this.deps.maxPendingIds
  }

  /** True when the message can go straight to the handler (the fast path). */
  canProcessDirectly(topic: string, partition: number): boolean {
    return this.deps.isRunning() && this.deps.gate.isReady(topic, partition) && this.deps.store.partitionPending(topic, partition) === 0
  }

  /** Handles one message completely: waits for its partition, decides, runs the handler, hands off through `sink`. */
  async route(handler: EachMessageHandler, payload: EachMessagePayload, sink: HandOffSink): Promise<void> {
    const { gate, router } = this.deps
    const { topic, partition, message } = payload
    if (!this.deps.topics.has(topic)) {
      throw new DetourConfigError('topics', `received a message from "${topic}", which is not in options.topics: add it so its failures can be routed`)
    }
    if (!this.deps.isRunning()) await this.deps.whenStarted()
    if (!gate.isReady(topic, partition)) await this.waitReady(payload)
    const ticket = gate.ticket(topic, partition)
    const decision = router.beforeHandler(topic, partition, message, sink.gathered)
    switch (decision.kind) {
      case 'dead-letter':
        await this.deadLetter(this.context(payload, messageId({ topic, partition, offset: message.offset }), null), decision.reason, decision.error, 0, payload)
        return
      case 'redirect':
        await sink.redirect(payload, decision.key, 'ordering', undefined, ticket)
        return
      case 'resume':
        await sink.resume(payload, decision.key, ticket)
        return
      case 'skip':
        this.deps.metrics.skipped.inc({ topic })
        this.deps.logger.debug('Skipped a message delivered again behind a later pending id of its group', {
          topic,
          partition,
          offset: message.offset,
          groupKey: displayGroupKey(decision.key.groupKey),
        })
        return
      case 'process':
        break
    }
    try {
      await this.runHandler(handler, payload)
    } catch (error) {
      await this.afterFailure(handler, payload, decision.key, 1, error, sink, ticket)
      return
    }
    this.processed(topic).inc()
  }

  /** Runs your handler, heartbeating for it while it runs long (see {@link HandlerHeartbeats}). */
  async runHandler(handler: EachMessageHandler, payload: EachMessagePayload): Promise<void> {
    this.deps.heartbeats.started(payload)
    try {
      await handler(payload)
    } finally {
      this.deps.heartbeats.ended()
    }
  }

  async waitReady(payload: EachMessagePayload): Promise<void> {
    const { topic, partition } = payload
    try {
      await this.deps.gate.waitReady(topic, partition, () => payload.heartbeat(), this.deps.rebuildTimeoutMs, this.deps.stopping())
    } catch (error) {
      if (error instanceof Error && error.name === 'DetourTopicError') {
        this.deps.pausePartition(payload)
        this.deps.gate.pausedByDetour(topic, partition)
      }
      throw error
    }
  }

  /** A handler attempt failed: the router decides; retries in place, redirects, dead-letters or rethrows. */
  private async afterFailure(
    handler: EachMessageHandler,
    payload: EachMessagePayload,
    knownKey: RoutingKey | undefined,
    firstAttempt: number,
    firstError: unknown,
    sink: HandOffSink,
    firstTicket: number,
  ): Promise<void> {
    const { router, metrics } = this.deps
    const { topic, partition, message } = payload
    let error = firstError
    const ticket = firstTicket
    for (let attempt = firstAttempt; ; attempt++) {
      if (attempt > firstAttempt) {
        try {
          await this.runHandler(handler, payload)
          this.processed(topic).inc()
          return
        } catch (retryError) {
          error = retryError
        }
      }
      const decision = router.afterFailure(error, attempt, this.deps.stopping().aborted)
      if (decision.kind === 'rethrow') throw decision.error
      // The handler ran on what the partition knew then: after a rebalance or a re-sync meanwhile (a long
      // handler), the decision is not written; kafkajs delivers the message again from its new position.
      this.checkTicket(payload, ticket)
      let key = knownKey
      if (key === undefined) {
        try {
          key = router.routingKey(topic, partition, message)
        } catch (keyError) {
          await this.deadLetter(this.context(payload, messageId({ topic, partition, offset: message.offset }), null), 'unprocessable', keyError, attempt, payload)
          return
        }
      }
      switch (decision.kind) {
        case 'dead-letter':
          await this.deadLetter(this.context(payload, key.id, key.groupKey), decision.reason, error, attempt, payload)
          return
        case 'retry-in-place':
          metrics.inPlaceRetries.inc({ topic })
          await this.sleepWithHeartbeat(decision.delayMs, payload)
          continue
        case 'redirect':
          await sink.redirect(payload, key, 'failure', error, ticket)
          return
      }
    }
  }

  /**
   * True when the redirect follower has applied the redirect record at `base + index` already (then the
   * store holds what the broker says of its id, its tombstone included). `base` undefined: unknown.
   */
  followerApplied(topic: string, partition: number, base: string | undefined, index: number): boolean {
    return base !== undefined && this.deps.gate.followerPosition(topic, partition) > BigInt(base) + BigInt(index)
  }

  /**
   * Throws a retriable `DetourFencedError` unless the partition is still ready under `ticket`: a decision
   * made before a rebalance or a re-sync (a long wait for room in the store) is not written.
   */
  checkTicket(payload: EachMessagePayload, ticket: number): void {
    const { topic, partition } = payload
    if (this.deps.gate.holds(topic, partition, ticket)) return
    throw new DetourFencedError(
      topic,
      partition,
      `${topic}/${partition} was revoked or synced again since ${topic}/${partition}/${payload.message.offset} was decided: it is decided again`,
    )
  }

  context(payload: EachMessagePayload, id: string, groupKey: HandOffContext['groupKey']): HandOffContext {
    const { topic, partition, message } = payload
    return {
      topics: this.deps.topics.get(topic)!,
      source: { topic, partition, offset: message.offset },
      message,
      id,
      groupKey,
      consumerGroup: this.deps.consumerGroup,
    }
  }

  /** Redirect: backpressure, then the hand-off; the id is recorded once it is durably pending. */
  private async redirect(payload: EachMessagePayload, key: RoutingKey, reason: RedirectReason, error: unknown, ticket: number): Promise<void> {
    const { store, handOff, metrics, logger } = this.deps
    const { topic, partition } = payload
    await this.waitForRoom(payload)
    this.checkTicket(payload, ticket)
    const ctx = this.context(payload, key.id, key.groupKey)
    this.remember(key.id, reason, error)
    const outcome = await this.write(payload, () =>
      handOff.redirect(ctx, reason, error, (redirectOffset) => {
        if (!this.followerApplied(topic, partition, redirectOffset, 0)) store.add(topic, partition, key.storeKey, key.id)
      }),
    )
    this.unfinished.delete(key.id)
    if (outcome.kind === 'too-large') {
      await this.tooLarge(payload, ctx, key, outcome)
      return
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

  private remember(id: string, reason: RedirectReason, error: unknown): void {
    this.unfinished.delete(id)
    this.unfinished.set(id, { reason, error })
    if (this.unfinished.size > MAX_REMEMBERED_HAND_OFFS) {
      const [oldest] = this.unfinished.keys()
      if (oldest !== undefined) this.unfinished.delete(oldest)
    }
  }

  /**
   * The message's own id is pending: its hand-off happened before; the retry record is written again, with
   * the original reason and error when this process made the first attempt (after a crash, `failure`).
   */
  private async resume(payload: EachMessagePayload, key: RoutingKey, ticket: number): Promise<void> {
    this.checkTicket(payload, ticket)
    const ctx = this.context(payload, key.id, key.groupKey)
    const original = this.unfinished.get(key.id) ?? { reason: 'failure' as const, error: undefined }
    const outcome = await this.write(payload, () => this.deps.handOff.resume(ctx, original.reason, original.error))
    this.unfinished.delete(key.id)
    if (outcome.kind === 'too-large') {
      await this.tooLarge(payload, ctx, key, outcome)
      return
    }
    this.deps.metrics.redirected.inc({ topic: payload.topic, reason: 'resumed' })
  }

  /**
   * The retry record can never be written (too large for the broker): the message is dead-lettered without
   * its value (its coordinates say where it is), and an id made pending for it is released here, so its
   * group is not locked by a message that will never be retried.
   */
  private async tooLarge(payload: EachMessagePayload, ctx: HandOffContext, key: RoutingKey, outcome: Extract<RedirectOutcome, { kind: 'too-large' }>): Promise<void> {
    await this.deadLetter(ctx, 'record-too-large', outcome.error, 1, payload)
    if (outcome.redirectWritten || this.deps.store.isPending(ctx.source.topic, ctx.source.partition, key.storeKey, key.id)) {
      await this.write(payload, () => this.deps.handOff.tombstone(ctx))
      this.deps.store.release(ctx.source.topic, ctx.source.partition, key.storeKey, key.id)
    }
  }

  /**
   * Runs a hand-off write while heartbeating. A write whose outcome is unknown, or that was fenced, sends the
   * partition back behind its barrier (claimed again first when its producer broke) before the error goes to
   * kafkajs, which delivers the message again.
   */
  async write<T>(payload: EachMessagePayload, work: () => Promise<T>): Promise<T> {
    try {
      return await this.heartbeating(payload, work())
    } catch (error) {
      const { topic, partition } = payload
      this.deps.metrics.handOffFailures.inc({ topic })
      const fenced = error instanceof DetourFencedError
      this.deps.gate.markUnsynced(topic, partition, fenced || !this.deps.handOff.isClaimed(topic, partition))
      this.deps.logger.warn(fenced ? 'Hand-off fenced: another instance owns the partition now' : 'Hand-off failed; the message will be handled again', {
        topic,
        partition,
        offset: payload.message.offset,
        error,
      })
      throw error
    }
  }

  private async deadLetter(ctx: HandOffContext, reason: DeadLetterReason, error: unknown, attempts: number, payload: EachMessagePayload): Promise<void> {
    const { handOff, metrics, logger } = this.deps
    try {
      await this.heartbeating(payload, handOff.deadLetter(ctx, reason, error, attempts))
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

  /**
   * Backpressure: while the group store holds `maxPendingIds` over the assigned partitions, this partition
   * is paused (heartbeating) until tombstones release ids. The wait ends with a retriable
   * `DetourStoppingError` when the consumer or Detour stops.
   */
  async waitForRoom(payload: EachMessagePayload): Promise<void> {
    const { maxPendingIds, logger } = this.deps
    if (this.deps.assignedPending() < maxPendingIds) return
    const signal = this.deps.stopping()
    const slot = `${payload.topic}/${payload.partition}`
    const resume = payload.pause()
    this.paused.add(slot)
    logger.warn('Group store full: pausing partition until tombstones release pending ids', {
      topic: payload.topic,
      partition: payload.partition,
      pendingIds: this.deps.assignedPending(),
      maxPendingIds,
    })
    try {
      while (this.deps.assignedPending() >= maxPendingIds) {
        if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new DetourStoppingError('Stopped waiting for room in the group store')
        await sleep(200, signal)
        if (!signal.aborted) await payload.heartbeat()
      }
    } finally {
      this.paused.delete(slot)
      resume()
      logger.info('Group store has room again (or the wait ended): resuming partition', { topic: payload.topic, partition: payload.partition })
    }
  }

  /**
   * Awaits a write while heartbeating (through {@link HandlerHeartbeats}, as for a handler), so a write that
   * kafkajs retries for a while (broker errors) does not cost the group membership. A heartbeat error (a
   * rebalance) is left for kafkajs to notice after this message; the write itself is always awaited to the end.
   */
  private async heartbeating<T>(payload: EachMessagePayload, work: Promise<T>): Promise<T> {
    this.deps.heartbeats.started(payload)
    try {
      return await work
    } finally {
      this.deps.heartbeats.ended()
    }
  }

  private async sleepWithHeartbeat(ms: number, payload: EachMessagePayload): Promise<void> {
    const signal = this.deps.stopping()
    const end = Date.now() + ms
    for (let left = ms; left > 0 && !signal.aborted; left = end - Date.now()) {
      await sleep(Math.min(left, 1000), signal)
      if (!signal.aborted) await payload.heartbeat()
    }
  }

  /** Labelled counter children cached per topic: prom-client hashes label sets on every `inc({...})`. */
  processed(topic: string): { inc(): void } {
    let child = this.processedByTopic.get(topic)
    if (!child) {
      child = this.deps.metrics.processed.labels({ topic })
      this.processedByTopic.set(topic, child)
    }
    return child
  }
}


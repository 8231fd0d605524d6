import type { EachMessagePayload, KafkaMessage } from 'kafkajs'
import {
  buildTombstone,
  classifyError,
  describeError,
  displayGroupKey,
  type BackoffFn,
  type DeadLetterReason,
  type ErrorClassifier,
  type FailureKind,
  type Logger,
  type RetryEnvelope,
} from '@detour/core'
import type { RetryMetrics } from '../metrics/retry-metrics.js'
import { isAbortError, onAbort, sleep, throwIfAborted } from './abort.js'
import type { ConcurrencyLimiter } from './concurrency-limiter.js'
import { runAttempt } from './handler-attempt.js'
import type { HandOffWriter } from './hand-off-writer.js'
import type { PartitionSignals } from './partition-scheduler.js'
import type { RetryEntry } from './retry-entry.js'
import type { ExhaustedPolicy, RetryHandler } from './retry-worker-options.js'
import type { DeadLetteredEvent, ResolutionKind } from './types.js'
import type { WorkTracker } from './work-tracker.js'

/** The end of the work on one entry. */
export type ProcessOutcome =
  | { readonly kind: 'resolved'; readonly resolution: ResolutionKind; readonly deadLetter?: DeadLetteredEvent }
  | { readonly kind: 'held'; readonly deadLetter: DeadLetteredEvent }
  /** Stopped before the end (shutdown or revocation): the entry stays unresolved and is not committed. */
  | { readonly kind: 'stopped' }

/** What the processor sees of the entry's partition. */
export interface ProcessContext {
  readonly signals: PartitionSignals
  /** Handlers that timed out and still run are tracked here (a revoked partition waits for them). */
  readonly work: WorkTracker
}

/** Whether an attempt may start now (the worker's consumer and partition ownership decide). */
export interface AttemptGate {
  /** Resolves once an attempt of the entry may start; rejects with an abort error when `signal` aborts. */
  whenOpen(entry: RetryEntry, signal: AbortSignal): Promise<void>
  /** The same, decided now: checked again right before the handler is called. */
  isOpen(entry: RetryEntry): boolean
}

/** Durable resolution: whether an id is still pending, as the redirect topic says. */
export interface ResolutionCheck {
  isPending(envelope: RetryEnvelope): boolean
  /** This worker's tombstone for the id is acknowledged (at `tombstoneOffset` of the redirect partition). */
  resolved(envelope: RetryEnvelope, tombstoneOffset: bigint | undefined): void
}

export interface RetryProcessorSettings {
  readonly handler: RetryHandler
  readonly classify: ErrorClassifier | undefined
  readonly backoff: BackoffFn
  readonly maxAttempts: number
  readonly maxRetryDurationMs: number
  readonly exhaustedPolicy: ExhaustedPolicy
  readonly handlerTimeoutMs: number
  /** The main app's consumer group (for dead letters of malformed records). */
  readonly groupId: string
}

export interface RetryProcessorParts {
  readonly limiter: ConcurrencyLimiter
  readonly writer: HandOffWriter
  readonly gate: AttemptGate
  readonly resolution: ResolutionCheck
  readonly metrics: RetryMetrics
  readonly logger: Logger
}

const noopHeartbeat = async (): Promise<void> => {}
const noopResume = (): void => {}
const noopPause = (): (() => void) => noopResume

/**
 * Works one retry record to its end: attempts with backoff and timeouts, classification, dead letters,
 * tombstones, records already resolved and malformed records. Ordering is not its concern: the partition
 * scheduler only hands it an entry once every earlier entry of the group is resolved. Before every attempt
 * it waits for the gate (no rebalance, partition taken over) and asks durable resolution whether the id is
 * still pending.
 */
export class RetryProcessor {
  constructor(
    private readonly settings: RetryProcessorSettings,
    private readonly parts: RetryProcessorParts,
  ) {}

  /** Handlers running now (timed-out ones that have not returned included). */
  get inFlight(): number {
    return this.parts.limiter.inUse
  }

  /** Never rejects with an abort: a shutdown or revocation ends in `{ kind: 'stopped' }`. */
  async process(entry: RetryEntry, context: ProcessContext): Promise<ProcessOutcome> {
    try {
      if (entry.envelope === undefined) return await this.deadLetterMalformed(entry, context.signals)
      await entry.barrier
      return await this.attempt(entry, entry.envelope, context)
    } catch (error) {
      if (isAbortError(error)) return { kind: 'stopped' }
      throw error
    }
  }

  /**
   * Releases a held entry (an operator's release): writes its tombstone; the caller then resolves it. The
   * write is work of the partition like any other (tracked in `context.work`): a revocation hands the
   * partition over, and a stop commits, only once it has ended. Abandoned when `signals.hard` aborts.
   */
  async release(entry: RetryEntry, context: ProcessContext): Promise<void> {
    const envelope = entry.envelope
    if (!envelope) return
    const work = (async () => {
      const offset = await this.tombstone(entry, envelope, context.signals.hard)
      this.parts.resolution.resolved(envelope, offset)
      this.observeResolved(entry, envelope)
    })()
    context.work.track(work)
    await work
  }

  private async attempt(entry: RetryEntry, envelope: RetryEnvelope, context: ProcessContext): Promise<ProcessOutcome> {
    const { limiter, gate, resolution, metrics, logger } = this.parts
    const { signals } = context
    const topic = entry.topics.source
    const payload = this.payload(entry, envelope)
    for (;;) {
      await gate.whenOpen(entry, signals.soft)
      await limiter.acquire(signals.soft)
      // A rebalance may have begun while this waited for a slot; and an operator (or another owner) may have
      // released the id meanwhile: both are checked right before the handler is called.
      if (signals.soft.aborted || !gate.isOpen(entry)) {
        limiter.release()
        continue
      }
      if (!resolution.isPending(envelope)) {
        limiter.release()
        return await this.skipResolved(entry, envelope, signals)
      }
      entry.attempts++
      entry.firstAttemptAt ??= Date.now()
      metrics.attempted.inc({ topic })
      metrics.inFlight.inc()
      const endTimer = metrics.handlerDuration.startTimer({ topic })
      const result = await runAttempt(this.settings.handler, payload, {
        timeoutMs: this.settings.handlerTimeoutMs,
        stop: signals.attempts,
        logger,
        fields: this.fields(entry, envelope),
      })
      endTimer()
      // The slot is given back when the handler really returns: a timed-out handler still runs.
      const settled = result.settled.then(() => {
        metrics.inFlight.dec()
        limiter.release()
      })
      context.work.track(settled)
      if (signals.hard.aborted) return { kind: 'stopped' }
      // A handler that fails once it was asked to stop (revoked, stopping) most likely fails *because* of
      // its aborted signal: not a failure of the record — nothing is classified, dead-lettered or counted;
      // the record stays unresolved for its next owner. (A success still counts: its tombstone is written.)
      if (result.outcome !== 'succeeded' && signals.attempts.aborted) {
        logger.debug('Handler attempt ended after its signal was aborted (revoked or stopping); the record stays unresolved', this.fields(entry, envelope))
        return { kind: 'stopped' }
      }
      if (result.outcome === 'succeeded') {
        const offset = await this.tombstone(entry, envelope, signals.hard)
        resolution.resolved(envelope, offset)
        metrics.succeeded.inc({ topic })
        this.observeResolved(entry, envelope)
        logger.debug('Retry succeeded', this.fields(entry, envelope))
        return { kind: 'resolved', resolution: 'succeeded' }
      }
      const error = result.error
      entry.lastError = error
      if (entry.firstFailedAt === undefined) {
        entry.firstError = error
        entry.firstFailedAt = new Date()
      }
      let kind: FailureKind = 'transient'
      if (result.outcome === 'timed-out') {
        metrics.handlerTimeouts.inc({ topic })
        logger.warn('Handler attempt timed out; its signal is aborted and the attempt counts as a transient failure', {
          ...this.fields(entry, envelope),
          handlerTimeoutMs: this.settings.handlerTimeoutMs,
        })
      } else {
        kind = this.classify(error, entry, envelope)
      }
      if (kind !== 'transient') {
        logger.warn('Handler failed with a non-retriable error; dead-lettering', { ...this.fields(entry, envelope), kind, error })
        const deadLetter = await this.deadLetter(entry, envelope, kind, error, undefined, signals.hard)
        const offset = await this.tombstone(entry, envelope, signals.hard)
        resolution.resolved(envelope, offset)
        this.observeResolved(entry, envelope)
        return { kind: 'resolved', resolution: 'dead-lettered', deadLetter }
      }
      const delayMs = this.settings.backoff(entry.attempts)
      const elapsed = Date.now() - entry.firstAttemptAt
      if (entry.attempts >= this.settings.maxAttempts || elapsed + delayMs > this.settings.maxRetryDurationMs) {
        // Nothing that lets the group move on happens while a timed-out handler still runs.
        await waitSettled(result.settled, signals.soft)
        return await this.exhausted(entry, envelope, error, signals.hard)
      }
      logger.debug('Retry failed; backing off', { ...this.fields(entry, envelope), delayMs, error })
      metrics.backoffWait.observe({ topic }, delayMs / 1000)
      await Promise.all([sleep(delayMs, signals.soft), waitSettled(result.settled, signals.soft)])
    }
  }

  /**
   * The user classifier, then the default rules. A classifier that throws is a bug in user code: the
   * default rules decide instead (and it is logged), so the group is never left without an outcome.
   */
  private classify(error: unknown, entry: RetryEntry, envelope: RetryEnvelope): FailureKind {
    try {
      return classifyError(error, this.settings.classify)
    } catch (classifierError) {
      const kind = classifyError(error)
      this.parts.logger.error('The error classifier threw; using the default classification', {
        ...this.fields(entry, envelope),
        kind,
        error,
        classifierError,
      })
      return kind
    }
  }

  private async exhausted(entry: RetryEntry, envelope: RetryEnvelope, error: unknown, signal: AbortSignal): Promise<ProcessOutcome> {
    const { metrics, logger, resolution } = this.parts
    const policy = this.settings.exhaustedPolicy
    metrics.exhausted.inc({ topic: entry.topics.source })
    const deadLetter = await this.deadLetter(entry, envelope, 'exhausted', error, policy, signal)
    if (policy === 'hold') {
      logger.warn('Retries exhausted; the group is held until an operator releases it (POST /groups/release)', {
        ...this.fields(entry, envelope),
        errorTopic: entry.topics.error,
        error,
      })
      return { kind: 'held', deadLetter }
    }
    logger.warn('Retries exhausted; dead-lettered and the group released', { ...this.fields(entry, envelope), error })
    const offset = await this.tombstone(entry, envelope, signal)
    resolution.resolved(envelope, offset)
    this.observeResolved(entry, envelope)
    return { kind: 'resolved', resolution: 'dead-lettered', deadLetter }
  }

  /**
   * The id is no longer pending: resolved before (a duplicate copy, a record this or another worker
   * resolved before a restart or a rebalance, an operator's release). The handler is not called again —
   * that would be a stale replay after later messages of the key were processed. The tombstone is written
   * again: harmless, and it lets compaction drop a redirect record that a crashed main app wrote again.
   */
  private async skipResolved(entry: RetryEntry, envelope: RetryEnvelope, signals: PartitionSignals): Promise<ProcessOutcome> {
    await this.tombstone(entry, envelope, signals.hard)
    this.parts.metrics.duplicatesSkipped.inc({ topic: entry.topics.source })
    this.parts.logger.debug('Retry record of an id that is no longer pending (already resolved); tombstone written again', this.fields(entry, envelope))
    return { kind: 'resolved', resolution: 'already-resolved' }
  }

  private async deadLetterMalformed(entry: RetryEntry, signals: PartitionSignals): Promise<ProcessOutcome> {
    const record = { topic: entry.retryTopic, partition: entry.retryPartition, offset: entry.offset }
    this.parts.logger.warn('Malformed retry record; writing it to the error topic', { ...record, errorTopic: entry.topics.error, error: entry.malformed })
    await this.parts.writer.writeDeadLetter(
      entry.topics.error,
      {
        reason: 'malformed',
        message: entry.message,
        consumerGroup: this.settings.groupId,
        error: entry.malformed,
        component: 'retry-worker',
        record,
      },
      signals.hard,
    )
    this.parts.metrics.deadLettered.inc({ topic: entry.topics.source, reason: 'malformed' })
    return { kind: 'resolved', resolution: 'malformed', deadLetter: { reason: 'malformed', id: undefined, errorTopic: entry.topics.error, attempts: 0 } }
  }

  private async deadLetter(
    entry: RetryEntry,
    envelope: RetryEnvelope,
    reason: DeadLetterReason,
    error: unknown,
    groupPolicy: ExhaustedPolicy | undefined,
    signal: AbortSignal,
  ): Promise<DeadLetteredEvent> {
    const firstFailedAt = envelope.reason === 'failure' ? parseDate(envelope.redirectedAt) : undefined
    await this.parts.writer.writeDeadLetter(
      entry.topics.error,
      {
        reason,
        message: { ...entry.message, timestamp: envelope.sourceTimestamp ?? entry.message.timestamp },
        source: envelope.source,
        id: envelope.id,
        groupKey: envelope.groupKey,
        consumerGroup: envelope.consumerGroup,
        error,
        component: 'retry-worker',
        attempts: entry.attempts,
        firstErrorMessage: envelope.firstErrorMessage ?? describeError(entry.firstError).message,
        firstFailedAt: firstFailedAt ?? entry.firstFailedAt,
        record: { topic: entry.retryTopic, partition: entry.retryPartition, offset: entry.offset },
        groupPolicy,
      },
      signal,
    )
    this.parts.metrics.deadLettered.inc({ topic: entry.topics.source, reason })
    return { reason, id: envelope.id, errorTopic: entry.topics.error, attempts: entry.attempts }
  }

  private async tombstone(entry: RetryEntry, envelope: RetryEnvelope, signal: AbortSignal): Promise<bigint | undefined> {
    const message = buildTombstone({
      partition: envelope.source.partition,
      id: envelope.id,
      groupKey: envelope.groupKey,
      consumerGroup: envelope.consumerGroup,
    })
    const offset = await this.parts.writer.writeTombstone(entry.topics.redirect, message, signal)
    this.parts.metrics.tombstonesWritten.inc({ topic: entry.topics.source })
    return offset
  }

  private observeResolved(entry: RetryEntry, envelope: RetryEnvelope): void {
    const topic = entry.topics.source
    if (entry.attempts > 0) this.parts.metrics.attempts.observe({ topic }, entry.attempts)
    const redirectedAt = parseDate(envelope.redirectedAt)
    if (redirectedAt) {
      const seconds = (Date.now() - redirectedAt.getTime()) / 1000
      if (seconds >= 0) this.parts.metrics.processingLatency.observe({ topic }, seconds)
    }
  }

  /**
   * What the handler sees: the source topic, partition and offset, and the retry record's key, value and
   * headers (Detour headers included). The timestamp is the source record's when known.
   */
  private payload(entry: RetryEntry, envelope: RetryEnvelope): EachMessagePayload {
    const message: KafkaMessage = {
      ...entry.message,
      offset: envelope.source.offset,
      timestamp: envelope.sourceTimestamp ?? entry.message.timestamp,
    }
    return {
      topic: envelope.source.topic,
      partition: envelope.source.partition,
      message,
      heartbeat: noopHeartbeat,
      pause: noopPause,
    }
  }

  private fields(entry: RetryEntry, envelope: RetryEnvelope): Record<string, unknown> {
    return {
      id: envelope.id,
      groupKey: displayGroupKey(envelope.groupKey),
      retryTopic: entry.retryTopic,
      retryPartition: entry.retryPartition,
      retryOffset: entry.offset,
      attempt: entry.attempts,
    }
  }
}

/** Waits until a handler has really returned; rejects with an abort error when `signal` aborts first. */
async function waitSettled(settled: Promise<void>, signal: AbortSignal): Promise<void> {
  throwIfAborted(signal)
  const aborted = onAbort(signal)
  try {
    await Promise.race([settled, aborted.promise])
  } finally {
    aborted.dispose()
  }
  throwIfAborted(signal)
}

function parseDate(text: string | undefined): Date | undefined {
  if (text === undefined) return undefined
  const time = Date.parse(text)
  return Number.isFinite(time) ? new Date(time) : undefined
}

import type { EachMessageHandler, EachMessagePayload, KafkaMessage } from 'kafkajs'
import type { LRUCache } from 'lru-cache'
import {
  buildDeadLetterRecord,
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
import { isAbortError, sleep } from './abort.js'
import type { ConcurrencyLimiter } from './concurrency-limiter.js'
import type { HandOffWriter } from './hand-off-writer.js'
import type { RetryEntry } from './retry-entry.js'
import type { ExhaustedPolicy } from './retry-worker-options.js'
import type { DeadLetteredEvent, ResolutionKind } from './types.js'

/** The end of the work on one entry. */
export type ProcessOutcome =
  | { readonly kind: 'resolved'; readonly resolution: ResolutionKind; readonly deadLetter?: DeadLetteredEvent }
  | { readonly kind: 'held'; readonly deadLetter: DeadLetteredEvent }
  /** Stopped before the end (shutdown or revocation): the entry stays unresolved and is not committed. */
  | { readonly kind: 'stopped' }

export interface ProcessSignals {
  /** No new attempt starts once aborted (backoff waits end). */
  readonly soft: AbortSignal
  /** Writes in progress are abandoned once aborted. */
  readonly hard: AbortSignal
}

export interface RetryProcessorSettings {
  readonly handler: EachMessageHandler
  readonly classify: ErrorClassifier | undefined
  readonly backoff: BackoffFn
  readonly maxAttempts: number
  readonly maxRetryDurationMs: number
  readonly exhaustedPolicy: ExhaustedPolicy
  /** The main app's consumer group (for dead letters of malformed records). */
  readonly consumerGroup: string
}

const noopHeartbeat = async (): Promise<void> => {}
const noopResume = (): void => {}
const noopPause = (): (() => void) => noopResume

/**
 * Works one retry record to its end: attempts with backoff, classification, dead letters, tombstones,
 * duplicates and malformed records. Ordering is not its concern: the partition scheduler only hands it
 * an entry once every earlier entry of the group is resolved.
 */
export class RetryProcessor {
  constructor(
    private readonly settings: RetryProcessorSettings,
    private readonly limiter: ConcurrencyLimiter,
    private readonly writer: HandOffWriter,
    private readonly completed: LRUCache<string, true>,
    private readonly metrics: RetryMetrics,
    private readonly logger: Logger,
  ) {}

  /** Never rejects with an abort: a shutdown or revocation ends in `{ kind: 'stopped' }`. */
  async process(entry: RetryEntry, signals: ProcessSignals): Promise<ProcessOutcome> {
    try {
      if (entry.envelope === undefined) return await this.deadLetterMalformed(entry, signals)
      if (this.completed.has(entry.envelope.id)) return await this.skipDuplicate(entry, entry.envelope, signals)
      return await this.attempt(entry, entry.envelope, signals)
    } catch (error) {
      if (isAbortError(error)) return { kind: 'stopped' }
      throw error
    }
  }

  /** Releases a held entry: writes its tombstone; the caller then resolves it. */
  async release(entry: RetryEntry, signal: AbortSignal): Promise<void> {
    const envelope = entry.envelope
    if (!envelope) return
    await this.tombstone(entry, envelope, signal)
    this.completed.set(envelope.id, true)
    this.observeResolved(entry, envelope)
  }

  private async attempt(entry: RetryEntry, envelope: RetryEnvelope, signals: ProcessSignals): Promise<ProcessOutcome> {
    const topic = entry.topics.source
    const payload = this.payload(entry, envelope)
    for (;;) {
      await this.limiter.acquire(signals.soft)
      entry.attempts++
      entry.firstAttemptAt ??= Date.now()
      this.metrics.attempted.inc({ topic })
      this.metrics.inFlight.inc()
      const endTimer = this.metrics.handlerDuration.startTimer({ topic })
      let failed = false
      let error: unknown
      try {
        await this.settings.handler(payload)
      } catch (caught) {
        failed = true
        error = caught
      } finally {
        endTimer()
        this.metrics.inFlight.dec()
        this.limiter.release()
      }
      if (signals.hard.aborted) return { kind: 'stopped' }
      if (!failed) {
        await this.tombstone(entry, envelope, signals.hard)
        this.completed.set(envelope.id, true)
        this.metrics.succeeded.inc({ topic })
        this.observeResolved(entry, envelope)
        this.logger.debug('Retry succeeded', this.fields(entry, envelope))
        return { kind: 'resolved', resolution: 'succeeded' }
      }
      entry.lastError = error
      if (entry.firstFailedAt === undefined) {
        entry.firstError = error
        entry.firstFailedAt = new Date()
      }
      const kind = this.classify(error, entry, envelope)
      if (kind !== 'transient') {
        this.logger.warn('Handler failed with a non-retriable error; dead-lettering', { ...this.fields(entry, envelope), kind, error })
        const deadLetter = await this.deadLetter(entry, envelope, kind, error, undefined, signals.hard)
        await this.tombstone(entry, envelope, signals.hard)
        this.completed.set(envelope.id, true)
        this.observeResolved(entry, envelope)
        return { kind: 'resolved', resolution: 'dead-lettered', deadLetter }
      }
      const delayMs = this.settings.backoff(entry.attempts)
      const elapsed = Date.now() - entry.firstAttemptAt
      if (entry.attempts >= this.settings.maxAttempts || elapsed + delayMs > this.settings.maxRetryDurationMs) {
        return this.exhausted(entry, envelope, error, signals.hard)
      }
      this.logger.debug('Retry failed; backing off', { ...this.fields(entry, envelope), delayMs, error })
      this.metrics.backoffWait.observe({ topic }, delayMs / 1000)
      await sleep(delayMs, signals.soft)
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
      this.logger.error('The error classifier threw; using the default classification', {
        ...this.fields(entry, envelope),
        kind,
        error,
        classifierError,
      })
      return kind
    }
  }

  private async exhausted(entry: RetryEntry, envelope: RetryEnvelope, error: unknown, signal: AbortSignal): Promise<ProcessOutcome> {
    const policy = this.settings.exhaustedPolicy
    this.metrics.exhausted.inc({ topic: entry.topics.source })
    const deadLetter = await this.deadLetter(entry, envelope, 'exhausted', error, policy, signal)
    if (policy === 'hold') {
      this.logger.warn('Retries exhausted; the group is held until an operator releases it (POST /groups/release)', {
        ...this.fields(entry, envelope),
        errorTopic: entry.topics.error,
        error,
      })
      return { kind: 'held', deadLetter }
    }
    this.logger.warn('Retries exhausted; dead-lettered and the group released', { ...this.fields(entry, envelope), error })
    await this.tombstone(entry, envelope, signal)
    this.completed.set(envelope.id, true)
    this.observeResolved(entry, envelope)
    return { kind: 'resolved', resolution: 'dead-lettered', deadLetter }
  }

  private async skipDuplicate(entry: RetryEntry, envelope: RetryEnvelope, signals: ProcessSignals): Promise<ProcessOutcome> {
    // Written again so a pending id left by a main-app crash between its writes and its commit is released.
    await this.tombstone(entry, envelope, signals.hard)
    this.metrics.duplicatesSkipped.inc({ topic: entry.topics.source })
    this.logger.debug('Duplicate retry record of a completed id; tombstone written again', this.fields(entry, envelope))
    return { kind: 'resolved', resolution: 'duplicate' }
  }

  private async deadLetterMalformed(entry: RetryEntry, signals: ProcessSignals): Promise<ProcessOutcome> {
    const record = { topic: entry.retryTopic, partition: entry.retryPartition, offset: entry.offset }
    this.logger.warn('Malformed retry record; writing it to the error topic', { ...record, errorTopic: entry.topics.error, error: entry.malformed })
    await this.writer.writeDeadLetter(
      entry.topics.error,
      (withoutValue) =>
        buildDeadLetterRecord({
          reason: 'malformed',
          message: entry.message,
          consumerGroup: this.settings.consumerGroup,
          error: entry.malformed,
          component: 'retry-worker',
          record,
          withoutValue,
        }),
      signals.hard,
    )
    this.metrics.deadLettered.inc({ topic: entry.topics.source, reason: 'malformed' })
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
    await this.writer.writeDeadLetter(
      entry.topics.error,
      (withoutValue) =>
        buildDeadLetterRecord({
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
          withoutValue,
        }),
      signal,
    )
    this.metrics.deadLettered.inc({ topic: entry.topics.source, reason })
    return { reason, id: envelope.id, errorTopic: entry.topics.error, attempts: entry.attempts }
  }

  private async tombstone(entry: RetryEntry, envelope: RetryEnvelope, signal: AbortSignal): Promise<void> {
    const message = buildTombstone({ partition: envelope.source.partition, id: envelope.id, groupKey: envelope.groupKey })
    await this.writer.writeTombstone(entry.topics.redirect, message, signal)
    this.metrics.tombstonesWritten.inc({ topic: entry.topics.source })
  }

  private observeResolved(entry: RetryEntry, envelope: RetryEnvelope): void {
    const topic = entry.topics.source
    if (entry.attempts > 0) this.metrics.attempts.observe({ topic }, entry.attempts)
    const redirectedAt = parseDate(envelope.redirectedAt)
    if (redirectedAt) {
      const seconds = (Date.now() - redirectedAt.getTime()) / 1000
      if (seconds >= 0) this.metrics.processingLatency.observe({ topic }, seconds)
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

function parseDate(text: string | undefined): Date | undefined {
  if (text === undefined) return undefined
  const time = Date.parse(text)
  return Number.isFinite(time) ? new Date(time) : undefined
}

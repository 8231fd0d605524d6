import type { Message, Producer, Transaction } from 'kafkajs'
import {
  DetourFencedError,
  DetourHandOffError,
  DetourStoppingError,
  buildRedirectRecord,
  isFencedError,
  isRecordTooLargeError,
  topicPartitionKey,
  type DeadLetterReason,
  type Logger,
  type RedirectReason,
} from '@detour/core'
import type { HandOff, HandOffContext, PlannedHandOff, RedirectOutcome } from './hand-off.js'
import { retryRecord, type SharedWriter } from './shared-writer.js'

export interface TransactionalHandOffOptions {
  /** A producer for one transactional id (idempotent, one request in flight, acks=all). */
  readonly createProducer: (transactionalId: string) => Producer
  /** The transactional id of a source partition: the same in every instance of the consumer group. */
  readonly transactionalId: (topic: string, partition: number) => string
  readonly writer: SharedWriter
  readonly connectShared: () => Promise<void>
  readonly disconnectShared: () => Promise<void>
  readonly logger: Logger
}

interface PartitionWriter {
  readonly producer: Producer
  readonly transactionalId: string
  /** A transaction ended with an unknown outcome, or the producer was fenced: it must be replaced (claimed again). */
  broken: boolean
}

/**
 * Hand-offs as Kafka transactions, one transactional id per source partition. A redirect is one
 * transaction: the redirect record, the retry record and the source offset (`sendOffsets`). Claiming a
 * partition initialises its transactional id: the broker then fences the previous owner's producer and
 * aborts (or completes) its open transaction before the claim returns.
 *
 * kafkajs speaks TxnOffsetCommit v0-v2 (no group generation, KIP-447): per-partition transactional ids
 * are the fencing it can give, as in Kafka Streams' first exactly-once mode.
 */
export class TransactionalHandOff implements HandOff {
  readonly mode = 'transactional' as const
  private readonly writers = new Map<string, PartitionWriter>()
  /** The latest claim of each partition: a claim that is superseded, released or stopped meanwhile gives up its producer. */
  private readonly claims = new Map<string, number>()
  private claimSequence = 0
  private stopped = false

  constructor(private readonly options: TransactionalHandOffOptions) {}

  start(): Promise<void> {
    return this.options.connectShared()
  }

  async claim(topic: string, partition: number): Promise<void> {
    if (this.stopped) throw new DetourStoppingError('The hand-off is stopping')
    const key = topicPartitionKey(topic, partition)
    const claim = ++this.claimSequence
    this.claims.set(key, claim)
    this.retire(key)
    const transactionalId = this.options.transactionalId(topic, partition)
    const producer = this.options.createProducer(transactionalId)
    try {
      await producer.connect()
      // kafkajs initialises the transactional id (InitProducerId) on the first transaction(), not on
      // connect(): this is the fencing step. Nothing is registered yet, so the abort sends nothing.
      const transaction = await producer.transaction()
      await transaction.abort()
    } catch (error) {
      void producer.disconnect().catch(() => undefined)
      throw new DetourHandOffError(
        topic,
        `Could not initialise the transactional id ${transactionalId} of ${topic}/${partition}: ${(error as Error).message}`,
        error,
      )
    }
    if (this.stopped || this.claims.get(key) !== claim) {
      // Released (revoked), stopped or claimed again while this claim was in flight: its producer is not kept.
      void producer.disconnect().catch(() => undefined)
      throw this.stopped
        ? new DetourStoppingError('The hand-off stopped while a partition was being claimed')
        : new DetourFencedError(topic, partition, `The claim of ${topic}/${partition} was superseded (released or claimed again) while in flight`)
    }
    this.retire(key)
    this.writers.set(key, { producer, transactionalId, broken: false })
  }

  isClaimed(topic: string, partition: number): boolean {
    const writer = this.writers.get(topicPartitionKey(topic, partition))
    return writer !== undefined && !writer.broken
  }

  async release(topic: string, partition: number): Promise<void> {
    const key = topicPartitionKey(topic, partition)
    this.claims.delete(key)
    this.retire(key)
  }

  private retire(key: string): void {
    const writer = this.writers.get(key)
    if (!writer) return
    this.writers.delete(key)
    writer.producer.disconnect().catch((error: unknown) => this.options.logger.debug('Disconnecting a partition producer failed', { error }))
  }

  redirect(ctx: HandOffContext, reason: RedirectReason, error: unknown, onPending: (redirectBaseOffset?: string) => void): Promise<RedirectOutcome> {
    const redirect = buildRedirectRecord({ source: ctx.source, id: ctx.id, groupKey: ctx.groupKey, reason, consumerGroup: ctx.consumerGroup })
    return this.inTransaction(
      ctx,
      [
        { topic: ctx.topics.redirect, messages: [redirect] },
        { topic: ctx.topics.retry, messages: [retryRecord(ctx, reason, error)] },
      ],
      onPending,
    )
  }

  resume(ctx: HandOffContext, reason: RedirectReason, error: unknown): Promise<RedirectOutcome> {
    return this.inTransaction(ctx, [{ topic: ctx.topics.retry, messages: [retryRecord(ctx, reason, error)] }], () => {})
  }

  handOffMany(plans: readonly PlannedHandOff[], nextOffset: string, onPending: (redirectBaseOffset?: string) => void): Promise<RedirectOutcome> {
    const first = plans[0]
    if (!first) return Promise.resolve({ kind: 'redirected' })
    const redirects: Message[] = []
    const retries: Message[] = []
    for (const { ctx, kind, reason, error } of plans) {
      if (kind === 'redirect') redirects.push(buildRedirectRecord({ source: ctx.source, id: ctx.id, groupKey: ctx.groupKey, reason, consumerGroup: ctx.consumerGroup }))
      retries.push(retryRecord(ctx, reason, error))
    }
    const topicMessages = [
      ...(redirects.length > 0 ? [{ topic: first.ctx.topics.redirect, messages: redirects }] : []),
      { topic: first.ctx.topics.retry, messages: retries },
    ]
    return this.inTransaction(first.ctx, topicMessages, onPending, nextOffset)
  }

  private async inTransaction(
    ctx: HandOffContext,
    topicMessages: Array<{ topic: string; messages: Message[] }>,
    onCommitted: (redirectBaseOffset: string | undefined) => void,
    nextOffset = (BigInt(ctx.source.offset) + 1n).toString(),
  ): Promise<RedirectOutcome> {
    const { topic, partition } = ctx.source
    const writer = this.writers.get(topicPartitionKey(topic, partition))
    if (!writer || writer.broken) {
      throw new DetourHandOffError(ctx.topics.redirect, `${topic}/${partition} has no claimed transactional producer`, undefined)
    }
    let transaction: Transaction
    let redirectBaseOffset: string | undefined
    try {
      transaction = await writer.producer.transaction()
    } catch (failure) {
      writer.broken = true
      throw this.failure(ctx, writer, 'beginning', failure)
    }
    try {
      // One produce request per broker for both records: they are committed together or not at all.
      const metadata = await transaction.sendBatch({ acks: -1, topicMessages })
      // Where the redirect records landed (they are consecutive from there): see `onPending`.
      redirectBaseOffset = (Array.isArray(metadata) ? metadata : []).find((m) => m.topicName === ctx.topics.redirect && m.partition === partition)?.baseOffset
      await transaction.sendOffsets({
        consumerGroupId: ctx.consumerGroup,
        topics: [{ topic, partitions: [{ partition, offset: nextOffset }] }],
      })
    } catch (failure) {
      if (!isFencedError(failure)) {
        try {
          await transaction.abort()
        } catch {
          writer.broken = true
          throw this.failure(ctx, writer, 'writing', failure)
        }
        // Aborted: nothing was written. A record too large can never be written: an outcome, not an error.
        if (isRecordTooLargeError(failure)) return { kind: 'too-large', redirectWritten: false, error: failure }
      } else {
        writer.broken = true
      }
      throw this.failure(ctx, writer, 'writing', failure)
    }
    try {
      await transaction.commit()
    } catch (failure) {
      // Committed or not: only the next owner of the transactional id (a new claim) can tell.
      writer.broken = true
      throw this.failure(ctx, writer, 'committing', failure)
    }
    onCommitted(redirectBaseOffset)
    return { kind: 'redirected' }
  }

  private failure(ctx: HandOffContext, writer: PartitionWriter, step: string, error: unknown): Error {
    const { topic, partition, offset } = ctx.source
    if (isFencedError(error)) {
      return new DetourFencedError(
        topic,
        partition,
        `The hand-off of ${topic}/${partition}/${offset} was fenced: another instance initialised ${writer.transactionalId} (it owns the partition now)`,
        { cause: error },
      )
    }
    return new DetourHandOffError(
      ctx.topics.redirect,
      `The hand-off transaction of ${topic}/${partition}/${offset} failed while ${step}: ${(error as Error | undefined)?.message ?? String(error)}`,
      error,
    )
  }

  deadLetter(ctx: HandOffContext, reason: DeadLetterReason, error: unknown, attempts: number): Promise<void> {
    return this.options.writer.deadLetter(ctx, reason, error, attempts)
  }

  tombstone(ctx: HandOffContext): Promise<void> {
    return this.options.writer.tombstone(ctx)
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.claims.clear()
    const writers = [...this.writers.values()]
    this.writers.clear()
    await Promise.allSettled(writers.map((writer) => writer.producer.disconnect()))
    await this.options.disconnectShared()
  }
}

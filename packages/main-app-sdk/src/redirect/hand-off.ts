import type { KafkaMessage, Message, Producer } from 'kafkajs'
import {
  DetourHandOffError,
  isRecordTooLargeError,
  buildDeadLetterRecord,
  buildRedirectRecord,
  buildRetryRecord,
  buildTombstone,
  type DeadLetterReason,
  type DetourTopics,
  type GroupKey,
  type RedirectReason,
  type SourceCoordinates,
} from '@detour/core'

export interface HandOffContext {
  readonly topics: DetourTopics
  readonly source: SourceCoordinates
  readonly message: KafkaMessage
  readonly id: string
  readonly groupKey: GroupKey
  readonly consumerGroup: string
}

/**
 * The writes of the main app. Every write is awaited with acks=all (kafkajs' default `acks: -1`)
 * before the next step; a failure throws {@link DetourHandOffError} so the source offset is not committed.
 */
export class HandOff {
  constructor(private readonly producer: Producer) {}

  private async send(topic: string, message: Message, what: string): Promise<void> {
    try {
      await this.producer.send({ topic, acks: -1, messages: [message] })
    } catch (error) {
      throw new DetourHandOffError(topic, `Writing the ${what} record to ${topic} failed: ${(error as Error).message}`, error)
    }
  }

  /** Step 1 of a redirect: the id becomes pending (durably) before the retry record exists. */
  async writeRedirect(ctx: HandOffContext, reason: RedirectReason): Promise<void> {
    await this.send(
      ctx.topics.redirect,
      buildRedirectRecord({ source: ctx.source, id: ctx.id, groupKey: ctx.groupKey, reason, consumerGroup: ctx.consumerGroup }),
      'redirect',
    )
  }

  /** Step 2 of a redirect: the message itself, for the retry worker. */
  async writeRetry(ctx: HandOffContext, reason: RedirectReason, error?: unknown): Promise<void> {
    await this.send(
      ctx.topics.retry,
      buildRetryRecord({ source: ctx.source, message: ctx.message, id: ctx.id, groupKey: ctx.groupKey, reason, consumerGroup: ctx.consumerGroup, error }),
      'retry',
    )
  }

  /** Releases an id from the main app itself (only when its retry record can never be written). */
  async writeTombstone(ctx: HandOffContext): Promise<void> {
    await this.send(ctx.topics.redirect, buildTombstone({ partition: ctx.source.partition, id: ctx.id, groupKey: ctx.groupKey }), 'tombstone')
  }

  /** Sends the message to the error topic; retries without the value if the record is too large. */
  async writeDeadLetter(ctx: HandOffContext, reason: DeadLetterReason, error: unknown, attempts: number): Promise<void> {
    const build = (withoutValue: boolean): Message =>
      buildDeadLetterRecord({
        reason,
        message: ctx.message,
        source: ctx.source,
        id: ctx.id,
        groupKey: ctx.groupKey,
        consumerGroup: ctx.consumerGroup,
        error,
        component: 'main-app',
        attempts,
        withoutValue,
      })
    try {
      await this.producer.send({ topic: ctx.topics.error, acks: -1, messages: [build(false)] })
    } catch (first) {
      if (!isRecordTooLargeError(first)) {
        throw new DetourHandOffError(ctx.topics.error, `Writing the dead letter to ${ctx.topics.error} failed: ${(first as Error).message}`, first)
      }
      await this.send(ctx.topics.error, build(true), 'dead-letter (without value)')
    }
  }
}

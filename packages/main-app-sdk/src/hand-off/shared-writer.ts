import type { Message, Producer } from 'kafkajs'
import {
  DetourHandOffError,
  buildRetryRecord,
  buildTombstone,
  isRecordTooLargeError,
  writeDeadLetter,
  type DeadLetterReason,
  type RedirectReason,
} from '@detour/core'
import type { HandOffContext, RedirectOutcome } from './hand-off.js'

/**
 * The writes that need no transaction, on one idempotent producer: dead letters, the main app's
 * tombstones, and (sequential mode) every hand-off record. Each waits for acks=all.
 */
export class SharedWriter {
  constructor(private readonly producer: Producer) {}

  async send(topic: string, message: Message, what: string): Promise<void> {
    try {
      await this.producer.send({ topic, acks: -1, messages: [message] })
    } catch (error) {
      throw new DetourHandOffError(topic, `Writing the ${what} record to ${topic} failed: ${(error as Error).message}`, error)
    }
  }

  async sendMany(topic: string, messages: Message[], what: string): Promise<void> {
    try {
      await this.producer.send({ topic, acks: -1, messages })
    } catch (error) {
      throw new DetourHandOffError(topic, `Writing ${messages.length} ${what} records to ${topic} failed: ${(error as Error).message}`, error)
    }
  }

  /** The retry record alone (the id is pending already). */
  async retry(ctx: HandOffContext, reason: RedirectReason, error: unknown): Promise<RedirectOutcome> {
    try {
      await this.send(ctx.topics.retry, retryRecord(ctx, reason, error), 'retry')
      return { kind: 'redirected' }
    } catch (failure) {
      if (isRecordTooLargeError(failure)) return { kind: 'too-large', redirectWritten: true, error: failure }
      throw failure
    }
  }

  async deadLetter(ctx: HandOffContext, reason: DeadLetterReason, error: unknown, attempts: number): Promise<void> {
    try {
      await writeDeadLetter((message) => this.producer.send({ topic: ctx.topics.error, acks: -1, messages: [message] }).then(() => undefined), {
        reason,
        message: ctx.message,
        source: ctx.source,
        id: ctx.id,
        groupKey: ctx.groupKey,
        consumerGroup: ctx.consumerGroup,
        error,
        component: 'main-app',
        attempts,
      })
    } catch (failure) {
      throw new DetourHandOffError(ctx.topics.error, `Writing the dead letter to ${ctx.topics.error} failed: ${(failure as Error).message}`, failure)
    }
  }

  async tombstone(ctx: HandOffContext): Promise<void> {
    await this.send(
      ctx.topics.redirect,
      buildTombstone({ partition: ctx.source.partition, id: ctx.id, groupKey: ctx.groupKey, consumerGroup: ctx.consumerGroup }),
      'tombstone',
    )
  }
}

export function retryRecord(ctx: HandOffContext, reason: RedirectReason, error: unknown): Message {
  return buildRetryRecord({
    source: ctx.source,
    message: ctx.message,
    id: ctx.id,
    groupKey: ctx.groupKey,
    reason,
    consumerGroup: ctx.consumerGroup,
    error,
  })
}

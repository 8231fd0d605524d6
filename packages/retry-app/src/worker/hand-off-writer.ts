import type { Message, RecordMetadata } from 'kafkajs'
import { isRecordTooLargeError, writeDeadLetter, type BackoffFn, type DeadLetterInput, type Logger } from '@detour/core'
import { sleep, throwIfAborted } from './abort.js'

export interface HandOffFailure {
  readonly target: 'tombstone' | 'dead-letter'
  readonly topic: string
  readonly attempt: number
  readonly error: unknown
}

/** The part of a kafkajs `Producer` the writer uses. */
export interface HandOffProducer {
  send(record: { topic: string; acks: number; messages: Message[] }): Promise<RecordMetadata[]>
}

/**
 * Writes the records the worker's correctness depends on: tombstones and dead letters. A write is
 * acknowledged by the broker (acks=all) before it returns; a failed write is retried with backoff until
 * it succeeds or `signal` aborts (then it throws a `WorkAbortedError`). Nothing is skipped.
 */
export class HandOffWriter {
  constructor(
    private readonly producer: HandOffProducer,
    private readonly backoff: BackoffFn,
    private readonly logger: Logger,
    private readonly onFailure: (failure: HandOffFailure) => void,
  ) {}

  /**
   * Writes a tombstone. Returns its offset in the redirect partition (`undefined` if the broker did not
   * say), which tells when the redirect follower has applied it.
   */
  async writeTombstone(topic: string, message: Message, signal: AbortSignal): Promise<bigint | undefined> {
    for (let attempt = 1; ; attempt++) {
      throwIfAborted(signal)
      try {
        const [metadata] = await this.producer.send({ topic, acks: -1, messages: [message] })
        const offset = metadata?.baseOffset ?? metadata?.offset
        return offset === undefined ? undefined : BigInt(offset)
      } catch (error) {
        await this.failed({ target: 'tombstone', topic, attempt, error }, signal)
      }
    }
  }

  /**
   * Writes a dead letter. When the broker rejects it as too large, core's `writeDeadLetter` writes it again
   * without the value and user headers. Returns whether the value had to be dropped.
   */
  async writeDeadLetter(topic: string, input: DeadLetterInput, signal: AbortSignal): Promise<{ withoutValue: boolean }> {
    // Once the broker said "too large", retries of a failed write go straight to the form without value.
    let tooLarge = false
    const send = async (message: Message): Promise<void> => {
      try {
        await this.producer.send({ topic, acks: -1, messages: [message] })
      } catch (error) {
        if (isRecordTooLargeError(error)) tooLarge = true
        throw error
      }
    }
    for (let attempt = 1; ; attempt++) {
      throwIfAborted(signal)
      try {
        const result = await writeDeadLetter(send, tooLarge ? { ...input, withoutValue: true } : input)
        if (result.withoutValue && !input.withoutValue) {
          this.logger.warn('Dead letter too large for the error topic; written without value and user headers', { topic, id: input.id })
        }
        return result
      } catch (error) {
        await this.failed({ target: 'dead-letter', topic, attempt, error }, signal)
      }
    }
  }

  private async failed(failure: HandOffFailure, signal: AbortSignal): Promise<void> {
    const delayMs = this.backoff(failure.attempt)
    this.logger.warn(`Writing a ${failure.target} failed; retrying (the retry record stays unresolved)`, {
      topic: failure.topic,
      attempt: failure.attempt,
      delayMs,
      error: failure.error,
    })
    this.onFailure(failure)
    await sleep(delayMs, signal)
  }
}

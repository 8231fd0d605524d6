import type { Message, Producer } from 'kafkajs'
import { isRecordTooLargeError, type BackoffFn, type Logger } from '@detour/core'
import { sleep, throwIfAborted } from './abort.js'

export interface HandOffFailure {
  readonly target: 'tombstone' | 'dead-letter'
  readonly topic: string
  readonly attempt: number
  readonly error: unknown
}

/**
 * Writes the records the worker's correctness depends on: tombstones and dead letters. A write is
 * acknowledged by the broker (acks=all) before it returns; a failed write is retried with backoff until
 * it succeeds or `signal` aborts (then it throws a `WorkAbortedError`). Nothing is skipped.
 */
export class HandOffWriter {
  constructor(
    private readonly producer: Producer,
    private readonly backoff: BackoffFn,
    private readonly logger: Logger,
    private readonly onFailure: (failure: HandOffFailure) => void,
  ) {}

  /** Writes a tombstone (or any record that must not be lost). */
  async writeTombstone(topic: string, message: Message, signal: AbortSignal): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      throwIfAborted(signal)
      try {
        await this.producer.send({ topic, acks: -1, messages: [message] })
        return
      } catch (error) {
        await this.failed({ target: 'tombstone', topic, attempt, error }, signal)
      }
    }
  }

  /**
   * Writes a dead letter built by `build`. When the broker rejects it as too large (a non-retriable
   * error), it is rebuilt without the value and user headers (`withoutValue`) and written again.
   * Returns whether the value had to be dropped.
   */
  async writeDeadLetter(topic: string, build: (withoutValue: boolean) => Message, signal: AbortSignal): Promise<{ withoutValue: boolean }> {
    let withoutValue = false
    for (let attempt = 1; ; attempt++) {
      throwIfAborted(signal)
      try {
        await this.producer.send({ topic, acks: -1, messages: [build(withoutValue)] })
        return { withoutValue }
      } catch (error) {
        if (!withoutValue && isRecordTooLargeError(error)) {
          withoutValue = true
          this.logger.warn('Dead letter too large for the error topic; writing it again without value and user headers', {
            topic,
            error,
          })
          continue
        }
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

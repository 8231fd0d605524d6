import { buildRedirectRecord, isRecordTooLargeError, type DeadLetterReason, type RedirectReason } from '@detour/core'
import type { HandOff, HandOffContext, PlannedHandOff, RedirectOutcome } from './hand-off.js'
import { retryRecord, type SharedWriter } from './shared-writer.js'

/**
 * Hand-offs without transactions: the redirect record, acknowledged, then the retry record, on one
 * idempotent producer. The retry record is never written before its redirect record is acknowledged,
 * otherwise the worker could release the id before the record that makes it pending exists.
 */
export class SequentialHandOff implements HandOff {
  readonly mode = 'sequential' as const

  constructor(
    private readonly writer: SharedWriter,
    private readonly connect: () => Promise<void>,
    private readonly disconnect: () => Promise<void>,
  ) {}

  start(): Promise<void> {
    return this.connect()
  }

  async claim(): Promise<void> {}

  isClaimed(): boolean {
    return true
  }

  async release(): Promise<void> {}

  async redirect(ctx: HandOffContext, reason: RedirectReason, error: unknown, onPending: () => void): Promise<RedirectOutcome> {
    const record = buildRedirectRecord({ source: ctx.source, id: ctx.id, groupKey: ctx.groupKey, reason, consumerGroup: ctx.consumerGroup })
    try {
      await this.writer.send(ctx.topics.redirect, record, 'redirect')
    } catch (failure) {
      if (isRecordTooLargeError(failure)) return { kind: 'too-large', redirectWritten: false, error: failure }
      throw failure
    }
    onPending()
    return this.writer.retry(ctx, reason, error)
  }

  resume(ctx: HandOffContext, reason: RedirectReason, error: unknown): Promise<RedirectOutcome> {
    return this.writer.retry(ctx, reason, error)
  }

  /** Every redirect record in one request (acknowledged), then every retry record in one request. */
  async handOffMany(plans: readonly PlannedHandOff[], _nextOffset: string, onPending: () => void): Promise<RedirectOutcome> {
    const first = plans[0]
    if (!first) return { kind: 'redirected' }
    const redirects = plans
      .filter((plan) => plan.kind === 'redirect')
      .map(({ ctx, reason }) => buildRedirectRecord({ source: ctx.source, id: ctx.id, groupKey: ctx.groupKey, reason, consumerGroup: ctx.consumerGroup }))
    let redirectWritten = false
    try {
      if (redirects.length > 0) await this.writer.sendMany(first.ctx.topics.redirect, redirects, 'redirect')
      redirectWritten = redirects.length > 0
      // Recorded before the retry records exist: a tombstone the follower applies later finds the ids.
      onPending()
      await this.writer.sendMany(
        first.ctx.topics.retry,
        plans.map(({ ctx, reason, error }) => retryRecord(ctx, reason, error)),
        'retry',
      )
    } catch (failure) {
      if (isRecordTooLargeError(failure)) return { kind: 'too-large', redirectWritten, error: failure }
      throw failure
    }
    return { kind: 'redirected' }
  }

  deadLetter(ctx: HandOffContext, reason: DeadLetterReason, error: unknown, attempts: number): Promise<void> {
    return this.writer.deadLetter(ctx, reason, error, attempts)
  }

  tombstone(ctx: HandOffContext): Promise<void> {
    return this.writer.tombstone(ctx)
  }

  stop(): Promise<void> {
    return this.disconnect()
  }
}

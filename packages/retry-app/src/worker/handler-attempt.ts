import type { EachMessagePayload } from 'kafkajs'
import { DetourStoppingError, DetourTimeoutError, type LogFields, type Logger } from '@detour/core'
import { linkAbort } from './abort.js'
import type { RetryHandler } from './retry-worker-options.js'

/** The end of one handler invocation, as far as the worker waits for it. */
export type AttemptResult =
  | { readonly outcome: 'succeeded'; readonly settled: Promise<void> }
  | { readonly outcome: 'failed'; readonly error: unknown; readonly settled: Promise<void> }
  /**
   * The handler did not return within the timeout: its `signal` is aborted and the attempt counts as a
   * transient failure with a {@link DetourTimeoutError}. `settled` resolves when the handler really returns.
   */
  | { readonly outcome: 'timed-out'; readonly error: DetourTimeoutError; readonly settled: Promise<void> }

export interface AttemptOptions {
  readonly timeoutMs: number
  /** Aborts the handler's `signal` (revocation, a stop that gives up): the handler should stop. */
  readonly stop: AbortSignal
  readonly logger: Logger
  /** Log fields that name the record. */
  readonly fields: LogFields
}

const settledNow = Promise.resolve()

/**
 * Calls the handler once with an abort `signal`. Resolves when the handler returns, or when `timeoutMs`
 * passes first: then the signal aborts with a {@link DetourTimeoutError} and a warning is logged every
 * `timeoutMs` until the handler has returned (`settled`). The caller must not start the group's next
 * attempt before `settled`: two attempts of one group never overlap.
 */
export function runAttempt(handler: RetryHandler, payload: EachMessagePayload, options: AttemptOptions): Promise<AttemptResult> {
  const controller = new AbortController()
  const unlink = linkAbort(options.stop, controller, () => new DetourStoppingError('The partition was revoked or the worker is stopping'))
  // Called inside then(): a handler that throws synchronously fails like one that rejects.
  const running = Promise.resolve().then(() => handler({ ...payload, signal: controller.signal }))
  return new Promise<AttemptResult>((resolve) => {
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      const error = new DetourTimeoutError(`The handler did not return within handlerTimeoutMs (${options.timeoutMs} ms)`)
      controller.abort(error)
      const started = Date.now()
      const warn = setInterval(() => {
        options.logger.warn('A timed-out handler has still not returned; its group waits for it (strict order)', {
          ...options.fields,
          runningMs: Date.now() - started + options.timeoutMs,
        })
      }, options.timeoutMs)
      warn.unref()
      const settled = running.then(
        () => undefined,
        () => undefined,
      )
      void settled.then(() => {
        clearInterval(warn)
        unlink()
      })
      resolve({ outcome: 'timed-out', error, settled })
    }, options.timeoutMs)
    running.then(
      () => {
        if (timedOut) return
        clearTimeout(timer)
        unlink()
        resolve({ outcome: 'succeeded', settled: settledNow })
      },
      (error: unknown) => {
        if (timedOut) return
        clearTimeout(timer)
        unlink()
        resolve({ outcome: 'failed', error, settled: settledNow })
      },
    )
  })
}

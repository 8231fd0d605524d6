import { setTimeout as delay } from 'node:timers/promises'
import { MAX_TIMER_DELAY_MS } from '../backoff/resolve-backoff.js'

/** Thrown (or rejected with) when work stops because a signal was aborted. */
export class WorkAbortedError extends Error {
  constructor(message = 'Aborted') {
    super(message)
    Object.setPrototypeOf(this, new.target.prototype)
    this.name = 'WorkAbortedError'
  }
}

export function isAbortError(error: unknown): boolean {
  return error instanceof WorkAbortedError || (error instanceof Error && error.name === 'AbortError')
}

/** Waits `ms` on a timer (never blocking the event loop); rejects with an abort error when `signal` aborts. */
export async function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) throw new WorkAbortedError()
  await delay(Math.min(Math.max(0, ms), MAX_TIMER_DELAY_MS), undefined, { signal })
}

export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw new WorkAbortedError()
}

import { setTimeout as delay } from 'node:timers/promises'
import { MAX_TIMER_DELAY_MS } from '@detour/core'

/** Thrown (or rejected with) when work stops because a signal was aborted. */
export class WorkAbortedError extends Error {
  constructor(message = 'Aborted') {
    super(message)
    Object.setPrototypeOf(this, new.target.prototype)
    this.name = 'WorkAbortedError'
  }
}

export function isAbortError(error: unknown): boolean {
  return error instanceof WorkAbortedError || (error instanceof Error && (error.name === 'AbortError' || error.name === 'DetourStoppingError'))
}

/**
 * Waits `ms` on a timer (never blocking the event loop); rejects with a `WorkAbortedError` when `signal`
 * aborts (not Node's `AbortError`: an abort surfaces as one error type everywhere in the worker).
 */
export async function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) throw new WorkAbortedError()
  try {
    await delay(Math.min(Math.max(0, ms), MAX_TIMER_DELAY_MS), undefined, { signal })
  } catch (error) {
    if (signal.aborted) throw new WorkAbortedError()
    throw error
  }
}

export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw new WorkAbortedError()
}

/** Resolves when `signal` aborts (never rejects); `dispose` removes the listener. */
export function onAbort(signal: AbortSignal): { promise: Promise<void>; dispose: () => void } {
  if (signal.aborted) return { promise: Promise.resolve(), dispose: () => {} }
  let listener: () => void = () => {}
  const promise = new Promise<void>((resolve) => {
    listener = () => resolve()
    signal.addEventListener('abort', listener, { once: true })
  })
  return { promise, dispose: () => signal.removeEventListener('abort', listener) }
}

/** Aborts `child` when `parent` aborts; returns the function that unlinks them. */
export function linkAbort(parent: AbortSignal, child: AbortController, reason?: () => unknown): () => void {
  if (parent.aborted) {
    child.abort(reason?.())
    return () => {}
  }
  const listener = (): void => child.abort(reason?.())
  parent.addEventListener('abort', listener, { once: true })
  return () => parent.removeEventListener('abort', listener)
}

/**
 * Waits for `step` at most `timeoutMs`: `{ done: true, value }`, or `{ done: false }` at the timeout (the step
 * goes on unobserved; a later rejection of it is swallowed).
 */
export async function withinTime<T>(step: Promise<T>, timeoutMs: number): Promise<{ done: true; value: T } | { done: false }> {
  step.catch(() => undefined)
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<{ done: false }>((resolve) => {
    timer = setTimeout(() => resolve({ done: false }), Math.min(Math.max(0, timeoutMs), MAX_TIMER_DELAY_MS))
  })
  try {
    return await Promise.race([step.then((value) => ({ done: true as const, value })), expired])
  } finally {
    clearTimeout(timer)
  }
}

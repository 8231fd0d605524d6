import { WorkAbortedError } from './abort.js'

interface Waiter {
  resolve(): void
  cleanup(): void
}

/**
 * A fair (FIFO) counting semaphore: at most `limit` holders at a time. Waiting is abortable; an aborted
 * waiter leaves the queue at once, without taking a slot (a revocation while every slot is held by a
 * handler that never returns must not leave its waiters behind).
 */
export class ConcurrencyLimiter {
  private active = 0
  /** Waiters in arrival order (a `Set` keeps insertion order and removes in O(1)). */
  private readonly waiters = new Set<Waiter>()

  constructor(readonly limit: number) {}

  /** Slots in use. */
  get inUse(): number {
    return this.active
  }

  /** Callers waiting for a slot. */
  get waiting(): number {
    return this.waiters.size
  }

  /** Takes a slot, waiting for one if needed. Rejects with a `WorkAbortedError` when `signal` aborts first. */
  acquire(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(new WorkAbortedError())
    if (this.active < this.limit && this.waiters.size === 0) {
      this.active++
      return Promise.resolve()
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        this.waiters.delete(waiter)
        reject(new WorkAbortedError())
      }
      const waiter: Waiter = { resolve, cleanup: () => signal.removeEventListener('abort', onAbort) }
      signal.addEventListener('abort', onAbort, { once: true })
      this.waiters.add(waiter)
    })
  }

  /** Gives a slot back; the oldest waiter gets it. */
  release(): void {
    const next = this.waiters.values().next()
    if (next.done) {
      this.active--
      return
    }
    const waiter = next.value
    this.waiters.delete(waiter)
    waiter.cleanup()
    waiter.resolve()
  }
}

import { WorkAbortedError } from './abort.js'
import { Fifo } from './fifo.js'

interface Waiter {
  resolve(): void
  reject(error: Error): void
  settled: boolean
  cleanup(): void
}

/**
 * A fair (FIFO) counting semaphore: at most `limit` holders at a time. Waiting is abortable; an aborted
 * waiter leaves the queue without taking a slot.
 */
export class ConcurrencyLimiter {
  private active = 0
  private readonly waiters = new Fifo<Waiter>()

  constructor(readonly limit: number) {}

  /** Slots in use. */
  get inUse(): number {
    return this.active
  }

  /** Takes a slot, waiting for one if needed. Rejects with a `WorkAbortedError` when `signal` aborts first. */
  acquire(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(new WorkAbortedError())
    if (this.active < this.limit && this.waiters.length === 0) {
      this.active++
      return Promise.resolve()
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        if (waiter.settled) return
        waiter.settled = true
        reject(new WorkAbortedError())
      }
      const waiter: Waiter = {
        resolve,
        reject,
        settled: false,
        cleanup: () => signal.removeEventListener('abort', onAbort),
      }
      signal.addEventListener('abort', onAbort, { once: true })
      this.waiters.push(waiter)
    })
  }

  /** Gives a slot back; the oldest live waiter gets it. */
  release(): void {
    for (;;) {
      const waiter = this.waiters.shift()
      if (waiter === undefined) {
        this.active--
        return
      }
      waiter.cleanup()
      if (waiter.settled) continue
      waiter.settled = true
      waiter.resolve()
      return
    }
  }
}

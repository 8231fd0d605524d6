import { setTimeout as delay } from 'node:timers/promises'
import { linkAbort } from './abort.js'

/**
 * The background work of one owner (a partition, the worker): promises that never reject. `idle()` waits
 * until none is left, or until a timeout, and says how many were still running.
 */
export class WorkTracker {
  private readonly running = new Set<Promise<unknown>>()

  get size(): number {
    return this.running.size
  }

  /** Tracks `work` until it settles (a rejection is swallowed here: report it before handing it over). */
  track(work: Promise<unknown>): void {
    const tracked: Promise<void> = work.then(
      () => {
        this.running.delete(tracked)
      },
      () => {
        this.running.delete(tracked)
      },
    )
    this.running.add(tracked)
  }

  /**
   * Waits until nothing is running, work added meanwhile included, `timeoutMs` passed or `signal` aborted.
   * Returns how much was still running (0 when idle).
   */
  async idle(timeoutMs: number, signal?: AbortSignal): Promise<number> {
    if (this.running.size === 0) return 0
    if (signal?.aborted) return this.running.size
    const timeout = new AbortController()
    const unlink = signal ? linkAbort(signal, timeout) : () => {}
    const expired = delay(timeoutMs, 'timeout' as const, { signal: timeout.signal }).catch(() => 'timeout' as const)
    try {
      while (this.running.size > 0) {
        const outcome = await Promise.race([Promise.allSettled([...this.running]), expired])
        if (outcome === 'timeout') return this.running.size
      }
      return 0
    } finally {
      unlink()
      timeout.abort()
    }
  }
}

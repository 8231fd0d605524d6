import { describe, expect, it } from 'vitest'
import { ConcurrencyLimiter } from './concurrency-limiter.js'

describe('ConcurrencyLimiter', () => {
  it('admits up to the limit and hands slots over in FIFO order', async () => {
    const limiter = new ConcurrencyLimiter(2)
    const signal = new AbortController().signal
    await limiter.acquire(signal)
    await limiter.acquire(signal)
    const order: number[] = []
    const third = limiter.acquire(signal).then(() => order.push(3))
    const fourth = limiter.acquire(signal).then(() => order.push(4))
    await Promise.resolve()
    expect(order).toEqual([])
    expect(limiter.inUse).toBe(2)
    limiter.release()
    await third
    limiter.release()
    await fourth
    expect(order).toEqual([3, 4])
    limiter.release()
    limiter.release()
    expect(limiter.inUse).toBe(0)
  })

  it('drops an aborted waiter without giving it a slot', async () => {
    const limiter = new ConcurrencyLimiter(1)
    await limiter.acquire(new AbortController().signal)
    const aborter = new AbortController()
    const aborted = limiter.acquire(aborter.signal)
    const next = limiter.acquire(new AbortController().signal)
    aborter.abort()
    await expect(aborted).rejects.toThrow(/Aborted/)
    limiter.release()
    await next
    expect(limiter.inUse).toBe(1)
    limiter.release()
    expect(limiter.inUse).toBe(0)
    await expect(limiter.acquire(aborter.signal)).rejects.toThrow(/Aborted/)
  })

  it('forgets an aborted waiter at once, even while every slot stays held (handlers that never return)', async () => {
    const limiter = new ConcurrencyLimiter(1)
    // A handler that never returns keeps the only slot; each revocation aborts the waiters of its partition.
    await limiter.acquire(new AbortController().signal)
    for (let i = 0; i < 1000; i++) {
      const revoked = new AbortController()
      const waiting = limiter.acquire(revoked.signal).catch(() => undefined)
      revoked.abort()
      await waiting
    }
    expect(limiter.waiting).toBe(0)
    const live = limiter.acquire(new AbortController().signal)
    expect(limiter.waiting).toBe(1)
    limiter.release()
    await live
    expect(limiter.inUse).toBe(1)
  })
})

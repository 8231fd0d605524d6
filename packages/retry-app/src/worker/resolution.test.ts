import { describe, expect, it } from 'vitest'
import { DetourTimeoutError, GroupStore, groupKeyToStoreKey, noopLogger, type WaitOptions } from '@detour/core'
import { retryEntry } from '../test-support/entries.js'
import { WorkAbortedError, isAbortError } from './abort.js'
import { Resolution, type ResolutionFollower } from './resolution.js'

/** A follower whose waits the test controls. */
class FakeFollower implements ResolutionFollower {
  running = true
  positionNow = 0n
  failures: Error[] = []
  readonly waits: Array<{ topic: string; partition: number; target: bigint }> = []
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  async waitForPosition(topic: string, partition: number, target: bigint, options?: WaitOptions): Promise<void> {
    this.waits.push({ topic, partition, target })
    options?.signal?.throwIfAborted()
    const failure = this.failures.shift()
    if (failure) throw failure
  }
  position(): bigint {
    return this.positionNow
  }
}

/** Barrier records "written" at offsets 100, 101, …; each write can be held open. */
class FakeBarriers {
  next = 100n
  readonly writes: Array<{ topic: string; partition: number; offset: bigint }> = []
  hold: Promise<void> | undefined
  readonly write = async (topic: string, partition: number): Promise<bigint> => {
    const offset = this.next++
    this.writes.push({ topic, partition, offset })
    if (this.hold) await this.hold
    return offset
  }
}

function setup(): { resolution: Resolution; follower: FakeFollower; store: GroupStore; barriers: FakeBarriers } {
  const follower = new FakeFollower()
  const store = new GroupStore()
  const barriers = new FakeBarriers()
  return { resolution: new Resolution({ follower, store, writeBarrier: barriers.write, logger: noopLogger, retryDelayMs: () => 1 }), follower, store, barriers }
}

describe('Resolution', () => {
  it('reads pending ids from the follower\'s store', () => {
    const { resolution, store } = setup()
    const envelope = retryEntry('3', 'k').envelope!
    expect(resolution.isPending(envelope)).toBe(false)
    store.add('orders', 0, groupKeyToStoreKey(envelope.groupKey, envelope.id), envelope.id)
    expect(resolution.isPending(envelope)).toBe(true)
    const keyless = retryEntry('4', null).envelope!
    store.add('orders', 0, groupKeyToStoreKey(null, keyless.id), keyless.id)
    expect(resolution.isPending(keyless)).toBe(true)
  })

  it('knows its own tombstones at once, until the follower has applied them', () => {
    const { resolution, store, follower } = setup()
    const envelope = retryEntry('3', 'k').envelope!
    store.add('orders', 0, groupKeyToStoreKey(envelope.groupKey, envelope.id), envelope.id)
    follower.positionNow = 10n
    resolution.resolved(envelope, 12n)
    // The store still has it (the follower has not read the tombstone back): not pending for the worker.
    expect(resolution.isPending(envelope)).toBe(false)
    expect(resolution.unapplied).toBe(1)
    resolution.progressed('orders', 0, 12n)
    expect(resolution.unapplied).toBe(1)
    resolution.progressed('orders', 0, 13n)
    expect(resolution.unapplied).toBe(0)
    // A redirect record written again after the tombstone (a main app that redirected it anew) counts again.
    expect(resolution.isPending(envelope)).toBe(true)
  })

  it('waits until the follower passes a barrier record written after the call', async () => {
    const { resolution, follower, barriers } = setup()
    await resolution.barrier('orders', 2, new AbortController().signal)
    expect(barriers.writes).toEqual([{ topic: 'orders', partition: 2, offset: 100n }])
    expect(follower.waits).toEqual([{ topic: 'orders', partition: 2, target: 101n }])
  })

  it('shares a barrier record between concurrent callers; a caller arriving during a write gets the next one', async () => {
    const { resolution, barriers } = setup()
    let release!: () => void
    barriers.hold = new Promise((resolve) => (release = resolve))
    const signal = new AbortController().signal
    const first = resolution.barrier('orders', 0, signal)
    await new Promise((resolve) => setTimeout(resolve, 1))
    // Written while the first record is in flight: they need a record written after their call.
    const second = resolution.barrier('orders', 0, signal)
    const third = resolution.barrier('orders', 0, signal)
    barriers.hold = undefined
    release()
    await Promise.all([first, second, third])
    expect(barriers.writes.map((w) => w.offset)).toEqual([100n, 101n])
  })

  it('retries a failed (or timed-out) barrier until it passes, and ends it on abort', async () => {
    const { resolution, follower } = setup()
    follower.failures = [new Error('admin down'), new DetourTimeoutError('the follower did not reach offset 7')]
    await resolution.barrier('orders', 2, new AbortController().signal)
    expect(follower.waits).toEqual([
      { topic: 'orders', partition: 2, target: 101n },
      { topic: 'orders', partition: 2, target: 102n },
      { topic: 'orders', partition: 2, target: 103n },
    ])
    const aborted = new AbortController()
    aborted.abort()
    await expect(resolution.barrier('orders', 2, aborted.signal)).rejects.toThrow()
  })

  it('ends with a WorkAbortedError, not the write error, when revoked during a failing barrier write', async () => {
    const follower = new FakeFollower()
    const revoked = new AbortController()
    const resolution = new Resolution({
      follower,
      store: new GroupStore(),
      // The redirect partition's leader is down: the write fails after the partition was revoked.
      writeBarrier: async () => {
        revoked.abort()
        throw new Error('KafkaJSNumberOfRetriesExceeded: Connection error')
      },
      logger: noopLogger,
      retryDelayMs: () => 1,
    })
    const error: unknown = await resolution.barrier('orders', 0, revoked.signal).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(WorkAbortedError)
    expect(isAbortError(error)).toBe(true)
  })
})

import { describe, expect, it } from 'vitest'
import { DetourTimeoutError, GroupStore, groupKeyToStoreKey, noopLogger, type WaitOptions } from '@detour/core'
import { retryEntry } from '../test-support/entries.js'
import { Resolution, type ResolutionFollower } from './resolution.js'

/** A follower whose barrier the test controls. */
class FakeFollower implements ResolutionFollower {
  running = true
  positionNow = 0n
  failures: Error[] = []
  readonly barriers: Array<{ topic: string; partition: number }> = []
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  async catchUp(topic: string, partition: number, options?: WaitOptions): Promise<bigint> {
    this.barriers.push({ topic, partition })
    options?.signal?.throwIfAborted()
    const failure = this.failures.shift()
    if (failure) throw failure
    return this.positionNow
  }
  position(): bigint {
    return this.positionNow
  }
}

function setup(): { resolution: Resolution; follower: FakeFollower; store: GroupStore } {
  const follower = new FakeFollower()
  const store = new GroupStore()
  return { resolution: new Resolution({ follower, store, logger: noopLogger, retryDelayMs: () => 1 }), follower, store }
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

  it('retries a failed (or timed-out) barrier until it passes, and ends it on abort', async () => {
    const { resolution, follower } = setup()
    follower.failures = [new Error('admin down'), new DetourTimeoutError('the follower did not reach offset 7')]
    await resolution.barrier('orders', 2, new AbortController().signal)
    expect(follower.barriers).toEqual([
      { topic: 'orders', partition: 2 },
      { topic: 'orders', partition: 2 },
      { topic: 'orders', partition: 2 },
    ])
    const aborted = new AbortController()
    aborted.abort()
    await expect(resolution.barrier('orders', 2, aborted.signal)).rejects.toThrow()
  })
})

import type { Admin } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { StableOffsetReader } from './stable-offsets.js'

type Offsets = { partition: number; offset: string; high: string; low: string }[]

/** A promise settled from outside. */
class Deferred<T> {
  resolve!: (value: T) => void
  reject!: (error: unknown) => void
  readonly promise = new Promise<T>((resolve, reject) => {
    this.resolve = resolve
    this.reject = reject
  })
}

/** The one admin call the reader makes; each request waits until the test settles it. */
class FakeAdmin {
  readonly requests: { topic: string; reply: Deferred<Offsets> }[] = []
  fetchTopicOffsets(topic: string): Promise<Offsets> {
    const reply = new Deferred<Offsets>()
    this.requests.push({ topic, reply })
    return reply.promise
  }
  /** Answers request `index` with these high watermarks (the LSO under read_committed), partition by partition. */
  answer(index: number, ...highs: string[]): void {
    this.requests[index]!.reply.resolve(highs.map((high, partition) => ({ partition, offset: high, high, low: '0' })))
  }
}

function reader(): { admin: FakeAdmin; offsets: StableOffsetReader } {
  const admin = new FakeAdmin()
  return { admin, offsets: new StableOffsetReader(() => admin as unknown as Admin) }
}

/** Records how a promise settled, without awaiting it. */
function track<T>(promise: Promise<T>): { state: 'pending' | 'resolved' | 'rejected'; value?: T; error?: unknown } {
  const tracked: { state: 'pending' | 'resolved' | 'rejected'; value?: T; error?: unknown } = { state: 'pending' }
  promise.then(
    (value) => Object.assign(tracked, { state: 'resolved', value }),
    (error: unknown) => Object.assign(tracked, { state: 'rejected', error }),
  )
  return tracked
}

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

describe('StableOffsetReader', { timeout: 5000 }, () => {
  it('reads the high watermarks of every partition as bigints, exactly', async () => {
    const { admin, offsets } = reader()
    const reading = offsets.read('orders-g-redirect')
    expect(admin.requests.map((r) => r.topic)).toEqual(['orders-g-redirect'])
    admin.answer(0, '0', '42', '9223372036854775807')
    expect(await reading).toEqual(
      new Map([
        [0, 0n],
        [1, 42n],
        [2, 9223372036854775807n],
      ]),
    )
  })

  it('gives a caller arriving while a request is in flight the next request, not the in-flight one', async () => {
    const { admin, offsets } = reader()
    const first = track(offsets.read('t'))
    const later = track(offsets.read('t'))
    // The in-flight request may have been answered before `later` asked: it must not be reused,
    // and the next one starts only when it has settled (one request per topic at a time).
    expect(admin.requests).toHaveLength(1)
    admin.answer(0, '10')
    await flush()
    expect(first).toEqual({ state: 'resolved', value: new Map([[0, 10n]]) })
    expect(later.state).toBe('pending')
    expect(admin.requests).toHaveLength(2)
    admin.answer(1, '11')
    await flush()
    expect(later).toEqual({ state: 'resolved', value: new Map([[0, 11n]]) })
  })

  it('lets every caller waiting for the next request share it', async () => {
    const { admin, offsets } = reader()
    const first = offsets.read('t')
    const waiting = [offsets.read('t'), offsets.read('t'), offsets.read('t')]
    expect(waiting[1]).toBe(waiting[0])
    expect(waiting[2]).toBe(waiting[0])
    admin.answer(0, '5')
    // Answered, but the reader has not seen it yet: this caller cannot know, and shares the next request too.
    const lateSharer = offsets.read('t')
    expect(lateSharer).toBe(waiting[0])
    await first
    await flush()
    // One request for all four.
    expect(admin.requests).toHaveLength(2)
    admin.answer(1, '6')
    expect(await Promise.all([...waiting, lateSharer])).toEqual(Array.from({ length: 4 }, () => new Map([[0, 6n]])))
    expect(admin.requests).toHaveLength(2)
  })

  it('takes a caller arriving during the shared next request to the one after it', async () => {
    const { admin, offsets } = reader()
    const first = offsets.read('t')
    const second = offsets.read('t')
    admin.answer(0, '1')
    await first
    await flush()
    expect(admin.requests).toHaveLength(2) // the next request is on its way
    const third = track(offsets.read('t'))
    admin.answer(1, '2')
    expect(await second).toEqual(new Map([[0, 2n]]))
    await flush()
    expect(third.state).toBe('pending')
    expect(admin.requests).toHaveLength(3)
    admin.answer(2, '3')
    await flush()
    expect(third).toEqual({ state: 'resolved', value: new Map([[0, 3n]]) })
  })

  it('asks again after a reading settled: readings are never cached', async () => {
    const { admin, offsets } = reader()
    const first = offsets.read('t')
    admin.answer(0, '1')
    await first
    await flush()
    const again = offsets.read('t')
    expect(admin.requests).toHaveLength(2)
    admin.answer(1, '1')
    expect(await again).toEqual(new Map([[0, 1n]]))
  })

  it('reads different topics independently and at once', async () => {
    const { admin, offsets } = reader()
    const a = offsets.read('a')
    const b = offsets.read('b')
    expect(admin.requests.map((r) => r.topic)).toEqual(['a', 'b'])
    admin.answer(1, '2')
    admin.answer(0, '1')
    expect(await Promise.all([a, b])).toEqual([new Map([[0, 1n]]), new Map([[0, 2n]])])
  })

  it('fails only the callers of the failed request', async () => {
    const { admin, offsets } = reader()
    const failure = new Error('NOT_LEADER_FOR_PARTITION')
    const first = track(offsets.read('t'))
    const waiting = [track(offsets.read('t')), track(offsets.read('t'))]
    admin.requests[0]!.reply.reject(failure)
    await flush()
    expect(first).toEqual({ state: 'rejected', error: failure })
    expect(waiting.map((w) => w.state)).toEqual(['pending', 'pending'])
    expect(admin.requests).toHaveLength(2)
    admin.answer(1, '8')
    await flush()
    expect(waiting).toEqual([
      { state: 'resolved', value: new Map([[0, 8n]]) },
      { state: 'resolved', value: new Map([[0, 8n]]) },
    ])
  })

  it('fails every sharer of a failed next request, and the caller after them gets a fresh request', async () => {
    const { admin, offsets } = reader()
    const first = offsets.read('t')
    const sharers = [track(offsets.read('t')), track(offsets.read('t'))]
    admin.answer(0, '1')
    await first
    await flush()
    const failure = new Error('timeout')
    admin.requests[1]!.reply.reject(failure)
    await flush()
    expect(sharers).toEqual([
      { state: 'rejected', error: failure },
      { state: 'rejected', error: failure },
    ])
    const after = offsets.read('t')
    expect(admin.requests).toHaveLength(3)
    admin.answer(2, '4')
    expect(await after).toEqual(new Map([[0, 4n]]))
  })

  it('gets the admin when it sends a request, not when it is built', async () => {
    const admin = new FakeAdmin()
    let calls = 0
    const offsets = new StableOffsetReader(() => (calls++, admin as unknown as Admin))
    expect(calls).toBe(0)
    const first = offsets.read('t')
    const next = offsets.read('t')
    expect(calls).toBe(1)
    admin.answer(0, '1')
    await first
    await flush()
    expect(calls).toBe(2)
    admin.answer(1, '1')
    await next
  })
})

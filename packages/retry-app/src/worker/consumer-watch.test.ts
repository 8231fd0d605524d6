import { afterEach, describe, expect, it, vi } from 'vitest'
import { noopLogger } from '@detour/core'
import { FakeConsumer, consumerEvents } from '../test-support/fake-consumer.js'
import { ConsumerWatch, type WatchedConsumer } from './consumer-watch.js'

function setup(options: { sessionTimeoutMs?: number; rebalanceTimeoutMs?: number } = {}): { consumer: FakeConsumer; watch: ConsumerWatch; log: string[] } {
  const consumer = new FakeConsumer()
  const log: string[] = []
  const watch = new ConsumerWatch(
    consumer as unknown as WatchedConsumer,
    {
      onJoin: (a, info) => log.push(`join ${JSON.stringify(a)}${info.regained ? ' regained' : ''}`),
      onCrash: (_e, restart) => log.push(`crash ${restart}`),
      onLost: (reason) => log.push(`lost ${reason}`),
      onStuck: (silentMs) => log.push(`stuck ${silentMs}`),
    },
    noopLogger,
    options,
  )
  return { consumer, watch, log }
}

afterEach(() => {
  vi.useRealTimers()
})

describe('ConsumerWatch', () => {
  it('is stable from a join until REBALANCING, and again after the next join', async () => {
    const { consumer, watch, log } = setup()
    expect(watch.stable).toBe(false)
    consumer.join()
    expect(watch.stable).toBe(true)
    consumer.rebalancing()
    expect(watch.stable).toBe(false)
    expect(watch.rebalancing).toBe(true)
    const order: string[] = []
    const waiting = watch.whenStable(new AbortController().signal).then(() => order.push('woken'))
    await Promise.resolve()
    expect(order).toEqual([])
    consumer.join({ t: [1] })
    await waiting
    // The worker saw the new assignment (revocations) before a waiting attempt was woken.
    expect(log).toEqual(['join {"t":[0]}', 'join {"t":[1]}'])
    expect(order).toEqual(['woken'])
  })

  it('ends a wait on abort', async () => {
    const { watch } = setup()
    const controller = new AbortController()
    const waiting = watch.whenStable(controller.signal)
    controller.abort()
    await expect(waiting).rejects.toThrow('Aborted')
  })

  it('is not stable while kafkajs restarts a crashed consumer; awaitRestart waits for the join', async () => {
    const { consumer, watch, log } = setup()
    consumer.join()
    consumer.crash(true)
    expect(watch.stable).toBe(false)
    expect(watch.restarting).toBe(true)
    const settled = watch.awaitRestart(5000)
    setTimeout(() => consumer.join(), 10)
    expect(await settled).toBe(true)
    expect(watch.restarting).toBe(false)
    consumer.crash(true)
    expect(await watch.awaitRestart(20)).toBe(false)
    consumer.crash(false)
    expect(watch.restarting).toBe(false)
    expect(log.filter((l) => l.startsWith('crash'))).toEqual(['crash true', 'crash true', 'crash false'])
  })

  it('F1: a crash loses the membership (kafkajs left the group); the next join regains it, even under the same member id', () => {
    const { consumer, watch, log } = setup()
    consumer.join({ t: [0] }, 'member-A1')
    consumer.crash(true)
    expect(watch.stable).toBe(false)
    expect(watch.lost).toBe(true)
    consumer.join({ t: [0] }, 'member-A2')
    expect(watch.stable).toBe(true)
    expect(watch.lost).toBe(false)
    expect(log).toEqual(['join {"t":[0]}', 'lost crash', 'crash true', 'join {"t":[0]} regained'])
    // A normal rebalance keeps the membership.
    consumer.rebalancing()
    consumer.join({ t: [0] }, 'member-A2')
    expect(log.at(-1)).toBe('join {"t":[0]}')
  })

  it('F1: a join under a new member id (evicted, kafkajs rejoined on UNKNOWN_MEMBER_ID without REBALANCING) is regained', () => {
    const { consumer, log } = setup()
    consumer.join({ t: [0] }, 'member-A1')
    consumer.join({ t: [0] }, 'member-A2')
    expect(log).toEqual(['join {"t":[0]}', 'join {"t":[0]} regained'])
  })

  it('F1: an evicted member is not stable once no heartbeat succeeded for sessionTimeoutMs (the heartbeat lease)', () => {
    vi.useFakeTimers()
    const { consumer, watch, log } = setup({ sessionTimeoutMs: 30_000 })
    consumer.join({ t: [0] }, 'member-A1')
    expect(watch.stable).toBe(true)
    vi.advanceTimersByTime(20_000)
    consumer.heartbeat()
    vi.advanceTimersByTime(20_000)
    expect(watch.stable).toBe(true)
    // No heartbeat for a whole session: the coordinator has evicted this member and given its partitions away.
    vi.advanceTimersByTime(10_001)
    expect(watch.stable).toBe(false)
    expect(watch.lost).toBe(true)
    expect(log).toEqual(['join {"t":[0]}', 'lost heartbeat-lease'])
    // Lost and silent for a session plus kafkajs' rebalance timeout (the default stuck watch): reported once.
    vi.advanceTimersByTime(10 * 60_000)
    expect(log).toEqual(['join {"t":[0]}', 'lost heartbeat-lease', 'stuck 90000'])
    // A heartbeat that succeeds again proves the coordinator kept this member: its partitions are taken over again.
    consumer.heartbeat()
    expect(watch.stable).toBe(true)
    expect(log).toEqual(['join {"t":[0]}', 'lost heartbeat-lease', 'stuck 90000', 'join {"t":[0]} regained'])
  })

  it('reports a consumer stuck once it lost its membership and showed no sign of life for stuckAfterMs; fetches, crashes and rebalances are signs of life, a join ends the watch', () => {
    vi.useFakeTimers()
    const { consumer, watch, log } = setup({ sessionTimeoutMs: 1000, rebalanceTimeoutMs: 4000 })
    consumer.join({ t: [0] }, 'member-A1')
    vi.advanceTimersByTime(60_000) // joined, never lost: no watch (a healthy consumer heartbeats; here the lease lapses first)
    expect(log).toEqual(['join {"t":[0]}', 'lost heartbeat-lease', 'stuck 5000'])
    // The worker is failed by then; a later join (a restarted process would be a new watch) still ends the watch.
    consumer.join({ t: [0] }, 'member-A1')
    log.length = 0
    vi.advanceTimersByTime(1001) // lease lapses again
    expect(log).toEqual(['lost heartbeat-lease'])
    for (let i = 0; i < 5; i++) {
      vi.advanceTimersByTime(4000)
      consumer.fetchStart() // the fetch loop goes on: not hung
    }
    consumer.rebalancing()
    vi.advanceTimersByTime(4000)
    consumer.crash(true)
    vi.advanceTimersByTime(4000)
    expect(log).toEqual(['lost heartbeat-lease', 'crash true'])
    consumer.join({ t: [0] }, 'member-A2')
    vi.advanceTimersByTime(600) // stable again; the lease runs, the stuck watch does not
    expect(log).toEqual(['lost heartbeat-lease', 'crash true', 'join {"t":[0]} regained'])
    expect(watch.lost).toBe(false)
  })

  it('does not report a stuck consumer while the worker is closing', () => {
    vi.useFakeTimers()
    const { consumer, watch, log } = setup({ sessionTimeoutMs: 1000, rebalanceTimeoutMs: 4000 })
    consumer.join()
    vi.advanceTimersByTime(1001)
    watch.closing = true
    vi.advanceTimersByTime(10_000)
    expect(log).toEqual(['join {"t":[0]}', 'lost heartbeat-lease'])
  })

  it('F1: the lease does not run while the group rebalances (a join may take the rebalance timeout)', () => {
    vi.useFakeTimers()
    const { consumer, watch, log } = setup({ sessionTimeoutMs: 1000 })
    consumer.join()
    consumer.rebalancing()
    vi.advanceTimersByTime(5000)
    expect(log).toEqual(['join {"t":[0]}'])
    consumer.join()
    expect(watch.stable).toBe(true)
    expect(log).toEqual(['join {"t":[0]}', 'join {"t":[0]}'])
    watch.detach()
    vi.advanceTimersByTime(5000)
    expect(log).toHaveLength(2)
  })

  it('refuses kafkajs restarts once closing, and tracks heartbeats', async () => {
    const { consumer, watch } = setup()
    const restart = watch.restartOnFailure(async () => true)
    expect(await restart(new Error('x'))).toBe(true)
    watch.closing = true
    expect(await restart(new Error('x'))).toBe(false)
    expect(watch.lastHeartbeat).toBeUndefined()
    consumer.heartbeat()
    expect(watch.lastHeartbeat).toBeInstanceOf(Date)
    watch.detach()
    expect(consumer.emitter.listenerCount(consumerEvents.GROUP_JOIN)).toBe(0)
  })

  it('F8: a callback that throws never reaches kafkajs (its emitter runs inside the consumer); the watch goes on', () => {
    const consumer = new FakeConsumer()
    const errors: string[] = []
    const watch = new ConsumerWatch(
      consumer as unknown as WatchedConsumer,
      {
        onJoin: () => {
          throw new Error('bug in the worker')
        },
        onCrash: () => {
          throw new Error('bug in the worker')
        },
      },
      { ...noopLogger, error: (message) => void errors.push(message) },
    )
    expect(() => consumer.join()).not.toThrow()
    expect(watch.stable).toBe(true)
    expect(() => consumer.crash(true)).not.toThrow()
    expect(watch.restarting).toBe(true)
    expect(errors).toHaveLength(2)
  })
})

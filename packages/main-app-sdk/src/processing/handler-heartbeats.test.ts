import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Logger } from '@detour/core'
import { HandlerHeartbeats, type Heartbeating } from './handler-heartbeats.js'

function payload(partition = 0, heartbeat: () => Promise<void> = () => Promise.resolve()): Heartbeating & { heartbeat: ReturnType<typeof vi.fn> } {
  return { topic: 't', partition, heartbeat: vi.fn(heartbeat) }
}

describe('HandlerHeartbeats', () => {
  let warnings: string[]
  const logger = { debug: () => undefined, info: () => undefined, warn: (message: string) => warnings.push(message), error: () => undefined } as unknown as Logger
  beforeEach(() => {
    vi.useFakeTimers()
    warnings = []
  })
  afterEach(() => vi.useRealTimers())

  it('heartbeats every tick while a handler runs and none finishes, until it ends', () => {
    const hb = new HandlerHeartbeats({ maxPollIntervalMs: 60_000, logger })
    hb.start()
    const slow = payload(1)
    hb.started(slow)
    vi.advanceTimersByTime(4000)
    expect(slow.heartbeat).toHaveBeenCalledTimes(4)
    hb.ended()
    vi.advanceTimersByTime(5000)
    expect(slow.heartbeat).toHaveBeenCalledTimes(4)
    expect(hb.size).toBe(0)
    hb.stop()
  })

  it('leaves heartbeats to kafkajs while handlers keep finishing (it heartbeats after each message)', () => {
    const hb = new HandlerHeartbeats({ maxPollIntervalMs: 60_000, logger })
    hb.start()
    const stuck = payload(0)
    hb.started(stuck)
    for (let i = 0; i < 10; i++) {
      const quick = payload(1)
      hb.started(quick)
      vi.advanceTimersByTime(400)
      hb.ended()
      vi.advanceTimersByTime(100)
    }
    expect(stuck.heartbeat).not.toHaveBeenCalled()
    hb.stop()
  })

  it('sends one heartbeat per tick however many handlers run (they share the consumer)', () => {
    const hb = new HandlerHeartbeats({ maxPollIntervalMs: 60_000, logger })
    hb.start()
    const a = payload(0)
    const b = payload(1)
    hb.started(a)
    hb.started(b)
    vi.advanceTimersByTime(5000)
    expect(a.heartbeat.mock.calls.length + b.heartbeat.mock.calls.length).toBe(5)
    hb.stop()
  })

  it('stops after maxPollIntervalMs without a handler finishing, saying so once, so the session can expire; resumes after progress', () => {
    const hb = new HandlerHeartbeats({ maxPollIntervalMs: 3000, logger })
    hb.start()
    const stuck = payload(2)
    hb.started(stuck)
    vi.advanceTimersByTime(10_000)
    expect(stuck.heartbeat).toHaveBeenCalledTimes(3)
    expect(warnings).toEqual([expect.stringMatching(/No handler finished for maxPollIntervalMs/)])
    // A handler finishes (another partition): a later long one is covered again.
    hb.ended()
    const next = payload(3)
    hb.started(next)
    vi.advanceTimersByTime(1000) // the check that sees the progress
    vi.advanceTimersByTime(2000)
    expect(next.heartbeat).toHaveBeenCalledTimes(2)
    hb.stop()
  })

  it('swallows a failing heartbeat (a rebalance in progress): kafkajs acts on it after the handler', async () => {
    const hb = new HandlerHeartbeats({ maxPollIntervalMs: 60_000, logger })
    hb.start()
    const rebalancing = payload(0, () => Promise.reject(Object.assign(new Error('The group is rebalancing'), { type: 'REBALANCE_IN_PROGRESS' })))
    hb.started(rebalancing)
    vi.advanceTimersByTime(3000)
    await vi.runOnlyPendingTimersAsync()
    expect(rebalancing.heartbeat.mock.calls.length).toBeGreaterThanOrEqual(3)
    hb.stop()
  })

  it('never throws from its timer, even for a heartbeat that throws at once', () => {
    const hb = new HandlerHeartbeats({ maxPollIntervalMs: 60_000, logger })
    hb.start()
    hb.started({
      topic: 't',
      partition: 0,
      heartbeat: () => {
        throw new Error('not a promise')
      },
    })
    expect(() => vi.advanceTimersByTime(3000)).not.toThrow()
    hb.stop()
  })

  it('covers nothing once stopped', () => {
    const hb = new HandlerHeartbeats({ maxPollIntervalMs: 60_000, logger })
    hb.start()
    const p = payload(0)
    hb.started(p)
    hb.stop()
    vi.advanceTimersByTime(5000)
    expect(p.heartbeat).not.toHaveBeenCalled()
    expect(hb.size).toBe(0)
  })
})

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { DetourConfigError } from '../errors/index.js'
import { HeartbeatLease } from './heartbeat-lease.js'

describe('HeartbeatLease', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('is not held before its first renewal, and lapses once when not renewed for its duration', () => {
    const onLapse = vi.fn()
    const lease = new HeartbeatLease(1000, onLapse)
    expect(lease.held).toBe(false)
    vi.advanceTimersByTime(5000)
    expect(onLapse).not.toHaveBeenCalled()
    lease.renew()
    expect(lease.held).toBe(true)
    vi.advanceTimersByTime(999)
    expect(onLapse).not.toHaveBeenCalled()
    vi.advanceTimersByTime(1)
    expect(onLapse).toHaveBeenCalledTimes(1)
    expect(lease.held).toBe(false)
    vi.advanceTimersByTime(5000)
    expect(onLapse).toHaveBeenCalledTimes(1)
  })

  it('counts its duration from the latest renewal', () => {
    const onLapse = vi.fn()
    const lease = new HeartbeatLease(1000, onLapse)
    lease.renew()
    vi.advanceTimersByTime(800)
    lease.renew()
    vi.advanceTimersByTime(800)
    expect(onLapse).not.toHaveBeenCalled()
    vi.advanceTimersByTime(200)
    expect(onLapse).toHaveBeenCalledTimes(1)
  })

  it('does not lapse once ended', () => {
    const onLapse = vi.fn()
    const lease = new HeartbeatLease(1000, onLapse)
    lease.renew()
    lease.end()
    expect(lease.held).toBe(false)
    vi.advanceTimersByTime(2000)
    expect(onLapse).not.toHaveBeenCalled()
  })

  it('hands what onLapse throws to onError instead of throwing from a timer', () => {
    const onError = vi.fn()
    const lease = new HeartbeatLease(10, () => {
      throw new Error('boom')
    }, onError)
    lease.renew()
    expect(() => vi.advanceTimersByTime(10)).not.toThrow()
    expect(onError).toHaveBeenCalledWith(expect.objectContaining({ message: 'boom' }))
  })

  it('refuses a duration that is not a positive number', () => {
    expect(() => new HeartbeatLease(0, () => undefined)).toThrow(/Invalid option "durationMs": .* positive number of milliseconds, got 0/)
    expect(() => new HeartbeatLease(Number.NaN, () => undefined)).toThrow(DetourConfigError)
  })
})

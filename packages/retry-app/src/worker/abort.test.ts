import { describe, expect, it } from 'vitest'
import { WorkAbortedError, isAbortError, sleep, withinTime } from './abort.js'

describe('sleep', () => {
  it('rejects with a WorkAbortedError (not Node\'s AbortError) when its signal aborts while it waits', async () => {
    const controller = new AbortController()
    const waiting = sleep(60_000, controller.signal).catch((e: unknown) => e)
    controller.abort()
    const error = await waiting
    expect(error).toBeInstanceOf(WorkAbortedError)
    expect(isAbortError(error)).toBe(true)
  })

  it('rejects with a WorkAbortedError at once when its signal is aborted already', async () => {
    const controller = new AbortController()
    controller.abort()
    await expect(sleep(1, controller.signal)).rejects.toBeInstanceOf(WorkAbortedError)
  })
})

describe('withinTime', () => {
  it('gives the value of a step that ends in time, and gives up on one that does not', async () => {
    expect(await withinTime(Promise.resolve(3), 100)).toEqual({ done: true, value: 3 })
    expect(await withinTime(new Promise(() => {}), 10)).toEqual({ done: false })
    // A step that fails after the timeout is not an unhandled rejection.
    expect(await withinTime(new Promise((_r, reject) => setTimeout(() => reject(new Error('late')), 20)), 5)).toEqual({ done: false })
    await new Promise((resolve) => setTimeout(resolve, 30))
  })
})

import { describe, expect, it } from 'vitest'
import { WorkAbortedError, isAbortError, sleep } from './abort.js'

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

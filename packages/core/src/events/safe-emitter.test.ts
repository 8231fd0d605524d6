import { describe, expect, it } from 'vitest'
import { SafeEmitter } from './safe-emitter.js'

type Events = {
  progress: [topic: string, offset: bigint]
  error: [error: Error]
}

/** A SafeEmitter whose listener failures are recorded instead of logged. */
function emitter(): { events: SafeEmitter<Events>; failures: [unknown, string][] } {
  const failures: [unknown, string][] = []
  return { events: new SafeEmitter<Events>((error, event) => failures.push([error, event])), failures }
}

/** A listener returning a promise, as a JavaScript caller may register it (the typed API asks for void). */
const returningPromise = (fn: () => Promise<unknown>): (() => void) => fn

/** Lets rejected listener promises settle. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

describe('SafeEmitter', () => {
  it('calls listeners in order with the arguments and reports whether anyone listened', () => {
    const { events } = emitter()
    const calls: string[] = []
    expect(events.emit('progress', 'orders', 1n)).toBe(false)
    events.on('progress', (topic, offset) => calls.push(`a ${topic} ${offset}`))
    events.on('progress', (topic, offset) => calls.push(`b ${topic} ${offset}`))
    expect(events.emit('progress', 'orders', 9223372036854775807n)).toBe(true)
    expect(calls).toEqual(['a orders 9223372036854775807', 'b orders 9223372036854775807'])
  })

  it('turns a throwing listener into an error event; the caller and the other listeners go on', () => {
    const { events, failures } = emitter()
    const failure = new Error('listener bug')
    const calls: string[] = []
    const errors: Error[] = []
    events.on('progress', () => {
      calls.push('first')
      throw failure
    })
    events.on('progress', () => calls.push('second'))
    events.on('error', (error) => errors.push(error))
    expect(() => events.emit('progress', 'orders', 1n)).not.toThrow()
    expect(calls).toEqual(['first', 'second'])
    expect(errors).toEqual([failure])
    expect(errors[0]).toBe(failure)
    expect(failures).toEqual([])
  })

  it('wraps a thrown non-Error into an Error for the error event', () => {
    const { events } = emitter()
    const errors: Error[] = []
    events.on('progress', () => {
      // eslint-disable-next-line @typescript-eslint/only-throw-error -- what a careless listener may do
      throw 'plain string'
    })
    events.on('error', (error) => errors.push(error))
    events.emit('progress', 'orders', 1n)
    expect(errors).toHaveLength(1)
    expect(errors[0]).toBeInstanceOf(Error)
    expect(errors[0]!.message).toBe('plain string')
  })

  it('turns a listener returning a rejected promise into an error event, after the emit returned', async () => {
    const { events, failures } = emitter()
    const failure = new Error('async listener bug')
    const errors: Error[] = []
    events.on(
      'progress',
      returningPromise(async () => {
        await Promise.resolve()
        throw failure
      }),
    )
    events.on('error', (error) => errors.push(error))
    expect(events.emit('progress', 'orders', 1n)).toBe(true)
    expect(errors).toEqual([])
    await settle()
    expect(errors).toEqual([failure])
    expect(failures).toEqual([])
  })

  it('leaves a listener returning a resolved promise alone', async () => {
    const { events, failures } = emitter()
    const errors: Error[] = []
    events.on('progress', returningPromise(async () => undefined))
    events.on('error', (error) => errors.push(error))
    events.emit('progress', 'orders', 1n)
    await settle()
    expect([errors, failures]).toEqual([[], []])
  })

  it('sends a listener failure to onListenerError when nobody listens for error', async () => {
    const { events, failures } = emitter()
    const thrown = new Error('sync')
    events.on('progress', () => {
      throw thrown
    })
    expect(() => events.emit('progress', 'orders', 1n)).not.toThrow()
    expect(failures).toEqual([[thrown, 'progress']])
    events.removeAllListeners('progress')
    events.on('progress', returningPromise(() => Promise.reject(new Error('async'))))
    events.emit('progress', 'orders', 2n)
    await settle()
    expect(failures.map(([error, event]) => [(error as Error).message, event])).toEqual([
      ['sync', 'progress'],
      ['async', 'progress'],
    ])
  })

  it('sends an error thrown (or rejected) by an error listener to onListenerError, not back to error', async () => {
    const { events, failures } = emitter()
    const original = new Error('listener bug')
    const fromErrorListener = new Error('error listener bug too')
    let errorCalls = 0
    events.on('progress', () => {
      throw original
    })
    events.on('error', () => {
      errorCalls++
      throw fromErrorListener
    })
    expect(() => events.emit('progress', 'orders', 1n)).not.toThrow()
    expect(errorCalls).toBe(1)
    expect(failures).toEqual([[fromErrorListener, 'error']])

    const rejected = new Error('rejected by an error listener')
    events.removeAllListeners('error')
    events.on('error', returningPromise(() => Promise.reject(rejected)))
    events.emit('progress', 'orders', 2n)
    await settle()
    expect(failures).toEqual([
      [fromErrorListener, 'error'],
      [rejected, 'error'],
    ])
  })

  it('fires a once listener once, and a throwing once listener is still removed', () => {
    const { events, failures } = emitter()
    const seen: bigint[] = []
    events.once('progress', (_topic, offset) => seen.push(offset))
    events.once('progress', () => {
      throw new Error('once and broken')
    })
    events.emit('progress', 'orders', 1n)
    events.emit('progress', 'orders', 2n)
    expect(seen).toEqual([1n])
    expect(events.listenerCount('progress')).toBe(0)
    expect(failures.map(([error, event]) => [(error as Error).message, event])).toEqual([['once and broken', 'progress']])
  })

  it('calls listeners with the emitter as this', () => {
    const { events } = emitter()
    const selves: unknown[] = []
    events.on('progress', function (this: unknown) {
      selves.push(this)
    })
    events.emit('progress', 'orders', 1n)
    expect(selves).toEqual([events])
    expect(selves[0]).toBe(events)
  })

  it('emitLazy builds the arguments only when someone listens', () => {
    const { events } = emitter()
    let built = 0
    const args = (): [string, bigint] => {
      built++
      return ['orders', 7n]
    }
    events.emitLazy('progress', args)
    expect(built).toBe(0)
    const seen: [string, bigint][] = []
    const listener = (topic: string, offset: bigint): void => void seen.push([topic, offset])
    events.on('progress', listener)
    events.emitLazy('progress', args)
    expect(built).toBe(1)
    expect(seen).toEqual([['orders', 7n]])
    events.off('progress', listener)
    events.emitLazy('progress', args)
    expect(built).toBe(1)
  })

  it('emitLazy shields the caller from throwing listeners too', () => {
    const { events, failures } = emitter()
    const failure = new Error('x')
    events.on('progress', () => {
      throw failure
    })
    expect(() => events.emitLazy('progress', () => ['orders', 1n])).not.toThrow()
    expect(failures).toEqual([[failure, 'progress']])
  })
})

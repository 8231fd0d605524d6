import { EventEmitter } from 'node:events'

/** Event name → the listener's arguments. */
export type EventMap<T> = { [K in keyof T]: unknown[] }

/** Typed listener methods over {@link SafeEmitter} (declaration merging with the class below). */
export interface SafeEmitter<T extends EventMap<T>> {
  on<K extends keyof T & string>(event: K, listener: (...args: T[K]) => void): this
  once<K extends keyof T & string>(event: K, listener: (...args: T[K]) => void): this
  off<K extends keyof T & string>(event: K, listener: (...args: T[K]) => void): this
  addListener<K extends keyof T & string>(event: K, listener: (...args: T[K]) => void): this
  removeListener<K extends keyof T & string>(event: K, listener: (...args: T[K]) => void): this
  listenerCount<K extends keyof T & string>(event: K): number
}

/**
 * An `EventEmitter` whose listeners cannot break the component that emits: a listener that throws (or
 * returns a rejected promise) becomes an `error` event; an error thrown by an `error` listener, or with no
 * `error` listener, goes to `onListenerError` (a log line). Components emit only after their state is
 * consistent, so a failing listener never leaves work half done (bullmq's QueueBase does the same).
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class SafeEmitter<T extends EventMap<T>> extends EventEmitter {
  constructor(private readonly onListenerError: (error: unknown, event: string) => void) {
    super({ captureRejections: false })
  }

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    const name = String(event)
    const listeners = this.rawListeners(event) as Array<(...a: unknown[]) => unknown>
    if (listeners.length === 0) {
      // An `error` nobody listens to is not dropped silently (Node would throw it): it goes to the log.
      if (name === 'error') this.onListenerError(args[0], 'error')
      return false
    }
    for (const listener of listeners) {
      try {
        const result = listener.apply(this, args)
        if (result !== null && typeof result === 'object' && typeof (result as Promise<unknown>).then === 'function') {
          ;(result as Promise<unknown>).then(undefined, (error: unknown) => this.listenerFailed(error, name))
        }
      } catch (error) {
        this.listenerFailed(error, name)
      }
    }
    return true
  }

  /** Emits only when someone listens: the arguments are built only then. */
  emitLazy<K extends keyof T & string>(event: K, args: () => T[K]): void {
    if (this.listenerCount(event) > 0) this.emit(event, ...args())
  }

  private listenerFailed(error: unknown, event: string): void {
    if (event !== 'error' && this.listenerCount('error' as keyof T & string) > 0) {
      this.emit('error', error instanceof Error ? error : new Error(String(error)))
      return
    }
    this.onListenerError(error, event)
  }
}

import type { Consumer, IMemberAssignment } from 'kafkajs'
import type { Logger } from '@detour/core'
import { WorkAbortedError } from './abort.js'

/** The part of a kafkajs `Consumer` the watch listens to (a stand-in in unit tests). */
export type WatchedConsumer = Pick<Consumer, 'on' | 'events'>

export interface ConsumerWatchCallbacks {
  /** The consumer joined its group (first join, after a rebalance, after kafkajs restarted it). */
  onJoin(assignment: IMemberAssignment): void
  /** The consumer crashed; `restart`: kafkajs restarts it. */
  onCrash(error: Error, restart: boolean): void
}

/**
 * Watches the worker's kafkajs consumer and keeps what its events say:
 * - **rebalancing**: from `REBALANCING` (kafkajs learned that the group rebalances) until the next
 *   `GROUP_JOIN`, and while a crashed consumer is being restarted. Ownership is in flux: no attempt starts
 *   ({@link whenStable}).
 * - **restart**: kafkajs restarts a crashed consumer on a timer, even one whose `disconnect()` already ran;
 *   once the worker is {@link closing}, {@link restartOnFailure} refuses, so no zombie member comes back. A
 *   stop in the middle of a restart waits for it ({@link awaitRestart}).
 * - **heartbeat standing**: when the consumer last heartbeat successfully.
 */
export class ConsumerWatch {
  /** Set when the worker disconnects its clients (stop, failed start): kafkajs must not restart the consumer. */
  closing = false
  private joinedNow = false
  private rebalancingNow = false
  private restartingNow = false
  private lastHeartbeatAt: number | undefined
  private readonly stableWaiters = new Set<() => void>()
  private readonly restartWaiters = new Set<() => void>()
  private readonly detachers: Array<() => void>

  constructor(
    consumer: WatchedConsumer,
    private readonly callbacks: ConsumerWatchCallbacks,
    private readonly logger: Logger,
  ) {
    this.detachers = [
      consumer.on(consumer.events.GROUP_JOIN, (event) => this.onJoined(event.payload.memberAssignment)),
      consumer.on(consumer.events.REBALANCING, () => {
        if (!this.rebalancingNow) this.logger.info('The retry consumer group is rebalancing; no attempt starts until it has joined again')
        this.rebalancingNow = true
      }),
      consumer.on(consumer.events.CRASH, (event) => this.crashed(event.payload.error, event.payload.restart)),
      consumer.on(consumer.events.HEARTBEAT, () => {
        this.lastHeartbeatAt = Date.now()
      }),
    ]
  }

  /** Joined its group and not rebalancing: attempts may start. */
  get stable(): boolean {
    return this.joinedNow && !this.rebalancingNow
  }

  get joined(): boolean {
    return this.joinedNow
  }

  get rebalancing(): boolean {
    return this.rebalancingNow
  }

  get restarting(): boolean {
    return this.restartingNow
  }

  get lastHeartbeat(): Date | undefined {
    return this.lastHeartbeatAt === undefined ? undefined : new Date(this.lastHeartbeatAt)
  }

  /**
   * kafkajs' `retry.restartOnFailure`: the user's decision (kafkajs restarts by default), but never once
   * the worker is closing.
   */
  restartOnFailure(user?: (error: Error) => Promise<boolean>): (error: Error) => Promise<boolean> {
    return async (error) => !this.closing && (user ? await user(error) : true)
  }

  /** Resolves once the consumer is {@link stable}; rejects with a `WorkAbortedError` when `signal` aborts first. */
  whenStable(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(new WorkAbortedError())
    if (this.stable) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        signal.removeEventListener('abort', aborted)
        resolve()
      }
      const aborted = (): void => {
        this.stableWaiters.delete(done)
        reject(new WorkAbortedError())
      }
      signal.addEventListener('abort', aborted, { once: true })
      this.stableWaiters.add(done)
    })
  }

  /**
   * Waits (up to `timeoutMs`) until the consumer kafkajs is restarting has joined its group or given up.
   * Disconnecting in the middle of that join does not stop it: kafkajs would finish the join afterwards and
   * keep a member in the group that nobody can stop (it holds partitions and the process). Once joined,
   * the consumer can also commit what was resolved meanwhile. Returns false at the timeout.
   */
  async awaitRestart(timeoutMs: number): Promise<boolean> {
    if (!this.restartingNow) return true
    this.logger.info('kafkajs is restarting the crashed consumer; waiting for it before committing and disconnecting', { timeoutMs })
    const settled = await new Promise<boolean>((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        resolve(true)
      }
      const timer = setTimeout(() => {
        this.restartWaiters.delete(done)
        resolve(false)
      }, timeoutMs)
      this.restartWaiters.add(done)
    })
    if (!settled) {
      this.logger.warn('The restarting consumer did not join within the shutdown timeout; disconnecting anyway (exit the process so it cannot rejoin)', { timeoutMs })
      return false
    }
    // kafkajs marks its runner running right after GROUP_JOIN: let it, so that the commit and the disconnect reach it.
    await new Promise<void>((resolve) => setImmediate(resolve))
    return true
  }

  detach(): void {
    for (const detach of this.detachers.splice(0)) detach()
  }

  private onJoined(assignment: IMemberAssignment): void {
    this.joinedNow = true
    this.rebalancingNow = false
    try {
      // The worker handles the assignment (revocations first) before any waiting attempt may start.
      this.callbacks.onJoin(assignment)
    } finally {
      if (this.restartingNow) this.settleRestart()
      const waiters = [...this.stableWaiters]
      this.stableWaiters.clear()
      for (const wake of waiters) wake()
    }
  }

  private crashed(error: Error, restart: boolean): void {
    this.joinedNow = false
    if (restart) {
      this.restartingNow = true
      this.logger.warn('Retry consumer crashed; kafkajs restarts it', { error })
    } else if (this.restartingNow) {
      // kafkajs gave up (or was told not to restart while the worker stops).
      this.settleRestart()
    }
    this.callbacks.onCrash(error, restart)
  }

  private settleRestart(): void {
    this.restartingNow = false
    const waiters = [...this.restartWaiters]
    this.restartWaiters.clear()
    for (const done of waiters) done()
  }
}

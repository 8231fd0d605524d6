import type { Consumer, IMemberAssignment } from 'kafkajs'
import { HeartbeatLease, type Logger } from '@detour/core'
import { WorkAbortedError } from './abort.js'

/** The part of a kafkajs `Consumer` the watch listens to (a stand-in in unit tests). */
export type WatchedConsumer = Pick<Consumer, 'on' | 'events'>

/** What a join says about the membership it follows. */
export interface JoinInfo {
  /**
   * The membership was lost since the previous join (a crash — kafkajs leaves the group before it restarts
   * the consumer —, a new member id — the coordinator evicted this member and kafkajs rejoined on
   * UNKNOWN_MEMBER_ID —, or no successful heartbeat for `sessionTimeoutMs`): other members may have owned the
   * partitions meanwhile, so every partition of this assignment is a new one, kept ones included.
   */
  readonly regained: boolean
}

export interface ConsumerWatchCallbacks {
  /** The consumer joined its group (first join, after a rebalance, after kafkajs restarted it). */
  onJoin(assignment: IMemberAssignment, info: JoinInfo): void
  /** The consumer crashed; `restart`: kafkajs restarts it. */
  onCrash(error: Error, restart: boolean): void
  /**
   * The membership is lost (a crash, or the heartbeat lease ran out): the partitions may be someone else's
   * already. Called once per loss, before `onCrash` for a crash.
   */
  onLost?(reason: 'crash' | 'heartbeat-lease'): void
  /**
   * The membership was lost and the consumer has shown no sign of life since, for `stuckAfterMs`: no join,
   * heartbeat, rebalance, crash or fetch. kafkajs is hung (seen once on the embedded broker with dropped
   * connections): it will not rejoin by itself. Called once per loss.
   */
  onStuck?(silentMs: number): void
}

export interface ConsumerWatchOptions {
  /**
   * The consumer's `sessionTimeout`: without a successful heartbeat for this long (while joined and not
   * rebalancing), the coordinator has evicted this member and given its partitions to others.
   * @defaultValue 30000 (kafkajs' default)
   */
  readonly sessionTimeoutMs?: number
  /**
   * The consumer's `rebalanceTimeout`. A consumer that lost its membership and stays silent (no join,
   * heartbeat, rebalance, crash or fetch) for `sessionTimeoutMs` + this counts as stuck
   * ({@link ConsumerWatchCallbacks.onStuck}): a rejoin takes at most the rebalance timeout.
   * @defaultValue 60000 (kafkajs' default)
   */
  readonly rebalanceTimeoutMs?: number
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
 * - **membership**: lost at a crash (kafkajs leaves the group before it restarts the consumer) and when no
 *   heartbeat succeeded for `sessionTimeoutMs` (the heartbeat lease: the coordinator evicted this member —
 *   kafkajs rejoins on UNKNOWN_MEMBER_ID without a REBALANCING event). A lost membership is not stable
 *   ({@link onLost} lets the worker abort the partitions' work at once), and the join that follows — or a
 *   heartbeat that succeeds again, which proves the coordinator kept this member — is {@link JoinInfo.regained}:
 *   so is a join under a new member id.
 */
export class ConsumerWatch {
  /** Set when the worker disconnects its clients (stop, failed start): kafkajs must not restart the consumer. */
  closing = false
  private joinedNow = false
  private rebalancingNow = false
  private restartingNow = false
  private lastHeartbeatAt: number | undefined
  private lostNow = false
  private memberId: string | undefined
  private lastAssignment: IMemberAssignment = {}
  private readonly lease: HeartbeatLease
  private readonly stuckAfterMs: number
  private stuckTimer: NodeJS.Timeout | undefined
  private readonly sessionTimeoutMs: number
  private readonly stableWaiters = new Set<() => void>()
  private readonly restartWaiters = new Set<() => void>()
  private readonly detachers: Array<() => void>

  constructor(
    consumer: WatchedConsumer,
    private readonly callbacks: ConsumerWatchCallbacks,
    private readonly logger: Logger,
    options: ConsumerWatchOptions = {},
  ) {
    this.sessionTimeoutMs = options.sessionTimeoutMs ?? 30_000
    this.lease = new HeartbeatLease(
      this.sessionTimeoutMs,
      () => this.leaseExpired(),
      (error) => this.logger.error('Handling the end of the heartbeat lease failed', { error }),
    )
    this.stuckAfterMs = this.sessionTimeoutMs + (options.rebalanceTimeoutMs ?? 60_000)
    // kafkajs calls these from its own emitter, inside its consumer's work: nothing thrown here may reach it.
    const guard =
      <E>(name: string, listener: (event: E) => void) =>
      (event: E): void => {
        try {
          listener(event)
        } catch (error) {
          this.logger.error(`Handling the retry consumer's ${name} event failed`, { error })
        }
      }
    this.detachers = [
      consumer.on(
        consumer.events.GROUP_JOIN,
        guard('GROUP_JOIN', (event) => this.onJoined(event.payload.memberAssignment, event.payload.memberId)),
      ),
      consumer.on(
        consumer.events.REBALANCING,
        guard('REBALANCING', () => {
          if (!this.rebalancingNow) this.logger.info('The retry consumer group is rebalancing; no attempt starts until it has joined again')
          this.rebalancingNow = true
          // A join may take up to the rebalance timeout: no heartbeat is due meanwhile.
          this.lease.end()
          this.signOfLife()
        }),
      ),
      consumer.on(
        consumer.events.CRASH,
        guard('CRASH', (event) => this.crashed(event.payload.error, event.payload.restart)),
      ),
      consumer.on(
        consumer.events.HEARTBEAT,
        guard('HEARTBEAT', () => this.heartbeat()),
      ),
      // A fetch loop that goes on is a sign of life (it heartbeats, fails and crashes, or rejoins in time).
      consumer.on(
        consumer.events.FETCH_START,
        guard('FETCH_START', () => this.signOfLife()),
      ),
    ]
  }

  /** Joined its group, not rebalancing, membership not lost: attempts may start. */
  get stable(): boolean {
    return this.joinedNow && !this.rebalancingNow && !this.lostNow
  }

  /** The membership was lost (a crash, the heartbeat lease ran out) and not regained yet. */
  get lost(): boolean {
    return this.lostNow
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
    this.lease.end()
    this.endStuckWatch()
    for (const detach of this.detachers.splice(0)) detach()
  }

  private onJoined(assignment: IMemberAssignment, memberId: string | undefined): void {
    const regained = this.lostNow || (this.memberId !== undefined && memberId !== undefined && memberId !== this.memberId)
    if (memberId !== undefined) this.memberId = memberId
    this.lastAssignment = assignment
    this.joinedNow = true
    this.rebalancingNow = false
    this.lostNow = false
    this.endStuckWatch()
    this.lease.renew()
    try {
      // The worker handles the assignment (revocations first) before any waiting attempt may start.
      this.callbacks.onJoin(assignment, { regained })
    } finally {
      if (this.restartingNow) this.settleRestart()
      const waiters = [...this.stableWaiters]
      this.stableWaiters.clear()
      for (const wake of waiters) wake()
    }
  }

  private heartbeat(): void {
    this.lastHeartbeatAt = Date.now()
    if (!this.joinedNow) return
    if (this.lostNow) {
      // The coordinator answered: it kept this member and its assignment, but the partitions' work was
      // aborted at the loss: they start again as newly assigned ones.
      this.logger.info('The retry consumer heartbeat again after its lease ran out; its partitions are taken over again')
      this.onJoined(this.lastAssignment, this.memberId)
      return
    }
    if (!this.rebalancingNow) this.lease.renew()
  }

  private leaseExpired(): void {
    if (!this.joinedNow || this.rebalancingNow || this.lostNow) return
    this.logger.warn('No successful heartbeat for sessionTimeoutMs: this member may have been evicted; its partitions are treated as lost', {
      sessionTimeoutMs: this.sessionTimeoutMs,
      lastHeartbeat: this.lastHeartbeat?.toISOString(),
    })
    this.lose('heartbeat-lease')
  }

  private lose(reason: 'crash' | 'heartbeat-lease'): void {
    this.lease.end()
    this.signOfLife()
    if (this.lostNow) return
    this.lostNow = true
    this.armStuckWatch()
    this.callbacks.onLost?.(reason)
  }

  /** An event from kafkajs while the membership is lost: it is not hung; the stuck watch starts again. */
  private signOfLife(): void {
    if (this.lostNow) this.armStuckWatch()
  }

  private armStuckWatch(): void {
    this.endStuckWatch()
    if (this.closing) return
    this.stuckTimer = setTimeout(() => {
      this.stuckTimer = undefined
      if (!this.lostNow || this.closing) return
      this.logger.error('The retry consumer lost its group membership and has shown no sign of life since: kafkajs is hung and will not rejoin; the worker stops so that it can be restarted', {
        silentMs: this.stuckAfterMs,
        lastHeartbeat: this.lastHeartbeat?.toISOString(),
      })
      try {
        this.callbacks.onStuck?.(this.stuckAfterMs)
      } catch (error) {
        this.logger.error('Handling a stuck retry consumer failed', { error })
      }
    }, this.stuckAfterMs)
    this.stuckTimer.unref()
  }

  private endStuckWatch(): void {
    if (this.stuckTimer !== undefined) clearTimeout(this.stuckTimer)
    this.stuckTimer = undefined
  }

  private crashed(error: Error, restart: boolean): void {
    this.joinedNow = false
    // kafkajs takes the consumer down (LeaveGroup) whether or not it restarts it: the partitions are gone.
    this.lose('crash')
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

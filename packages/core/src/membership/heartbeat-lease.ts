import { DetourConfigError } from '../errors/index.js'

/**
 * A consumer-group membership lease, as both Detour apps keep one beside kafkajs: renewed by every sign that
 * the group coordinator still counts this member (a successful heartbeat, a join), it runs out when no such
 * sign came for `durationMs`. kafkajs announces no eviction — after a long handler or a lost connection it
 * learns of it only at its next heartbeat, and rejoins without a `REBALANCING` event — so a member whose
 * lease ran out must act as if its partitions were already someone else's.
 *
 * Only a timer: what a lapse means is the caller's (`onLapse`). Not armed until the first {@link renew}.
 */
export class HeartbeatLease {
  private timer: NodeJS.Timeout | undefined

  /**
   * @param durationMs how long the lease lasts after each renewal
   * @param onLapse called once per lapse, from a timer: it must not throw (what it throws goes to `onError`)
   * @param onError receives what `onLapse` threw; by default it is dropped (a timer must never throw)
   */
  constructor(
    private readonly durationMs: number,
    private readonly onLapse: () => void,
    private readonly onError: (error: unknown) => void = () => undefined,
  ) {
    if (!Number.isFinite(durationMs) || durationMs <= 0) throw new DetourConfigError('durationMs', `the heartbeat lease must last a positive number of milliseconds, got ${durationMs}`)
  }

  /** True from a renewal until the lease runs out or is ended. */
  get held(): boolean {
    return this.timer !== undefined
  }

  /** Starts the lease again: `durationMs` from now. */
  renew(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.timer = undefined
      try {
        this.onLapse()
      } catch (error) {
        this.onError(error)
      }
    }, this.durationMs)
    this.timer.unref()
  }

  /** Ends the lease without a lapse (the consumer stopped, crashed or is rebalancing: no heartbeat is due). */
  end(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
  }
}

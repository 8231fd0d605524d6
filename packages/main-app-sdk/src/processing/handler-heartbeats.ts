import type { Logger } from '@detour/core'

/** The part of a kafkajs payload this needs: its consumer's `heartbeat()`. */
export interface Heartbeating {
  readonly topic: string
  readonly partition: number
  readonly heartbeat: () => Promise<void>
}

export interface HandlerHeartbeatsOptions {
  /** How long Detour heartbeats for one handler that is still running (see `maxPollIntervalMs`). */
  readonly maxPollIntervalMs: number
  /** Time between two checks of the running handlers. @defaultValue 1000 */
  readonly tickMs?: number
  readonly logger: Logger
}

/**
 * Heartbeats while handlers run. kafkajs heartbeats only between messages, so a handler that runs longer
 * than the session timeout — a slow call, or the handler's own write retried through a broker failover,
 * which takes the controller's broker session timeout (9 s by default) — gets its member evicted; the
 * partition's new owner then runs later messages of the key while the old handler's write is still to
 * land: the old message's effect lands after the newer one's (a stale replay no Detour write can fence).
 *
 * So, like the Java consumer's background heartbeat (KIP-62), Detour heartbeats when handlers are running
 * and none finished for a whole tick (when one finishes, kafkajs heartbeats itself): the member stays in
 * the group, and a rebalance waits for it (up to the consumer's `rebalanceTimeout`) instead of giving its
 * partitions away mid-handler. For at most `maxPollIntervalMs` without any handler finishing (Java's
 * `max.poll.interval.ms`): past that the handlers are taken as stuck, the session expires, and the group
 * moves on, as kafkajs alone would have done at once.
 *
 * Detour's own hand-off writes are covered the same way (`MessageProcessor.heartbeating`): a write kafkajs
 * retries through a broker failover is as long as a slow handler.
 *
 * Cost on the fast path: two counters and a reference per asynchronous handler call (no allocation); one
 * timer (unref'd) while Detour runs.
 */
export class HandlerHeartbeats {
  private running = 0
  private finished = 0
  private finishedAtLastCheck = 0
  private stalledChecks = 0
  private latest: Heartbeating | undefined
  private timer: NodeJS.Timeout | undefined
  private readonly tickMs: number
  private readonly maxStalledChecks: number

  constructor(private readonly options: HandlerHeartbeatsOptions) {
    this.tickMs = options.tickMs ?? 1000
    this.maxStalledChecks = Math.max(1, Math.ceil(options.maxPollIntervalMs / this.tickMs))
  }

  /** A handler started on `payload`'s message. */
  started(payload: Heartbeating): void {
    this.running++
    this.latest = payload
  }

  /** That handler returned or threw. */
  ended(): void {
    if (this.running > 0) this.running--
    this.finished++
  }

  /** Handlers running now. */
  get size(): number {
    return this.running
  }

  /** Starts the checks (Detour started). */
  start(): void {
    if (this.timer !== undefined) return
    this.timer = setInterval(() => this.check(), this.tickMs)
    this.timer.unref()
  }

  /** Stops the checks (Detour stopped); handlers still running are no longer covered. */
  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    this.running = 0
    this.latest = undefined
  }

  /** One check: a heartbeat when handlers run and none finished since the last check. */
  check(): void {
    const progressed = this.finished !== this.finishedAtLastCheck
    this.finishedAtLastCheck = this.finished
    if (progressed || this.running === 0 || this.latest === undefined) {
      this.stalledChecks = 0
      return
    }
    this.stalledChecks++
    if (this.stalledChecks > this.maxStalledChecks) {
      if (this.stalledChecks === this.maxStalledChecks + 1) {
        this.options.logger.warn('No handler finished for maxPollIntervalMs: Detour stops heartbeating for them; the consumer session may expire and the group move its partitions', {
          running: this.running,
          topic: this.latest.topic,
          partition: this.latest.partition,
          maxPollIntervalMs: this.options.maxPollIntervalMs,
        })
      }
      return
    }
    // Every payload's heartbeat() is its consumer's: one call covers them all. An error (a rebalance in
    // progress, a coordinator moving) is for kafkajs to act on after the handler; during a rebalance the
    // coordinator still counts the heartbeat as a sign of life.
    // A failure to reach the coordinator is not retried here either: kafkajs looks the coordinator up again
    // only when it rejoins, after the handlers (see ARCHITECTURE.md, "Heartbeats while a handler runs").
    try {
      this.latest.heartbeat().catch(() => undefined)
    } catch {
      // A heartbeat that throws at once (not a kafkajs payload's) must not throw from a timer.
    }
  }
}

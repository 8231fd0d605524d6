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
 * So, like the Java consumer's background heartbeat (KIP-62), Detour heartbeats on behalf of a handler
 * that has run for a tick or more: the member stays in the group, and a rebalance waits for it (up to the
 * consumer's `rebalanceTimeout`) instead of giving its partitions away mid-handler. For at most
 * `maxPollIntervalMs` per handler (Java's `max.poll.interval.ms`): a handler stuck longer stops being
 * covered, the session expires, and the group moves on, as kafkajs alone would have done at once.
 *
 * Cost on the fast path: a `Map.set` and a `Map.delete` per asynchronous handler call; one timer (unref'd)
 * while Detour runs.
 */
export class HandlerHeartbeats {
  private readonly running = new Map<Heartbeating, number>()
  private readonly warned = new WeakSet<Heartbeating>()
  private tick = 0
  private timer: NodeJS.Timeout | undefined
  private readonly tickMs: number
  private readonly maxTicks: number

  constructor(private readonly options: HandlerHeartbeatsOptions) {
    this.tickMs = options.tickMs ?? 1000
    this.maxTicks = Math.max(1, Math.ceil(options.maxPollIntervalMs / this.tickMs))
  }

  /** A handler started on `payload`'s message. */
  started(payload: Heartbeating): void {
    this.running.set(payload, this.tick)
  }

  /** That handler returned or threw. */
  ended(payload: Heartbeating): void {
    this.running.delete(payload)
  }

  /** Handlers running now. */
  get size(): number {
    return this.running.size
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
    this.running.clear()
  }

  /** One check: one heartbeat (they all go to the same consumer) when a handler has run for a tick or more. */
  check(): void {
    this.tick++
    let due: Heartbeating | undefined
    for (const [payload, startedAt] of this.running) {
      const ticks = this.tick - startedAt
      if (ticks < 2) continue // started less than a tick ago: kafkajs heartbeats between messages itself
      if (ticks > this.maxTicks) {
        if (!this.warned.has(payload)) {
          this.warned.add(payload)
          this.options.logger.warn('A handler has run longer than maxPollIntervalMs: Detour stops heartbeating for it; the consumer session may expire and the group move its partitions', {
            topic: payload.topic,
            partition: payload.partition,
            maxPollIntervalMs: this.options.maxPollIntervalMs,
          })
        }
        continue
      }
      due = payload
      break
    }
    // A heartbeat error (a rebalance in progress, a coordinator moving) is for kafkajs to act on after the
    // handler; during a rebalance the coordinator still counts the heartbeat as a sign of life.
    due?.heartbeat().catch(() => undefined)
  }
}

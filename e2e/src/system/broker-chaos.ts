import type { Admin, Kafka } from 'kafkajs'
import type { TestBroker } from '@detour/testkit'
import { workDone, type ChaosEnd, type RunState } from './chaos.js'
import { seededRandom } from './prng.js'

export interface BrokerChaosOptions extends ChaosEnd {
  /** @defaultValue the workload seed */
  readonly seed?: number
  /** Pause before each kill, counted from the moment the previous victim's partitions were all in sync again. @defaultValue [15000, 30000] */
  readonly intervalMs?: readonly [number, number]
  /** How long a killed broker stays down before it is started again. @defaultValue [3000, 12000] */
  readonly downMs?: readonly [number, number]
  /** Keep killing until at least this many broker kills, even once the run's work is done. @defaultValue 0 */
  readonly minKills?: number
  /** @defaultValue unlimited */
  readonly maxKills?: number
  /**
   * Topics whose partitions must all be fully replicated (ISR = replicas) before the next kill, besides
   * Kafka's own `__consumer_offsets` and `__transaction_state`: one broker failure at a time, which is what
   * replication factor 3 with `min.insync.replicas=2` promises to survive.
   */
  readonly topics: readonly string[]
  /** Give up waiting for a full ISR after this long (the event records it; chaos goes on). @defaultValue 120000 */
  readonly inSyncTimeoutMs?: number
  readonly log?: (line: string) => void
}

export interface BrokerChaosEvent {
  /** Ms since the schedule started. */
  readonly at: number
  /** When the broker was killed (epoch ms). */
  readonly time: number
  /** When every watched partition was in sync again, or the wait for it ended (epoch ms). */
  restoredAt?: number
  readonly broker: number
  /** Drawn down time (from the kill to the restart). */
  readonly downMs: number
  /** From the restart until the cluster listed the broker again. */
  restartMs?: number
  /** From the restart until every watched partition was fully replicated again. */
  inSyncMs?: number
  /** What went wrong restarting it or waiting for it (the run fails on it). */
  error?: string
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

const INTERNAL_TOPICS = ['__consumer_offsets', '__transaction_state'] as const

/**
 * SIGKILLs and restarts the brokers of a cluster the test kit runs (`startBroker({ nodes: 3 })`) at seeded
 * moments, one at a time: a broker is killed, stays down `downMs`, is started again with its data, and the
 * next kill waits until every watched partition is fully in sync again. Stops by the same rules as the
 * process chaos ({@link ChaosEnd}); a broker that is down when it stops is started again first.
 */
export class BrokerChaos {
  readonly events: BrokerChaosEvent[] = []
  private stopped = false
  private ended = false
  private loop: Promise<void> | undefined
  /** The broker down right now, if any. */
  private down: number | undefined

  constructor(
    private readonly cluster: TestBroker,
    private readonly kafka: Kafka,
    private readonly options: BrokerChaosOptions & { readonly seed: number },
    private readonly state: () => RunState,
  ) {
    if (!cluster.killBroker || !cluster.restartBroker) throw new Error(`${cluster.description} cannot kill and restart brokers (start a cluster with startBroker({ nodes: 3 }))`)
    if (cluster.brokerIds.length < 3) throw new Error(`broker chaos needs 3 brokers or more (replication factor 3, min.insync.replicas 2); ${cluster.description} has ${cluster.brokerIds.length}`)
  }

  start(): void {
    this.loop ??= this.run().finally(() => {
      this.ended = true
    })
  }

  get finished(): boolean {
    return this.ended || this.loop === undefined
  }

  /** The broker that is down now (killed and not yet restarted). */
  get brokerDown(): number | undefined {
    return this.down
  }

  /** Stops killing; a broker that is down is started again (and waited for) first. */
  async stop(): Promise<void> {
    this.stopped = true
    await this.loop
  }

  private done(): boolean {
    if (this.stopped) return true
    if (this.options.maxKills !== undefined && this.events.length >= this.options.maxKills) return true
    if (this.events.length < (this.options.minKills ?? 0)) return false
    return workDone(this.options, this.state())
  }

  private async run(): Promise<void> {
    const random = seededRandom(this.options.seed ^ 0xb20c3)
    const [minGap, maxGap] = this.options.intervalMs ?? [15_000, 30_000]
    const [minDown, maxDown] = this.options.downMs ?? [3000, 12_000]
    const started = Date.now()
    const admin = this.kafka.admin()
    await admin.connect()
    try {
      while (!this.done()) {
        const gap = random.between(minGap, maxGap)
        const victim = random.pick(this.cluster.brokerIds)
        const downMs = Math.round(random.between(minDown, maxDown))
        const until = Date.now() + gap
        while (Date.now() < until && !this.done()) await sleep(Math.min(100, until - Date.now()))
        if (this.done()) break
        const event: BrokerChaosEvent = { at: Date.now() - started, time: Date.now(), broker: victim, downMs }
        this.events.push(event)
        this.options.log?.(`broker chaos: SIGKILL broker ${victim} for ${downMs} ms`)
        this.down = victim
        try {
          await this.cluster.killBroker!(victim)
          // Down for its time, but started again at once when the chaos is stopped.
          const back = Date.now() + downMs
          while (Date.now() < back && !this.stopped) await sleep(Math.min(100, back - Date.now()))
        } finally {
          await this.restart(admin, victim, event)
        }
      }
    } finally {
      await admin.disconnect().catch(() => undefined)
    }
  }

  private async restart(admin: Admin, victim: number, event: BrokerChaosEvent): Promise<void> {
    const restarted = Date.now()
    try {
      await this.cluster.restartBroker!(victim, 180_000)
      event.restartMs = Date.now() - restarted
      this.down = undefined
      await this.waitInSync(admin)
      event.inSyncMs = Date.now() - restarted
      this.options.log?.(`broker chaos: broker ${victim} back in ${event.restartMs} ms, every partition in sync after ${event.inSyncMs} ms`)
    } catch (error) {
      event.error = error instanceof Error ? error.message : String(error)
      this.options.log?.(`broker chaos: broker ${victim}: ${event.error}`)
    } finally {
      event.restoredAt = Date.now()
    }
  }

  /** True when a broker was down, or the cluster not yet in sync after its restart, at some moment of [from, to] (epoch ms). */
  overlapsOutage(from: number, to: number): boolean {
    return this.events.some((e) => e.time <= to && (e.restoredAt ?? Infinity) >= from)
  }

  /** Waits until every partition of the watched topics (and Kafka's internal ones) has its full ISR. */
  private async waitInSync(admin: Admin): Promise<void> {
    const deadline = Date.now() + (this.options.inSyncTimeoutMs ?? 120_000)
    let lagging: string[] = []
    while (Date.now() < deadline) {
      try {
        const { topics } = await admin.fetchTopicMetadata({ topics: [...this.options.topics, ...INTERNAL_TOPICS] })
        lagging = topics.flatMap((t) => t.partitions.filter((p) => p.isr.length < p.replicas.length).map((p) => `${t.name}/${p.partitionId}`))
        if (lagging.length === 0) return
      } catch (error) {
        lagging = [`(metadata: ${error instanceof Error ? error.message : String(error)})`]
      }
      await sleep(500)
    }
    throw new Error(`partitions not fully in sync ${this.options.inSyncTimeoutMs ?? 120_000} ms after the restart: ${lagging.slice(0, 5).join(', ')}${lagging.length > 5 ? ` and ${lagging.length - 5} more` : ''}`)
  }
}

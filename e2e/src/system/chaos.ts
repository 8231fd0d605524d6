import { seededRandom } from './prng.js'
import type { ExitRecord, ManagedProcess } from './process-supervisor.js'

/** Where a run is, as the chaos schedules see it: they stop once the run's work is done. */
export interface RunState {
  /** When the whole workload was produced (undefined before). */
  readonly producedAt: number | undefined
  /** Every workload message is resolved (processed or dead-lettered). */
  readonly resolved: boolean
}

/** When a chaos schedule stops by itself (besides `maxKills` and an explicit stop). */
export interface ChaosEnd {
  /**
   * `resolved`: once the workload is produced, `afterProducedMs` have passed and every message is resolved
   * — the whole run long; `produced`: once the workload is produced and `afterProducedMs` have passed.
   * @defaultValue 'resolved'
   */
  readonly until?: 'produced' | 'resolved'
  /** At least this long after the whole workload is produced. @defaultValue 3000 */
  readonly afterProducedMs?: number
}

export interface ChaosOptions extends ChaosEnd {
  /** @defaultValue the workload seed */
  readonly seed?: number
  /** Pause between two kills, drawn uniformly. @defaultValue [2000, 5000] */
  readonly intervalMs?: readonly [number, number]
  /** How long a killed process stays down, drawn uniformly. @defaultValue [200, 1500] */
  readonly downMs?: readonly [number, number]
  /** Share of graceful stops (SIGTERM) among the kills; the rest are SIGKILL. @defaultValue 0.2 */
  readonly sigtermRatio?: number
  /**
   * What is killed, in turns (from a random start): `['main', 'main', 'worker']` hits a main app twice as
   * often as the worker. @defaultValue `['main', 'worker']`
   */
  readonly targets?: ReadonlyArray<'main' | 'worker'>
  /** Keep killing until at least this many SIGKILLs were sent, even once the run's work is done. @defaultValue 0 */
  readonly minSigkills?: number
  /** @defaultValue unlimited */
  readonly maxKills?: number
}

export interface ChaosEvent {
  /** Ms since the monkey started. */
  readonly at: number
  /** When the signal was sent (epoch ms). */
  readonly time: number
  readonly target: string
  readonly kind: 'main' | 'worker'
  readonly signal: 'SIGKILL' | 'SIGTERM'
  readonly downMs: number
  /** How the process ended. */
  exit?: ExitRecord
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** True when a schedule with these end rules may stop now. */
export function workDone(end: ChaosEnd, state: RunState, now = Date.now()): boolean {
  if (state.producedAt === undefined || now - state.producedAt < (end.afterProducedMs ?? 3000)) return false
  return (end.until ?? 'resolved') === 'produced' || state.resolved
}

/**
 * Kills and restarts processes at random (seeded) moments until the run's work is done (see
 * {@link ChaosEnd}). The draws (pauses, targets, signals, down times) are reproducible from the seed; what
 * the processes were doing at that moment is not (timing differs from run to run).
 */
export class ChaosMonkey {
  readonly events: ChaosEvent[] = []
  private stopped = false
  private ended = false
  private loop: Promise<void> | undefined

  constructor(
    private readonly options: ChaosOptions & { readonly seed: number },
    private readonly candidates: () => { main: ManagedProcess[]; worker: ManagedProcess },
    private readonly state: () => RunState,
  ) {}

  start(): void {
    this.loop ??= this.run().finally(() => {
      this.ended = true
    })
  }

  /** True once the monkey stopped by its own rules (or was stopped) and its last restart was issued. */
  get finished(): boolean {
    return this.ended || this.loop === undefined
  }

  get sigkills(): number {
    return this.events.filter((e) => e.signal === 'SIGKILL').length
  }

  /** Stops killing now (the current kill/restart finishes). */
  async stop(): Promise<void> {
    this.stopped = true
    await this.loop
  }

  private done(): boolean {
    if (this.stopped) return true
    if (this.options.maxKills !== undefined && this.events.length >= this.options.maxKills) return true
    if (this.sigkills < (this.options.minSigkills ?? 0)) return false
    return workDone(this.options, this.state())
  }

  private async run(): Promise<void> {
    const random = seededRandom(this.options.seed ^ 0x5eed)
    const [minGap, maxGap] = this.options.intervalMs ?? [2000, 5000]
    const [minDown, maxDown] = this.options.downMs ?? [200, 1500]
    const targets = this.options.targets ?? ['main', 'worker']
    const started = Date.now()
    // Kinds take turns from a random start, so every kind is hit.
    let turn = random.int(0, targets.length - 1)
    while (!this.done()) {
      const gap = random.between(minGap, maxGap)
      const kind = targets[turn++ % targets.length] ?? 'main'
      const signal = random.next() < (this.options.sigtermRatio ?? 0.2) ? 'SIGTERM' : 'SIGKILL'
      const downMs = Math.round(random.between(minDown, maxDown))
      const mainPick = random.next()
      const until = Date.now() + gap
      while (Date.now() < until && !this.done()) await sleep(Math.min(100, until - Date.now()))
      if (this.done()) break
      const { main, worker } = this.candidates()
      const target = kind === 'worker' ? worker : main[Math.floor(mainPick * main.length)]
      if (!target?.running) continue
      // A graceful stop is of a process that runs: one still starting (seconds on a loaded machine) may
      // not handle SIGTERM yet and would die of it, which is not what the scenario tests. SIGKILL needs no wait.
      if (signal === 'SIGTERM') await target.waitReady(60_000).catch(() => undefined)
      if (!target.running || this.done()) continue
      const event: ChaosEvent = { at: Date.now() - started, time: Date.now(), target: target.name, kind, signal, downMs }
      this.events.push(event)
      event.exit = signal === 'SIGKILL' ? await target.kill() : await target.stop()
      await sleep(downMs)
      if (!target.running) target.start()
    }
  }
}

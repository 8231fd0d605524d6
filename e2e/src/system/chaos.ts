import { seededRandom } from './prng.js'
import type { ExitRecord, ManagedProcess } from './process-supervisor.js'

export interface ChaosOptions {
  /** @defaultValue the workload seed */
  readonly seed?: number
  /** Pause between two kills, drawn uniformly. @defaultValue [2000, 5000] */
  readonly intervalMs?: readonly [number, number]
  /** How long a killed process stays down, drawn uniformly. @defaultValue [200, 1500] */
  readonly downMs?: readonly [number, number]
  /** Share of graceful stops (SIGTERM) among the kills; the rest are SIGKILL. @defaultValue 0.2 */
  readonly sigtermRatio?: number
  /** What may be killed. @defaultValue both */
  readonly targets?: ReadonlyArray<'main' | 'worker'>
  /** Keep killing this long after the whole workload is produced. @defaultValue 3000 */
  readonly afterProducedMs?: number
  /** @defaultValue unlimited */
  readonly maxKills?: number
}

export interface ChaosEvent {
  /** Ms since the monkey started. */
  readonly at: number
  readonly target: string
  readonly signal: 'SIGKILL' | 'SIGTERM'
  readonly downMs: number
  /** How the process ended. */
  exit?: ExitRecord
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Kills and restarts processes at random (seeded) moments until the workload is produced and
 * `afterProducedMs` more have passed. The moments are reproducible; what the processes were doing at
 * that moment is not (timing differs from run to run).
 */
export class ChaosMonkey {
  readonly events: ChaosEvent[] = []
  private stopped = false
  private loop: Promise<void> | undefined

  constructor(
    private readonly options: ChaosOptions & { readonly seed: number },
    private readonly candidates: () => { main: ManagedProcess[]; worker: ManagedProcess },
    /** Resolves with the time the workload was completely produced. */
    private readonly producedAt: () => number | undefined,
  ) {}

  start(): void {
    this.loop ??= this.run()
  }

  /** Resolves when the monkey is done by its own rules (workload produced, `afterProducedMs` passed, `maxKills`). */
  finished(): Promise<void> {
    return this.loop ?? Promise.resolve()
  }

  /** Stops killing now (the current kill/restart finishes). */
  async stop(): Promise<void> {
    this.stopped = true
    await this.loop
  }

  private done(): boolean {
    if (this.stopped) return true
    if (this.options.maxKills !== undefined && this.events.length >= this.options.maxKills) return true
    const produced = this.producedAt()
    return produced !== undefined && Date.now() - produced >= (this.options.afterProducedMs ?? 3000)
  }

  private async run(): Promise<void> {
    const random = seededRandom(this.options.seed ^ 0x5eed)
    const [minGap, maxGap] = this.options.intervalMs ?? [2000, 5000]
    const [minDown, maxDown] = this.options.downMs ?? [200, 1500]
    const targets = this.options.targets ?? ['main', 'worker']
    const started = Date.now()
    // Kinds take turns (main app, worker, …) from a random start, so every kind is hit.
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
      const event: ChaosEvent = { at: Date.now() - started, target: target.name, signal, downMs }
      this.events.push(event)
      event.exit = signal === 'SIGKILL' ? await target.kill() : await target.stop()
      await sleep(downMs)
      if (!target.running) target.start()
    }
  }
}

import { scrape, sumOf } from './metrics-text.js'

/** A process whose memory is sampled: its `/metrics` (prom-client default metrics) and the size it holds. */
export interface MemorySource {
  readonly name: string
  /** Which start of the process (counters and memory begin again with each). */
  readonly incarnation: number
  readonly metricsUrl: string
  /** The metric that counts what the process holds for Detour (pending ids, buffered retry records). */
  readonly heldMetric: string
}

export interface MemorySample {
  /** Ms since the sampler started. */
  readonly at: number
  readonly process: string
  readonly incarnation: number
  readonly rssBytes: number
  readonly heapUsedBytes: number
  /** Memory of C++ objects bound to JavaScript ones, Buffers included (`nodejs_external_memory_bytes`). */
  readonly externalBytes: number
  /** The value of the source's `heldMetric`. */
  readonly held: number
}

export interface MemoryPeak {
  readonly rssBytes: number
  readonly heapUsedBytes: number
  readonly externalBytes: number
  readonly held: number
  /** The metric behind `held`. */
  readonly heldMetric: string
  readonly samples: number
}

/** One row of the timeline: the highest value of each process within a time window. */
export interface MemoryWindow {
  /** Window start, ms since the sampler started. */
  readonly from: number
  readonly to: number
  readonly byProcess: Readonly<Record<string, { rssBytes: number; heapUsedBytes: number; externalBytes: number; held: number; incarnations: readonly number[] }>>
}

export interface MemoryReport {
  readonly intervalMs: number
  readonly samples: readonly MemorySample[]
  readonly peaks: Readonly<Record<string, MemoryPeak>>
  readonly timeline: readonly MemoryWindow[]
}

/**
 * Samples the memory of a run's processes (RSS, V8 heap in use, and what each holds for Detour) from their
 * `/metrics` every `intervalMs`, and the orchestrator's own from `process.memoryUsage()`. A process that does
 * not answer (down, starting) is skipped for that round. The timeline (highest value per window) shows a
 * leak or a slow climb; the peaks give the figure per process.
 */
export class MemorySampler {
  readonly samples: MemorySample[] = []
  private timer: NodeJS.Timeout | undefined
  private started = 0
  private round: Promise<void> | undefined
  private readonly heldMetrics = new Map<string, string>()

  constructor(
    private readonly sources: () => readonly MemorySource[],
    readonly intervalMs = 5000,
  ) {}

  start(): void {
    if (this.timer) return
    this.started = Date.now()
    this.timer = setInterval(() => {
      this.round ??= this.sample().finally(() => (this.round = undefined))
    }, this.intervalMs)
    this.timer.unref()
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    await this.round
  }

  /** One round now (also taken at the end, so a short run has samples). */
  async sample(): Promise<void> {
    const at = Date.now() - this.started
    const own = process.memoryUsage()
    this.samples.push({ at, process: 'orchestrator', incarnation: 1, rssBytes: own.rss, heapUsedBytes: own.heapUsed, externalBytes: own.external, held: 0 })
    this.heldMetrics.set('orchestrator', '-')
    await Promise.all(
      this.sources().map(async (source) => {
        const metrics = await scrape(source.metricsUrl)
        if (!metrics) return
        this.heldMetrics.set(source.name, source.heldMetric)
        this.samples.push({
          at,
          process: source.name,
          incarnation: source.incarnation,
          rssBytes: sumOf(metrics, 'process_resident_memory_bytes'),
          heapUsedBytes: sumOf(metrics, 'nodejs_heap_size_used_bytes'),
          externalBytes: sumOf(metrics, 'nodejs_external_memory_bytes'),
          held: sumOf(metrics, source.heldMetric),
        })
      }),
    )
  }

  report(windows = 10): MemoryReport {
    const peaks: Record<string, MemoryPeak> = {}
    for (const s of this.samples) {
      const peak = peaks[s.process]
      peaks[s.process] = {
        rssBytes: Math.max(peak?.rssBytes ?? 0, s.rssBytes),
        heapUsedBytes: Math.max(peak?.heapUsedBytes ?? 0, s.heapUsedBytes),
        externalBytes: Math.max(peak?.externalBytes ?? 0, s.externalBytes),
        held: Math.max(peak?.held ?? 0, s.held),
        heldMetric: this.heldMetrics.get(s.process) ?? '-',
        samples: (peak?.samples ?? 0) + 1,
      }
    }
    return { intervalMs: this.intervalMs, samples: this.samples, peaks, timeline: memoryTimeline(this.samples, windows) }
  }
}

/** The samples cut into `windows` equal time windows, keeping the highest value of each process in each. */
export function memoryTimeline(samples: readonly MemorySample[], windows: number): MemoryWindow[] {
  if (samples.length === 0 || windows < 1) return []
  const end = Math.max(...samples.map((s) => s.at)) + 1
  const width = Math.max(1, Math.ceil(end / windows))
  const rows: Array<{ from: number; to: number; byProcess: Record<string, { rssBytes: number; heapUsedBytes: number; externalBytes: number; held: number; incarnations: number[] }> }> = []
  for (let from = 0; from < end; from += width) rows.push({ from, to: Math.min(end, from + width), byProcess: {} })
  for (const s of samples) {
    const row = rows[Math.min(rows.length - 1, Math.floor(s.at / width))]!
    const cell = (row.byProcess[s.process] ??= { rssBytes: 0, heapUsedBytes: 0, externalBytes: 0, held: 0, incarnations: [] })
    cell.rssBytes = Math.max(cell.rssBytes, s.rssBytes)
    cell.heapUsedBytes = Math.max(cell.heapUsedBytes, s.heapUsedBytes)
    cell.externalBytes = Math.max(cell.externalBytes, s.externalBytes)
    cell.held = Math.max(cell.held, s.held)
    if (!cell.incarnations.includes(s.incarnation)) cell.incarnations.push(s.incarnation)
  }
  return rows.filter((row) => Object.keys(row.byProcess).length > 0)
}

import { readFile, rename, writeFile } from 'node:fs/promises'
import type { BrokerMode } from '@detour/testkit'
import type { MachineInfo } from '../support/machine.js'
import type { Figure } from '../suite/types.js'

/**
 * `bench/results.json`: the latest run on each broker, keyed by broker mode (`kafka`: Apache Kafka run by
 * the test kit; `embedded`: librdkafka's mock; `external`, `container`). A run replaces its own broker's
 * section and keeps the others, so `pnpm bench` and `DETOUR_BROKER=embedded pnpm bench` fill one file.
 */
export interface ResultsByBroker {
  readonly note: string
  readonly brokers: Partial<Record<BrokerMode, ResultsFile>>
}

/** One run: its machine, broker and figures. */
export interface ResultsFile {
  readonly date: string
  readonly node: string
  readonly cpuModel: string
  readonly cores: number
  readonly platform: string
  readonly totalMemoryGiB: number
  readonly brokerMode: BrokerMode
  /** The broker's description (version, nodes, addresses). */
  readonly broker: string
  /** Why that broker was chosen. */
  readonly brokerReason: string
  readonly quick: boolean
  /** Benchmarks selected with `--only` (empty: all). */
  readonly only: readonly string[]
  readonly durationSeconds: number
  /** Load averages (1, 5, 15 min) when the run started and ended: other work on the machine adds noise. */
  readonly loadAverage: { readonly start: number[]; readonly end: number[] }
  readonly note: string
  readonly results: readonly Figure[]
  readonly failures: ReadonlyArray<{ readonly benchmark: string; readonly error: string }>
}

export function resultsFile(input: {
  startedAt: Date
  machine: MachineInfo
  brokerMode: BrokerMode
  broker: string
  brokerReason: string
  quick: boolean
  only: readonly string[]
  durationSeconds: number
  loadAverage: { start: number[]; end: number[] }
  results: readonly Figure[]
  failures: ReadonlyArray<{ benchmark: string; error: string }>
}): ResultsFile {
  return {
    date: input.startedAt.toISOString(),
    ...input.machine,
    brokerMode: input.brokerMode,
    broker: input.broker,
    brokerReason: input.brokerReason,
    quick: input.quick,
    only: input.only,
    durationSeconds: input.durationSeconds,
    loadAverage: input.loadAverage,
    note:
      'Each value and baseline is the median of its repetitions (warm-ups excluded); ratio is the median of the per-repetition ' +
      'Detour/baseline ratios (both sides ran back to back against the same broker in this run, alternating which went first). ' +
      'Ratios are the comparable part: absolute numbers depend on the machine and its load.',
    results: input.results,
    failures: input.failures,
  }
}

const FILE_NOTE =
  'One section per broker, each the latest run on it. Compare ratios within a section (both sides ran on that broker in that run); ' +
  'absolute numbers differ between brokers: the embedded mock runs in the benchmark process, Apache Kafka in JVMs beside it.'

/** The sections already in `path` (a file from before sections existed becomes the section of its broker). */
async function existingSections(path: string): Promise<Partial<Record<BrokerMode, ResultsFile>>> {
  let parsed: unknown
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'))
  } catch {
    return {}
  }
  if (typeof parsed !== 'object' || parsed === null) return {}
  if ('brokers' in parsed) return (parsed as ResultsByBroker).brokers
  const single = parsed as Partial<ResultsFile>
  if (typeof single.broker !== 'string') return {}
  const mode: BrokerMode = single.brokerMode ?? (single.broker.startsWith('embedded') ? 'embedded' : 'external')
  return { [mode]: single as ResultsFile }
}

/** Replaces this run's broker section in `path` and keeps the others; atomically (temporary file, then rename). */
export async function writeResults(path: string, results: ResultsFile): Promise<void> {
  const file: ResultsByBroker = { note: FILE_NOTE, brokers: { ...(await existingSections(path)), [results.brokerMode]: results } }
  const tmp = `${path}.tmp`
  await writeFile(tmp, `${JSON.stringify(file, null, 2)}\n`)
  await rename(tmp, path)
}

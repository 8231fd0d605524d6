import { rename, writeFile } from 'node:fs/promises'
import type { MachineInfo } from '../support/machine.js'
import type { Figure } from '../suite/types.js'

/** The contents of `bench/results.json`. */
export interface ResultsFile {
  readonly date: string
  readonly node: string
  readonly cpuModel: string
  readonly cores: number
  readonly platform: string
  readonly totalMemoryGiB: number
  readonly broker: string
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
  broker: string
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
    broker: input.broker,
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

/** Writes atomically (temporary file, then rename). */
export async function writeResults(path: string, results: ResultsFile): Promise<void> {
  const tmp = `${path}.tmp`
  await writeFile(tmp, `${JSON.stringify(results, null, 2)}\n`)
  await rename(tmp, path)
}

import type { Kafka } from 'kafkajs'
import type { ConsumerTiming, TestBroker } from '@detour/testkit'

/** A goal, checked for the report only (never asserted). */
export interface Goal {
  /** What is compared: the Detour/baseline ratio, or the figure itself. */
  readonly on: 'ratio' | 'value'
  readonly op: '>=' | '<='
  readonly target: number
}

/** One line of the results: a median over repetitions, with its baseline when there is one. */
export interface Figure {
  readonly name: string
  readonly value: number
  readonly unit: string
  /** The same workload on raw kafkajs (or another reference), same broker, same run; `null` if none. */
  readonly baseline: number | null
  readonly baselineUnit?: string
  /**
   * Detour / baseline: the median of the per-repetition ratios (each pair ran back to back), so it can
   * differ slightly from value / baseline. Higher is better for throughput; `null` without a baseline.
   */
  readonly ratio: number | null
  /** Human-readable goal, e.g. `ratio >= 0.95`; `null` when the figure is context only. */
  readonly goal: string | null
  /** Whether the latest run met the goal (reported, never asserted). */
  readonly goalMet: boolean | null
  readonly workload: string
  /** Measured repetitions (warm-ups excluded). */
  readonly repetitions: number
  /** The per-repetition measurements behind the medians. */
  readonly samples: { readonly value: number[]; readonly baseline?: number[] }
  readonly note?: string
}

export interface BenchContext {
  readonly broker: TestBroker
  /** A kafkajs client for the broker (quiet). Benchmarks may create more clients from it. */
  readonly kafka: Kafka
  /**
   * Consumer settings of every side of every benchmark (Detour's consumers, the worker, the raw ones): the
   * broker's `consumerTiming` — fetch waits of 100 ms (the embedded broker never answers a fetch early) and
   * sessions the broker accepts.
   */
  readonly consumerConfig: ConsumerTiming
  readonly quick: boolean
  /** Progress output (not part of the results). */
  readonly log: (message: string) => void
}

export interface Benchmark {
  /** The `--only` name. */
  readonly name: string
  readonly title: string
  run(ctx: BenchContext): Promise<Figure[]>
}

import { happyPath } from '../benchmarks/happy-path.js'
import { rebuild } from '../benchmarks/rebuild.js'
import { redirectPath } from '../benchmarks/redirect-path.js'
import { retryLatency } from '../benchmarks/retry-latency.js'
import { retryWorker } from '../benchmarks/retry-worker.js'
import { storeMemory } from '../benchmarks/store-memory.js'
import type { Benchmark } from './types.js'

/** Every benchmark, in the order `pnpm bench` runs them. */
export const benchmarks: readonly Benchmark[] = [happyPath, redirectPath, rebuild, storeMemory, retryWorker, retryLatency]

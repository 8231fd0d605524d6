import { existsSync } from 'node:fs'
import { Worker } from 'node:worker_threads'
import { programs } from './paths.js'
import type { StallWatchdogData } from './stall-watchdog-worker.js'

export type { StallReport } from './stall-watchdog-worker.js'

export interface StallWatchdogOptions {
  /** How long the event loop may go without running a timer before it counts as stalled. */
  readonly stallMs: number
  /** Names the process in the report. */
  readonly label: string
  /** Where the JSON report goes. @defaultValue stderr only */
  readonly reportFile?: string
  /** SIGKILL this process after reporting. @defaultValue false */
  readonly kill?: boolean
}

/**
 * Watches this process's event loop from a worker thread: when no timer has run for `stallMs` (a busy
 * loop, such as a promise chain that never yields, starves every timer and signal handler), the worker
 * samples the main thread through the inspector and reports the busiest JavaScript stacks. Returns a
 * function that stops watching, or `undefined` when the compiled worker is missing.
 */
export function startStallWatchdog(options: StallWatchdogOptions): (() => void) | undefined {
  // Compiled JavaScript for `new Worker`: this module also runs from source under vitest (after `ensureBuilt`).
  const file = programs.stallWatchdogWorker
  if (!existsSync(file)) return undefined
  const heartbeat = new Int32Array(new SharedArrayBuffer(4))
  const beat = setInterval(() => Atomics.add(heartbeat, 0, 1), 100)
  beat.unref()
  const data: StallWatchdogData = { heartbeat, stallMs: options.stallMs, label: options.label, reportFile: options.reportFile, kill: options.kill ?? false }
  // No `--import` preloads in the thread (`execArgv: []`): a preload that starts this watchdog would start
  // another from inside it, and so on, one thread (and V8 isolate, ~10 MiB) after another.
  const worker = new Worker(file, { workerData: data, execArgv: [] })
  worker.unref()
  worker.on('error', () => undefined)
  return () => {
    clearInterval(beat)
    void worker.terminate()
  }
}

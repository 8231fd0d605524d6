/**
 * Preloaded (`node --import`) into every child process the orchestrator starts:
 *
 * - Orphan guard: a child whose parent (the orchestrator, which also hosts the embedded broker) died
 *   exits instead of retrying forever against a broker that is gone.
 * - `DEMO_KAFKAJS_CONSUMER_DEFAULTS` (JSON): defaults merged under every kafkajs consumer config of the
 *   process. The retry worker's CLI has no flags for consumer timing yet, and kafkajs' defaults
 *   (5 s fetch wait, 30 s session) make it very slow on the embedded broker, whose fetches never return
 *   early and whose rebalances wait for the session timeout of a killed member. Settings the
 *   application passes itself still win.
 * - Stall watchdog (`DETOUR_E2E_STALL_REPORT`): a worker thread that reports the JavaScript stack when
 *   the event loop stops running timers (see `stall-watchdog.ts`); the supervisor reads the report when
 *   its liveness probe finds the child unresponsive.
 */
import { isMainThread } from 'node:worker_threads'
import kafkajs, { type ConsumerConfig } from 'kafkajs'
import { startStallWatchdog } from './stall-watchdog.js'

// Node runs `--import` preloads in every worker thread too: only the main thread is the process.
if (isMainThread) install()

function install(): void {
  const parent = process.ppid
  setInterval(() => {
    if (process.ppid !== parent) {
      process.stderr.write(`${JSON.stringify({ level: 'error', time: new Date().toISOString(), message: 'The orchestrator is gone; exiting' })}\n`)
      process.exit(70)
    }
  }, 500).unref()

  const stallReport = process.env.DETOUR_E2E_STALL_REPORT
  if (stallReport) {
    startStallWatchdog({
      stallMs: Number(process.env.DETOUR_E2E_STALL_MS ?? 10_000),
      label: `${process.env.DETOUR_E2E_PROCESS_NAME ?? 'child'} (pid ${process.pid})`,
      reportFile: stallReport.replace('{pid}', String(process.pid)),
    })
  }

  const raw = process.env.DEMO_KAFKAJS_CONSUMER_DEFAULTS
  if (raw) {
    const defaults = JSON.parse(raw) as Partial<ConsumerConfig>
    const prototype = kafkajs.Kafka.prototype as { consumer: (config: ConsumerConfig) => unknown }
    const original = prototype.consumer
    prototype.consumer = function consumer(this: unknown, config: ConsumerConfig) {
      const merged: Record<string, unknown> = { ...defaults }
      for (const [key, value] of Object.entries(config)) if (value !== undefined) merged[key] = value
      return original.call(this, merged as unknown as ConsumerConfig)
    }
  }
}

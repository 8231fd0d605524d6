import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

/** The kafkajs release whose internals the guard knows. */
const GUARDED_VERSION = '2.2.4'

/** Thrown into a kafkajs fetcher that runs for a consumer that was stopped (see {@link guardFetchAfterStop}). */
export class FetchAfterStopError extends Error {
  constructor() {
    super('kafkajs fetcher running for a stopped consumer: ended by the e2e guard (kafkajs 2.2.4 fetch-manager race)')
    this.name = 'FetchAfterStopError'
  }
}

interface RunnerPrototype {
  running: boolean
  fetch: (this: RunnerPrototype, nodeId: number) => Promise<unknown[]>
}

let installed: boolean | undefined

/**
 * Guards the orchestrator's own kafkajs consumers against a busy loop in kafkajs 2.2.4 (found by the
 * broker down/up scenario, reproduced by `kafkajs-stop-race.ts`):
 *
 * When a consumer's brokers change (a broker leaves or rejoins the metadata), a fetcher throws
 * `KafkaJSFetcherRebalanceError`; the fetch manager then waits for the other fetchers to end and starts
 * new ones (`fetchManager.js`, `continue` in `start()`), without checking whether the consumer was stopped
 * meanwhile. If `consumer.stop()`/`disconnect()` landed during that wait (here: the topic observer
 * replacing a consumer stalled on a fetch the broker never answered), the new fetchers run for a stopped
 * runner, whose `fetch()` answers `[]` at once (`runner.js`: `if (!this.running) return []`): each
 * fetcher's `while (isRunning) await fetch()` loop then turns on microtasks alone, calling
 * `brokerPool.getNodeIds()` (`Object.keys`) each time, and starves the event loop for good: 100% CPU, no
 * timer fires. This makes a stopped runner's `fetch()` throw instead, which ends the fetcher, and the
 * runner (not running) does not start another.
 *
 * Installed in the orchestrator only (the process that runs `runScenario`), never in Detour's processes:
 * product code meets kafkajs as users get it, and the supervisor's watchdog catches it if it spins.
 * Returns whether the guard is active (false for another kafkajs version: the internals may differ).
 */
export function guardFetchAfterStop(): boolean {
  if (installed !== undefined) return installed
  const version = (require('kafkajs/package.json') as { version: string }).version
  if (version !== GUARDED_VERSION) {
    installed = false
    return installed
  }
  const Runner = require('kafkajs/src/consumer/runner.js') as { prototype: RunnerPrototype }
  const original = Runner.prototype.fetch
  Runner.prototype.fetch = function fetch(this: RunnerPrototype, nodeId: number): Promise<unknown[]> {
    if (!this.running) return Promise.reject(new FetchAfterStopError())
    return original.call(this, nodeId)
  }
  installed = true
  return installed
}

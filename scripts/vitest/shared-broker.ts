/**
 * Global set-up of the `broker` and `e2e` test projects, run once per `vitest run` in the main process:
 * starts the broker the test files share (see `startSharedBroker`: Apache Kafka run by the test kit when
 * Java is here) and hands it to the test workers in `DETOUR_TEST_BROKER`. Both projects use this file; the
 * second call finds the broker started, and the last teardown stops it.
 */
import { SHARED_BROKER_ENV, startSharedBroker, type TestBroker } from '@detour/testkit'

interface SharedState {
  broker?: TestBroker
  /** The broker logs' last lines, kept at teardown for the summary reporter (printed when a test failed). */
  logTail?: string
  users: number
}

// One state for the whole main process (each project evaluates this module on its own).
const key = Symbol.for('detour.vitest.global-setup')
const state: SharedState = ((globalThis as Record<symbol, unknown>)[key] as SharedState | undefined) ?? { users: 0 }
;(globalThis as Record<symbol, unknown>)[key] = state

export default async function setup(): Promise<() => Promise<void>> {
  state.users++
  if (process.env[SHARED_BROKER_ENV] === undefined && !state.broker) {
    const shared = await startSharedBroker((line) => console.log(line))
    if (shared) {
      state.broker = shared.broker
      process.env[SHARED_BROKER_ENV] = JSON.stringify(shared.info)
    }
  }
  return async () => {
    state.users--
    if (state.users > 0 || !state.broker) return
    const broker = state.broker
    state.broker = undefined
    delete process.env[SHARED_BROKER_ENV]
    state.logTail = broker.logTail?.(80)
    await broker.stop()
  }
}

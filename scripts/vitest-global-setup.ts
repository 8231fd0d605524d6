/**
 * Global set-up of the `broker` and `e2e` test projects, run once per `vitest run` in the main process:
 * builds the workspace (the e2e suites run the compiled programs as child processes), then starts the
 * broker the test files share (see `startSharedBroker`: Apache Kafka run by the test kit when Java is
 * here) and hands it to the test workers in `DETOUR_TEST_BROKER`. Both projects use this file; the second
 * call finds the work done.
 */
import { spawnSync } from 'node:child_process'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SHARED_BROKER_ENV, startSharedBroker, type TestBroker } from '@detour/testkit'

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..')

interface SharedState {
  built?: boolean
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
  if (!state.built) {
    const started = Date.now()
    const tsc = spawnSync(process.execPath, [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-b', join(repoRoot, 'tsconfig.build.json')], {
      cwd: repoRoot,
      encoding: 'utf8',
    })
    if (tsc.status !== 0) throw new Error(`tsc -b tsconfig.build.json failed:\n${tsc.stdout}${tsc.stderr}`)
    state.built = true
    console.log(`build: up to date in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  }
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

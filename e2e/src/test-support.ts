// Shared by the e2e suites (excluded from the build, like the suites).
import { rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import { resolveBrokerMode, startBroker, testKafka, type StartBrokerOptions, type TestBroker } from '@detour/testkit'
import { ensureBuilt } from './system/paths.js'
import { describeResult, runScenario, type ScenarioOptions, type ScenarioResult } from './system/scenario.js'
import { startStallWatchdog } from './system/stall-watchdog.js'

let watchingThisProcess = false

/**
 * A hang of this test process must fail its file, not stall the run: a starved event loop fires no
 * vitest timeout. After 30 s without a timer run, the watchdog prints this process's busiest JavaScript
 * stacks (and writes them next to the e2e logs), then SIGKILLs it; vitest reports the file as failed and
 * the children (orphan guard) and the brokers (run-kafka.sh) go with it.
 */
function watchThisProcess(): void {
  if (watchingThisProcess) return
  watchingThisProcess = true
  const reportFile = join(tmpdir(), `detour-e2e-test-process.${process.pid}.stall.json`)
  startStallWatchdog({ stallMs: 30_000, label: `e2e test process (pid ${process.pid}, report ${reportFile})`, reportFile, kill: true })
}

/**
 * Builds the child programs if needed and connects to this file's broker: the test run's shared broker
 * (Apache Kafka run by the test kit, started by the global set-up), or what `startBroker` picks otherwise
 * (`KAFKA_BROKERS`, a container, the embedded broker). `options` asks for a broker of the file's own
 * (`needs: ['fault-injection']`: the embedded broker, whatever the run's broker is).
 */
export async function setUpSuite(options: StartBrokerOptions = {}): Promise<TestBroker> {
  ensureBuilt()
  watchThisProcess()
  const { reason } = await resolveBrokerMode(options)
  const broker = await startBroker(options)
  console.log(`e2e broker: ${broker.description} (${reason})`)
  return broker
}

/**
 * Runs a scenario on the suite's broker and prints its summary. The run's topics outlive the scenario until
 * the test ends (tests read them back), then are deleted where the broker has an admin API
 * (`DETOUR_E2E_KEEP_TOPICS=1` keeps them): random names must not pile up on a shared or existing cluster.
 */
export async function scenario(broker: TestBroker, options: ScenarioOptions): Promise<ScenarioResult> {
  // The checks count retry records read back from the retry topic after the fact: the worker's purge of
  // resolved records (on by default) could delete one before a loaded machine's observer read it.
  const extraArgs = options.worker?.extraArgs ?? []
  const worker = extraArgs.some((arg) => arg.includes('purge-resolved-records'))
    ? options.worker
    : { ...options.worker, extraArgs: ['--purge-resolved-records', 'false', ...extraArgs] }
  const result = await runScenario({
    ...options,
    worker,
    deleteTopics: false,
    broker,
    log: process.env.DETOUR_E2E_VERBOSE ? (line) => console.log(line) : undefined,
  })
  console.log(describeResult(result))
  onTestFinished(async ({ task }) => {
    // The logs of a passing test are not needed (DETOUR_E2E_KEEP_LOGS=1 keeps them); a failing one's stay, their path printed above.
    if (task.result?.state === 'pass' && !process.env.DETOUR_E2E_KEEP_LOGS) rmSync(result.logDir, { recursive: true, force: true })
    if (broker.capabilities.adminApi && !process.env.DETOUR_E2E_KEEP_TOPICS) {
      const admin = testKafka(broker).admin()
      const t = result.topics
      try {
        await admin.connect()
        await admin.deleteTopics({ topics: [t.source, t.retry, t.redirect, t.error, t.output], timeout: 10_000 })
      } catch (error) {
        console.log(`deleting the topics of ${result.name} failed: ${String(error)}`)
      } finally {
        await admin.disconnect().catch(() => undefined)
      }
    }
  })
  return result
}

/** The seed of randomised runs: `DETOUR_E2E_SEED` reproduces a failed run. */
export function seed(fallback: number): number {
  const raw = process.env.DETOUR_E2E_SEED
  return raw === undefined || raw === '' ? fallback : Number(raw)
}

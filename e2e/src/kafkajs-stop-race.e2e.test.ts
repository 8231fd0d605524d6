import { afterEach, describe, expect, it } from 'vitest'
import { freePort, ProcessSupervisor } from './system/process-supervisor.js'
import { ensureBuilt, programs, repoRoot } from './system/paths.js'

/**
 * The kafkajs 2.2.4 busy loop that once hung the broker down/up scenario (see `system/kafkajs-stop-guard.ts`),
 * reproduced in a child process on the embedded broker. The first test proves the supervisor's watchdog
 * turns such a hang into a failure with the stack it spins in, and pins the kafkajs behaviour (when a
 * kafkajs upgrade fixes it, this test fails: drop the guard then). The second proves the orchestrator's guard.
 */
let supervisor: ProcessSupervisor | undefined

afterEach(async () => {
  await supervisor?.stopAll(5000)
  supervisor = undefined
})

async function race(guard: boolean): Promise<{ supervisor: ProcessSupervisor; exitCode: number | null }> {
  ensureBuilt()
  const port = await freePort()
  supervisor = new ProcessSupervisor({ restartCrashed: false, watchdog: { livenessTimeoutMs: 8000, stallMs: 3000, startupMs: 30_000 } })
  const child = supervisor.add({
    name: guard ? 'race-guarded' : 'race',
    script: programs.stopRace,
    args: [...(guard ? ['--guard'] : []), '--port', String(port)],
    nodeArgs: ['--import', programs.preload],
    cwd: repoRoot,
    readyUrl: `http://127.0.0.1:${port}/`,
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (record) => resolve(record.code)))
  child.start()
  const exitCode = await exited
  return { supervisor, exitCode }
}

describe('kafkajs 2.2.4: consumer stopped while its fetchers rebalance (embedded broker in a child process)', () => {
  it('spins with a starved event loop; the watchdog kills it and reports the stack', async () => {
    const { supervisor, exitCode } = await race(false)
    const stuck = supervisor.stuck[0]
    expect(stuck, `exit code ${exitCode}; ${supervisor.tails(30)}`).toBeDefined()
    console.log(`watchdog: ${stuck?.name} stuck (${stuck?.reason})\n${stuck?.stack}`)
    expect(stuck?.stack).toMatch(/getNodeIds .*brokerPool\.js/)
    expect(stuck?.stack).toMatch(/start .*consumer\/fetcher\.js/)
  }, 90_000)

  it('ends cleanly with the orchestrator guard: disconnect finishes and the event loop stays responsive', async () => {
    const { supervisor, exitCode } = await race(true)
    expect(supervisor.stuck).toEqual([])
    expect(exitCode, supervisor.tails(30)).toBe(0)
  }, 90_000)
})

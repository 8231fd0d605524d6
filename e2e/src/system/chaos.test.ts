import { describe, expect, it } from 'vitest'
import { ChaosMonkey, workDone, type RunState } from './chaos.js'
import type { ExitRecord, ManagedProcess } from './process-supervisor.js'

/** A stand-in for a supervised process: kill/stop/start flip `running`, nothing is spawned. */
function fakeProcess(name: string): ManagedProcess {
  let running = true
  let incarnation = 1
  const exit = (sent: 'SIGKILL' | 'SIGTERM'): Promise<ExitRecord> => {
    running = false
    return Promise.resolve({ incarnation, pid: undefined, code: sent === 'SIGTERM' ? 0 : null, signal: sent === 'SIGKILL' ? 'SIGKILL' : null, expected: true, sent, at: Date.now() })
  }
  return {
    name,
    get running() {
      return running
    },
    kill: () => exit('SIGKILL'),
    stop: () => exit('SIGTERM'),
    start: () => {
      running = true
      incarnation++
    },
    waitReady: () => Promise.resolve(),
  } as unknown as ManagedProcess
}

async function schedule(seed: number, state: () => RunState, minSigkills = 0): Promise<string[]> {
  const main = [fakeProcess('main-0'), fakeProcess('main-1')]
  const worker = fakeProcess('worker')
  const monkey = new ChaosMonkey({ seed, intervalMs: [1, 3], downMs: [0, 1], targets: ['main', 'main', 'worker'], sigtermRatio: 0.3, minSigkills }, () => ({ main, worker }), state)
  monkey.start()
  while (!monkey.finished) await new Promise((resolve) => setTimeout(resolve, 5))
  return monkey.events.map((e) => `${e.signal} ${e.target} ${e.kind} ${e.downMs}`)
}

describe('workDone', () => {
  const now = 100_000
  it('waits for the workload to be produced, afterProducedMs, and (by default) every message resolved', () => {
    expect(workDone({}, { producedAt: undefined, resolved: true }, now)).toBe(false)
    expect(workDone({}, { producedAt: now - 1000, resolved: true }, now)).toBe(false)
    expect(workDone({}, { producedAt: now - 3000, resolved: false }, now)).toBe(false)
    expect(workDone({}, { producedAt: now - 3000, resolved: true }, now)).toBe(true)
    expect(workDone({ until: 'produced', afterProducedMs: 500 }, { producedAt: now - 500, resolved: false }, now)).toBe(true)
  })
})

describe('ChaosMonkey', () => {
  it('kills the whole run long: until every message is resolved, not when production ends', async () => {
    let resolved = false
    const producedAt = Date.now() - 10_000
    setTimeout(() => (resolved = true), 150)
    const started = Date.now()
    const events = await schedule(7, () => ({ producedAt, resolved }))
    expect(Date.now() - started).toBeGreaterThanOrEqual(140)
    expect(events.length).toBeGreaterThan(5)
  })

  it('draws the same schedule from the same seed, and main apps twice as often as the worker with targets main, main, worker', async () => {
    const done = (): RunState => ({ producedAt: 0, resolved: true })
    const a = await schedule(11, done, 12)
    const b = await schedule(11, done, 12)
    const c = await schedule(12, done, 12)
    expect(a).toEqual(b)
    expect(a).not.toEqual(c)
    // Turns over main, main, worker: the worker every third kill, from wherever the rotation started.
    const workerTurns = a.flatMap((e, i) => (e.split(' ')[2] === 'worker' ? [i % 3] : []))
    expect(workerTurns.length).toBeGreaterThan(2)
    expect(new Set(workerTurns).size).toBe(1)
  })

  it('goes on until minSigkills SIGKILLs were sent even when the work is done', async () => {
    const events = await schedule(3, () => ({ producedAt: 0, resolved: true }), 5)
    expect(events.filter((e) => e.startsWith('SIGKILL')).length).toBe(5)
  })
})

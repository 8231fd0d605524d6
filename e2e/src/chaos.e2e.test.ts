import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TestBroker } from '@detour/testkit'
import { describeResult } from './system/scenario.js'
import { scenario, seed, setUpSuite } from './test-support.js'

let broker: TestBroker

beforeAll(async () => {
  broker = await setUpSuite()
}, 240_000)

afterAll(async () => {
  await broker?.stop()
})

describe('randomised chaos', () => {
  it('keeps per-key order, loses nothing and leaves no pending id through repeated kills of main apps and the worker', async () => {
    const chaosSeed = seed(20_251_121)
    console.log(`chaos seed ${chaosSeed} (reproduce the schedule with DETOUR_E2E_SEED=${chaosSeed})`)
    const result = await scenario(broker, {
      name: 'chaos',
      workload: { messages: 5000, keys: 300, failureRate: 0.05, poison: 8, seed: chaosSeed },
      partitions: 4,
      mainApps: 2,
      worker: { initialDelayMs: 200, maxDelayMs: 2000, maxAttempts: 20 },
      produceRatePerSec: 120,
      chaos: { seed: chaosSeed, intervalMs: [2000, 4500], downMs: [200, 1500], sigtermRatio: 0.25, afterProducedMs: 5000 },
      timeoutMs: 180_000,
    })
    const r = result.report
    console.log(
      `chaos summary: ${result.chaos.length} kills (${result.chaos.map((e) => `${(e.at / 1000).toFixed(1)}s ${e.signal} ${e.target}`).join(', ')}); ` +
        `processed ${r.processed}/${r.expected}, duplicates ${r.duplicates}, order violations ${r.firstProcessingViolations}, stale replays ${r.staleReplays}, lost ${r.lost}, pending ids ${r.pendingIds}, ` +
        `redirected ${JSON.stringify(r.redirected)}, dead-lettered ${JSON.stringify(r.deadLettered)}, elapsed ${(result.elapsedMs / 1000).toFixed(1)} s`,
    )
    expect(result.failures, describeResult(result)).toEqual([])
    expect(r.firstProcessingViolations).toBe(0)
    expect(r.staleReplays).toBe(0)
    expect(r.lost).toBe(0)
    expect(r.pendingIds).toBe(0)
    expect(result.storePendingIds).toBe(0)
    expect(r.poison.deadLettered).toBe(8)
    expect(result.chaos.length).toBeGreaterThanOrEqual(5)
    expect(new Set(result.chaos.map((e) => e.target)).has('worker')).toBe(true)
  }, 300_000)
})

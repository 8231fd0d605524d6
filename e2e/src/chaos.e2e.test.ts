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
  it('keeps per-key order (no stale replay either), loses nothing and leaves no pending id while main apps and the worker are killed the whole run long', async () => {
    const chaosSeed = seed(20_251_121)
    console.log(`chaos seed ${chaosSeed} (reproduce the schedule with DETOUR_E2E_SEED=${chaosSeed})`)
    const result = await scenario(broker, {
      name: 'chaos',
      workload: { messages: 4000, keys: 300, failureRate: 0.1, poison: 8, seed: chaosSeed },
      partitions: 4,
      mainApps: 2,
      // A 3 s handler timeout: a restarted worker takes a SIGKILLed predecessor's partitions over after 5 s.
      worker: { initialDelayMs: 200, maxDelayMs: 2000, maxAttempts: 20, handlerTimeoutMs: 3000 },
      produceRatePerSec: 100,
      // Until every message is resolved (the default): kills land on the tail of retries too.
      chaos: { seed: chaosSeed, intervalMs: [2500, 5000], downMs: [200, 1500], sigtermRatio: 0.25, targets: ['main', 'main', 'worker'], minSigkills: 8 },
      timeoutMs: 240_000,
    })
    const r = result.report
    const sigkills = result.chaos.filter((e) => e.signal === 'SIGKILL')
    console.log(
      `chaos summary: ${result.chaos.length} kills (${result.chaos.map((e) => `${(e.at / 1000).toFixed(1)}s ${e.signal} ${e.target}`).join(', ')}); ` +
        `processed ${r.processed}/${r.expected}, duplicates ${r.duplicates}, order violations ${r.firstProcessingViolations}, stale replays ${r.staleReplays}, lost ${r.lost}, pending ids ${r.pendingIds}, ` +
        `redirected ${JSON.stringify(r.redirected)}, dead-lettered ${JSON.stringify(r.deadLettered)}, retried delay max ${((r.retriedDelay?.maxMs ?? 0) / 1000).toFixed(1)} s, elapsed ${(result.elapsedMs / 1000).toFixed(1)} s`,
    )
    expect(result.failures, describeResult(result)).toEqual([])
    expect(r.firstProcessingViolations).toBe(0)
    expect(r.staleReplays).toBe(0)
    expect(r.lost).toBe(0)
    expect(r.pendingIds).toBe(0)
    expect(result.storePendingIds).toBe(0)
    expect(r.poison.deadLettered).toBe(8)
    expect(sigkills.length).toBeGreaterThanOrEqual(8)
    expect(new Set(sigkills.map((e) => e.kind))).toEqual(new Set(['main', 'worker']))
    // The chaos went on after the last message was produced: the tail of retries was hit too.
    expect(result.chaos.some((e) => e.time > (result.producedAt ?? Infinity))).toBe(true)
  }, 420_000)
})

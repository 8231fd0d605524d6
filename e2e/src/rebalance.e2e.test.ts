import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TestBroker } from '@detour/testkit'
import { describeResult } from './system/scenario.js'
import { scenario, setUpSuite } from './test-support.js'

let broker: TestBroker

beforeAll(async () => {
  broker = await setUpSuite()
}, 240_000)

afterAll(async () => {
  await broker?.stop()
})

describe('two main app instances', () => {
  it('keeps order and loses nothing when a second instance joins and later leaves under load', async () => {
    const result = await scenario(broker, {
      name: 'rebalance',
      workload: { messages: 3000, keys: 200, seed: 31, failureRate: 0.05, poison: 4 },
      worker: { initialDelayMs: 300, maxDelayMs: 2000 },
      produceRatePerSec: 200,
      timeoutMs: 120_000,
      during: async ({ system, waitUntil, restart }) => {
        await waitUntil((p) => p.processed >= 500, '500 messages processed by one instance', 60_000)
        const second = await system.addMainApp(1)
        second.start()
        await second.waitReady(60_000)
        await waitUntil((p) => p.processed >= 1800, '1800 messages processed by two instances', 90_000)
        // A graceful leave (SIGTERM) and a rejoin: two more rebalances while messages flow.
        await restart(second, 'SIGTERM', 300)
      },
    })
    expect(result.failures, describeResult(result)).toEqual([])
    expect(result.report.firstProcessingViolations).toBe(0)
    expect(result.report.staleReplays).toBe(0)
    expect(result.report.lost).toBe(0)
    expect(result.report.pendingIds).toBe(0)
    expect(result.storePendingIds).toBe(0)
    expect(result.report.processedBy['main-0']).toBeGreaterThan(0)
    expect(result.report.processedBy['main-1']).toBeGreaterThan(0)
    // The graceful leave exited cleanly (an earlier exit may be a known embedded-broker crash, listed in environmentCrashes).
    const leave = result.processes.find((p) => p.name === 'main-1')?.exits.find((e) => e.sent === 'SIGTERM')
    expect(leave).toMatchObject({ code: 0, signal: null })
  }, 180_000)
})

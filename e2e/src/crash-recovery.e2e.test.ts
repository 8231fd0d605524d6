import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TestBroker } from '@detour/testkit'
import { sumOf } from './system/metrics-text.js'
import { firstOutputs } from './system/result-queries.js'
import { describeResult, type ScenarioResult } from './system/scenario.js'
import { scenario, setUpSuite } from './test-support.js'

let broker: TestBroker

beforeAll(async () => {
  broker = await setUpSuite()
}, 240_000)

afterAll(async () => {
  await broker?.stop()
})

function expectInvariants(result: ScenarioResult): void {
  expect(result.failures, describeResult(result)).toEqual([])
  expect(result.report.firstProcessingViolations).toBe(0)
  expect(result.report.staleReplays).toBe(0)
  expect(result.report.lost).toBe(0)
  expect(result.report.pendingIds).toBe(0)
  expect(result.storePendingIds).toBe(0)
}

describe('crash recovery (SIGKILL)', () => {
  it('survives a main app SIGKILLed mid-stream: restarted, groups rebuilt from the redirect topic, nothing lost, order kept', async () => {
    let pendingAtKill = -1
    const result = await scenario(broker, {
      name: 'main-app-sigkill',
      workload: { messages: 1500, keys: 100, seed: 21, failureRate: 0.05, poison: 3 },
      // Slow retries keep ids pending across the crash, so the restarted app must rebuild them.
      handler: { workerFailureRate: 0.3 },
      worker: { initialDelayMs: 1000, maxDelayMs: 2000 },
      produceRatePerSec: 300,
      timeoutMs: 90_000,
      during: async ({ system, observations, waitUntil, restart }) => {
        await waitUntil((p) => p.processed >= 450 && p.pending >= 3, '30% processed with pending ids', 60_000)
        pendingAtKill = observations.pending
        await restart(system.mainApps[0]!, 'SIGKILL', 300)
      },
    })
    expectInvariants(result)
    expect(pendingAtKill).toBeGreaterThanOrEqual(3)
    expect(result.processes.find((p) => p.name === 'main-0')?.starts).toBe(2)
    expect(result.processes.find((p) => p.name === 'main-0')?.exits[0]?.signal).toBe('SIGKILL')
    // The second incarnation rebuilt its partitions from the redirect topic before processing.
    const log = readFileSync(`${result.logDir}/main-0.log`, 'utf8').split('----- main-0 #2')[1] ?? ''
    expect(log).toMatch(/Assigned partitions are ready \(claimed and rebuilt from the redirect topic\)/)
    console.log(`pending ids at the kill: ${pendingAtKill}; duplicates after the crash: ${result.report.duplicates}`)
  }, 150_000)

  it('survives the retry worker SIGKILLed mid-backoff: restarted, retries resumed, nothing lost, order kept', async () => {
    let atKill = { attempted: 0, succeeded: 0, pending: 0 }
    const result = await scenario(broker, {
      name: 'worker-sigkill',
      workload: { messages: 600, keys: 60, seed: 22, failureRate: 0.05, poison: 2 },
      // Every id's first worker attempt fails, then a 5 s backoff (no jitter): the kill lands inside it.
      handler: { workerFailFirst: 1, workerFailureRate: 0 },
      worker: { initialDelayMs: 5000, maxDelayMs: 5000, extraArgs: ['--jitter', '0'] },
      timeoutMs: 90_000,
      during: async ({ system, observations, waitUntil, restart, produced }) => {
        await produced
        await waitUntil((p) => p.retried >= 10, 'the worker to have attempted some retries', 30_000)
        const metrics = (await system.workerMetrics()) ?? []
        atKill = {
          attempted: sumOf(metrics, 'detour_retry_retries_attempted_total'),
          succeeded: sumOf(metrics, 'detour_retry_retries_succeeded_total'),
          pending: observations.pending,
        }
        await restart(system.worker, 'SIGKILL', 500)
      },
    })
    expectInvariants(result)
    // At the kill, retries had been attempted and were waiting in backoff (none could have succeeded yet).
    expect(atKill.attempted).toBeGreaterThanOrEqual(10)
    expect(atKill.succeeded).toBe(0)
    expect(atKill.pending).toBeGreaterThan(0)
    expect(result.processes.find((p) => p.name === 'worker')?.starts).toBe(2)
    const first = firstOutputs(result)
    for (const message of result.workload.messages.filter((m) => m.transient)) expect(first.get(message.ref)?.by, message.ref).toBe('worker')
  }, 150_000)
})

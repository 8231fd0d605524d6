import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { collectMessages, testKafka, type TestBroker } from '@detour/testkit'
import { deadLettersOf, firstOutputs, redirectedKeys, refsOfKey } from './system/result-queries.js'
import { describeResult, type ScenarioResult } from './system/scenario.js'
import { scenario, setUpSuite } from './test-support.js'

let broker: TestBroker

beforeAll(async () => {
  broker = await setUpSuite()
}, 240_000)

afterAll(async () => {
  await broker?.stop()
})

/** Order, loss and leftover ids: asserted by every scenario. */
function expectInvariants(result: ScenarioResult): void {
  expect(result.failures, describeResult(result)).toEqual([])
  expect(result.report.firstProcessingViolations).toBe(0)
  expect(result.report.staleReplays).toBe(0)
  expect(result.report.lost).toBe(0)
  expect(result.report.pendingIds).toBe(0)
  expect(result.storePendingIds).toBe(0)
}

describe('retry flow (main app + retry worker as processes)', () => {
  it('retries a transient failure in the worker until it succeeds, in key order, leaving other keys alone', async () => {
    const result = await scenario(broker, {
      name: 'transient',
      workload: { messages: 200, keys: 10, seed: 5, failureRate: 0, poison: 0, transientRefs: ['k3:4'] },
      // The worker's first attempt fails too: main app failure → worker failure → worker success.
      handler: { workerFailFirst: 1, workerFailureRate: 0 },
      worker: { initialDelayMs: 300, maxDelayMs: 1000 },
      produceRatePerSec: 400,
      timeoutMs: 60_000,
    })
    expectInvariants(result)
    const first = firstOutputs(result)
    expect(first.get('k3:4')?.by).toBe('worker')
    expect(result.retried).toBeGreaterThanOrEqual(2)
    expect(result.report.redirected.failure).toBe(1)
    // Only k3 ever went to the retry topic: later k3 messages waited behind k3:4 (reason "ordering").
    expect(new Set(redirectedKeys(result))).toEqual(new Set(['k3']))
    for (const ref of refsOfKey(result, 'k3').slice(0, 3)) expect(first.get(ref)?.by).toBe('main-0')
    // Every other key was processed by the main app directly, untouched by k3's retry.
    for (const [ref, out] of first) if (!ref.startsWith('k3:')) expect(out.by, ref).toBe('main-0')
    expect(result.report.processed).toBe(200)
  }, 120_000)

  it('dead-letters unprocessable messages with the documented headers, from the main app and from the worker', async () => {
    const started = Date.now()
    const result = await scenario(broker, {
      name: 'unprocessable',
      // k1:3 and k2:1 fail in the main app; k4:3 arrives while k4:2 waits in the worker, so the worker dead-letters it.
      workload: { messages: 120, keys: 6, seed: 7, failureRate: 0, poisonRefs: ['k1:3', 'k2:1', 'k4:3'], transientRefs: ['k4:2'] },
      handler: { workerFailFirst: 1, workerFailureRate: 0 },
      worker: { initialDelayMs: 1500, maxDelayMs: 1500 },
      timeoutMs: 60_000,
    })
    expectInvariants(result)
    expect(result.report.deadLettered).toEqual({ unprocessable: 3 })
    const { topics, groupId } = result
    const source = await collectMessages(testKafka(broker), topics.source, (got) => got.length >= 120)
    const coordinates = new Map(source.map((m) => [m.message.headers?.['x-demo-ref']?.toString(), m]))

    for (const ref of ['k1:3', 'k2:1', 'k4:3']) {
      const records = deadLettersOf(result, ref)
      expect(records, ref).toHaveLength(1)
      const [dl] = records
      const original = coordinates.get(ref)!
      const h = dl!.headers
      expect(h['detour-reason']).toBe('unprocessable')
      expect(h['detour-error-name']).toBe('UnprocessableMessageError')
      expect(h['detour-error-message']).toBe(`poison message ${ref}`)
      expect(h['detour-error-stack']).toMatch(/UnprocessableMessageError: poison message[\s\S]*example-handler\.js/)
      expect(h['detour-original-topic']).toBe(topics.source)
      expect(h['detour-original-partition']).toBe(String(original.partition))
      expect(h['detour-original-offset']).toBe(original.message.offset)
      expect(h['detour-original-timestamp']).toBe(original.message.timestamp)
      expect(h['detour-id']).toBe(`${topics.source}/${original.partition}/${original.message.offset}`)
      expect(h['detour-group-key']).toBe(ref.split(':')[0])
      expect(h['detour-consumer-group']).toBe(groupId)
      const failedAt = Date.parse(h['detour-failed-at'] ?? '')
      expect(failedAt).toBeGreaterThanOrEqual(started - 1000)
      expect(failedAt).toBeLessThanOrEqual(Date.now())
      // The original key, value bytes and user headers, unchanged.
      expect(dl!.messageKey?.toString()).toBe(original.message.key?.toString())
      expect(dl!.value?.equals(original.message.value!)).toBe(true)
      expect(h['x-demo-ref']).toBe(ref)
    }
    expect(deadLettersOf(result, 'k1:3')[0]!.headers['detour-component']).toBe('main-app')
    expect(deadLettersOf(result, 'k2:1')[0]!.headers['detour-component']).toBe('main-app')
    const fromWorker = deadLettersOf(result, 'k4:3')[0]!.headers
    expect(fromWorker['detour-component']).toBe('retry-worker')
    expect(fromWorker['detour-attempts']).toBe('1')
    expect(fromWorker['detour-record-topic']).toBe(topics.retry)
    // A dead letter does not block its key: k1 and k2 went on in the main app.
    expect(new Set(redirectedKeys(result))).toEqual(new Set(['k4']))
    const first = firstOutputs(result)
    expect(first.get('k1:4')?.by).toBe('main-0')
    expect(first.get('k2:2')?.by).toBe('main-0')
    expect(first.get('k4:4')?.by).toBe('worker')
  }, 120_000)

  it('exhausts retries under the release policy: dead letter "exhausted", then the group continues', async () => {
    const result = await scenario(broker, {
      name: 'exhausted-release',
      workload: { messages: 200, keys: 10, seed: 5, failureRate: 0, poison: 0, transientRefs: ['k2:3'] },
      handler: { alwaysFailKeys: ['k2'] },
      worker: { exhaustedPolicy: 'release', maxAttempts: 3, initialDelayMs: 100, maxDelayMs: 300 },
      timeoutMs: 60_000,
    })
    expectInvariants(result)
    expect(result.report.exhausted).toEqual(['k2:3'])
    const [dl] = deadLettersOf(result, 'k2:3')
    expect(dl?.headers['detour-reason']).toBe('exhausted')
    expect(dl?.headers['detour-group-policy']).toBe('release')
    expect(dl?.headers['detour-attempts']).toBe('3')
    expect(dl?.headers['detour-component']).toBe('retry-worker')
    expect(dl?.headers['detour-first-error-message']).toMatch(/transient failure of k2:3 in the main app/)
    expect(dl?.headers['detour-error-message']).toBe('key k2 always fails in the worker')
    const first = firstOutputs(result)
    expect(first.has('k2:3')).toBe(false)
    const later = refsOfKey(result, 'k2').slice(3)
    expect(later.length).toBeGreaterThan(5)
    for (const ref of later) expect(first.has(ref), ref).toBe(true)
  }, 120_000)

  it('holds a group after exhaustion until an operator releases it (CLI and HTTP), then the group continues', async () => {
    const held: Array<{ id: string; groupKey: string; attempts: number }> = []
    const result = await scenario(broker, {
      name: 'exhausted-hold',
      workload: { messages: 200, keys: 10, seed: 5, failureRate: 0, poison: 0, transientRefs: ['k2:3', 'k5:2'] },
      handler: { alwaysFailKeys: ['k2', 'k5'] },
      worker: { exhaustedPolicy: 'hold', maxAttempts: 3, initialDelayMs: 100, maxDelayMs: 300 },
      timeoutMs: 90_000,
      during: async ({ system, observations, waitUntil, produced }) => {
        await produced
        await waitUntil(() => observations.isDeadLettered('k2:3') && observations.isDeadLettered('k5:2'), 'both exhausted messages in the error topic', 30_000)
        const deadline = Date.now() + 10_000
        while ((await system.heldGroups()).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
        held.push(...(await system.heldGroups()))
        expect(held.map((g) => g.groupKey).sort()).toEqual(['k2', 'k5'])
        for (const group of held) expect(group.attempts).toBe(3)
        // Held: the later messages of k2 and k5 wait, and their ids stay pending.
        await new Promise((r) => setTimeout(r, 1500))
        expect(observations.isProcessed('k2:4')).toBe(false)
        expect(observations.isProcessed('k5:3')).toBe(false)
        expect(observations.pending).toBeGreaterThanOrEqual(2)
        const k2 = held.find((g) => g.groupKey === 'k2')!
        const k5 = held.find((g) => g.groupKey === 'k5')!
        const cli = await system.releaseWithCli(k2.id)
        expect(cli.status, cli.stderr).toBe(0)
        expect(JSON.parse(cli.stdout)).toMatchObject({ released: true, group: { id: k2.id, groupKey: 'k2' } })
        const http = await system.releaseWithHttp(k5.id)
        expect(http).toMatchObject({ status: 200, body: { released: true } })
        expect(await system.releaseWithHttp(k5.id)).toMatchObject({ status: 404 })
        expect(await system.heldGroups()).toEqual([])
      },
    })
    expectInvariants(result)
    expect(held).toHaveLength(2)
    expect([...result.report.exhausted].sort()).toEqual(['k2:3', 'k5:2'])
    for (const ref of ['k2:3', 'k5:2']) expect(deadLettersOf(result, ref)[0]?.headers['detour-group-policy']).toBe('hold')
    const first = firstOutputs(result)
    for (const ref of [...refsOfKey(result, 'k2').slice(3), ...refsOfKey(result, 'k5').slice(2)]) expect(first.has(ref), ref).toBe(true)
  }, 150_000)
})

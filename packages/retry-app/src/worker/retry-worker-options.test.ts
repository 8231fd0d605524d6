import { describe, expect, it } from 'vitest'
import { Kafka } from 'kafkajs'
import { Registry } from 'prom-client'
import { DetourConfigError, KafkaTopicAdmin } from '@detour/core'
import { createRetryWorker } from './retry-worker.js'
import { defaultOptions, resolveOptions, type RetryWorkerOptions } from './retry-worker-options.js'

const kafka = new Kafka({ clientId: 'options-test', brokers: ['127.0.0.1:1'] })
const base: RetryWorkerOptions = { kafka, groupId: 'orders-app', topics: ['orders'], handler: async () => {} }

describe('retry worker options', () => {
  it('applies the documented defaults', () => {
    const o = resolveOptions(base)
    expect(o).toMatchObject({
      groupId: 'orders-app',
      workerGroupId: 'orders-app-detour-retry',
      maxAttempts: 10,
      maxRetryDurationMs: 3_600_000,
      exhaustedPolicy: 'hold',
      maxInFlight: 64,
      maxBufferedMessages: 10_000,
      commitIntervalMs: 500,
      shutdownTimeoutMs: 10_000,
      handlerTimeoutMs: 30_000,
      purgeResolvedRecords: true,
      purgeIntervalMs: 60_000,
      createTopics: true,
      checkTopicSettings: true,
      consumerConfig: { maxWaitTimeInMs: 500 },
      followerConfig: { maxWaitTimeInMs: 500 },
      deprecations: [],
    })
    expect(o.topicAdmin).toBeInstanceOf(KafkaTopicAdmin)
    expect(o.registry).toBeInstanceOf(Registry)
    expect([...o.topicsByRetryTopic.entries()]).toEqual([
      ['orders-orders-app-retry', { source: 'orders', retry: 'orders-orders-app-retry', redirect: 'orders-orders-app-redirect', error: 'orders-orders-app-dlt' }],
    ])
    // Exponential backoff with jitter by default: 1 s ± 20% after the first failure.
    const first = o.backoff(1)
    expect(first).toBeGreaterThanOrEqual(800)
    expect(first).toBeLessThanOrEqual(1200)
    expect(defaultOptions.exhaustedPolicy).toBe('hold')
  })

  it('treats undefined options as absent and never uses the global registry', () => {
    const worker = createRetryWorker({ ...base, maxAttempts: undefined, registry: undefined })
    expect(worker.options.maxAttempts).toBe(10)
    expect(worker.registry.getSingleMetric('detour_retry_retries_attempted_total')).toBeDefined()
    expect(worker.state).toBe('idle')
    expect(worker.ready).toBe(false)
  })

  it('speaks the SDK\'s vocabulary: groupId is the main app\'s group, workerGroupId the worker\'s', () => {
    expect(resolveOptions({ ...base, workerGroupId: 'retries' })).toMatchObject({ groupId: 'orders-app', workerGroupId: 'retries', deprecations: [] })
  })

  it('keeps consumerGroup as a deprecated alias: while it is set, groupId keeps its old meaning (the worker\'s group)', () => {
    const { groupId: _groupId, ...withoutGroupId } = base
    const legacy = resolveOptions({ ...withoutGroupId, consumerGroup: 'orders-app' })
    expect(legacy).toMatchObject({ groupId: 'orders-app', workerGroupId: 'orders-app-detour-retry' })
    expect(legacy.deprecations).toEqual([expect.stringMatching(/consumerGroup is deprecated: set groupId to the main app's group \("orders-app"\)/) as unknown])
    const both = resolveOptions({ ...withoutGroupId, consumerGroup: 'orders-app', groupId: 'old-worker-group' })
    expect(both).toMatchObject({ groupId: 'orders-app', workerGroupId: 'old-worker-group' })
    expect(both.deprecations[0]).toMatch(/workerGroupId to the worker's own group \("old-worker-group"\)/)
    // The topics are named after the main app's group either way.
    expect([...both.topicsByRetryTopic.keys()]).toEqual(['orders-orders-app-retry'])
    expect(() => resolveOptions({ ...withoutGroupId, consumerGroup: 'orders-app', groupId: 'a', workerGroupId: 'b' })).toThrow(/cannot be combined/)
    expect(() => resolveOptions({ ...withoutGroupId, consumerGroup: 'orders-app', groupId: 'orders-app' })).toThrow(/must differ from consumerGroup/)
  })

  it('accepts completedIdCacheSize as a deprecated no-op, and warns once', () => {
    const warnings: string[] = []
    const logger = { debug() {}, info() {}, error() {}, warn: (message: string) => void warnings.push(message) }
    expect(resolveOptions({ ...base, completedIdCacheSize: 5 }).deprecations).toEqual([expect.stringMatching(/completedIdCacheSize is deprecated and has no effect/) as unknown])
    createRetryWorker({ ...base, completedIdCacheSize: 5, logger })
    expect(warnings.filter((w) => w.includes('completedIdCacheSize'))).toHaveLength(1)
  })

  it('resolves handOffBackoff specs like backoff', () => {
    expect(resolveOptions({ ...base, handOffBackoff: { type: 'constant', delayMs: 7 } }).handOffBackoff(3)).toBe(7)
    expect(() => resolveOptions({ ...base, handOffBackoff: { type: 'exponential', multiplier: 0.5 } })).toThrow(/handOffBackoff.multiplier/)
  })

  it('resolves backoff specs and custom functions', () => {
    expect(resolveOptions({ ...base, backoff: { type: 'constant', delayMs: 250 } }).backoff(7)).toBe(250)
    const exp = resolveOptions({ ...base, backoff: { type: 'exponential', initialDelayMs: 100, multiplier: 3, maxDelayMs: 1000, jitter: 0 } }).backoff
    expect([1, 2, 3, 4].map(exp)).toEqual([100, 300, 900, 1000])
    const custom = resolveOptions({ ...base, backoff: (n) => (n === 1 ? -5 : n === 2 ? Number.NaN : 1e12) }).backoff
    expect([1, 2, 3].map(custom)).toEqual([0, 0, 2_147_483_647])
  })

  it.each([
    [{ groupId: '' }, /groupId/],
    [{ groupId: undefined }, /groupId.*non-empty/],
    [{ consumerGroup: '' }, /consumerGroup/],
    [{ topics: [] }, /at least one source topic/],
    [{ topics: ['orders', 'orders'] }, /twice/],
    [{ topics: ['orders', 'orders-orders-app-retry'] }, /would be both the source topic/],
    [{ workerGroupId: 'orders-app' }, /must differ from groupId/],
    [{ handlerTimeoutMs: 0 }, /handlerTimeoutMs.*integer >= 1/],
    [{ purgeIntervalMs: -1 }, /purgeIntervalMs/],
    [{ purgeResolvedRecords: 'yes' }, /purgeResolvedRecords/],
    [{ producerConfig: { idempotent: false } }, /idempotent/],
    [{ producerConfig: { maxInFlightRequests: 5 } }, /maxInFlightRequests/],
    [{ producerConfig: { retry: { retries: 0 } } }, /retries.*at least 1/],
    [{ followerConfig: { groupId: 'x' } }, /followerConfig.groupId/],
    [{ handler: 'handler.js' }, /handler/],
    [{ exhaustedPolicy: 'drop' }, /"hold" or "release"/],
    [{ maxAttempts: 0 }, /maxAttempts.*integer >= 1/],
    [{ maxInFlight: 1.5 }, /maxInFlight/],
    [{ commitIntervalMs: 1 }, /commitIntervalMs.*>= 10/],
    [{ backoff: { type: 'exponential', multiplier: 0.5 } }, /backoff.multiplier/],
    [{ backoff: { type: 'linear' } }, /backoff.type/],
    [{ consumerConfig: { groupId: 'x' } }, /workerGroupId option/],
    [{ topics: ['orders', 'payments'], topicNaming: { retry: 'shared-{groupId}-retry' } }, /"shared-orders-app-retry" would be both the retry topic of "orders" and the retry topic of "payments"/],
    [{ topicNaming: { retry: 'shared-retry' } }, /has no \{groupId\}/],
  ] as Array<[Record<string, unknown>, RegExp]>)('rejects %o at construction', (override, message) => {
    const build = (): unknown => createRetryWorker({ ...base, ...override })
    expect(build).toThrow(DetourConfigError)
    expect(build).toThrow(message)
  })

  it('makes stop() before start() a clean no-op, and start() after stop() rejects', async () => {
    const worker = createRetryWorker(base)
    expect(await worker.stop()).toEqual({ clean: true, abandoned: 0 })
    expect(worker.state).toBe('stopped')
    await expect(worker.start()).rejects.toThrow(/stopped; create a new one/)
  })
})

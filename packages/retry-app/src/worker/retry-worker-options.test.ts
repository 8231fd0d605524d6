import { describe, expect, it } from 'vitest'
import { Kafka } from 'kafkajs'
import { Registry } from 'prom-client'
import { DetourConfigError, KafkaTopicAdmin } from '@detour/core'
import { createRetryWorker } from './retry-worker.js'
import { defaultOptions, resolveOptions, type RetryWorkerOptions } from './retry-worker-options.js'

const kafka = new Kafka({ clientId: 'options-test', brokers: ['127.0.0.1:1'] })
const base: RetryWorkerOptions = { kafka, consumerGroup: 'orders-app', topics: ['orders'], handler: async () => {} }

describe('retry worker options', () => {
  it('applies the documented defaults', () => {
    const o = resolveOptions(base)
    expect(o).toMatchObject({
      groupId: 'orders-app-detour-retry',
      maxAttempts: 10,
      maxRetryDurationMs: 3_600_000,
      exhaustedPolicy: 'hold',
      maxInFlight: 64,
      maxBufferedMessages: 10_000,
      completedIdCacheSize: 100_000,
      commitIntervalMs: 500,
      shutdownTimeoutMs: 10_000,
      createTopics: true,
      consumerConfig: { maxWaitTimeInMs: 500 },
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

  it('resolves backoff specs and custom functions', () => {
    expect(resolveOptions({ ...base, backoff: { type: 'constant', delayMs: 250 } }).backoff(7)).toBe(250)
    const exp = resolveOptions({ ...base, backoff: { type: 'exponential', initialDelayMs: 100, multiplier: 3, maxDelayMs: 1000, jitter: 0 } }).backoff
    expect([1, 2, 3, 4].map(exp)).toEqual([100, 300, 900, 1000])
    const custom = resolveOptions({ ...base, backoff: (n) => (n === 1 ? -5 : n === 2 ? Number.NaN : 1e12) }).backoff
    expect([1, 2, 3].map(custom)).toEqual([0, 0, 2_147_483_647])
  })

  it.each([
    [{ consumerGroup: '' }, /consumerGroup/],
    [{ topics: [] }, /at least one source topic/],
    [{ topics: ['orders', 'orders'] }, /twice/],
    [{ topics: ['orders', 'orders-orders-app-retry'] }, /list only source topics/],
    [{ groupId: 'orders-app' }, /must differ from consumerGroup/],
    [{ handler: 'handler.js' }, /handler/],
    [{ exhaustedPolicy: 'drop' }, /"hold" or "release"/],
    [{ maxAttempts: 0 }, /maxAttempts.*integer >= 1/],
    [{ maxInFlight: 1.5 }, /maxInFlight/],
    [{ commitIntervalMs: 1 }, /commitIntervalMs.*>= 10/],
    [{ backoff: { type: 'exponential', multiplier: 0.5 } }, /backoff.multiplier/],
    [{ backoff: { type: 'linear' } }, /backoff.type/],
    [{ consumerConfig: { groupId: 'x' } }, /groupId option/],
    [{ topics: ['orders', 'payments'], topicNaming: { retry: 'shared-retry' } }, /two source topics map to the retry topic "shared-retry"/],
  ] as Array<[Record<string, unknown>, RegExp]>)('rejects %o at construction', (override, message) => {
    const build = (): unknown => createRetryWorker({ ...base, ...override })
    expect(build).toThrow(DetourConfigError)
    expect(build).toThrow(message)
  })

  it('rejects a second start and makes stop() before start() a clean no-op', async () => {
    const worker = createRetryWorker(base)
    expect(await worker.stop()).toEqual({ clean: true, abandoned: 0 })
    await expect(worker.start()).rejects.toThrow(/start\(\) can be called once/)
  })
})

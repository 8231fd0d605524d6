import { Counter, Gauge, Histogram, Registry, register as globalRegister } from 'prom-client'
import { afterEach, describe, expect, it } from 'vitest'
import { METRIC_PREFIX, counter, gauge, histogram } from './registry-helpers.js'

const globalNames = (): string[] => globalRegister.getMetricsAsArray().map((m) => m.name)

describe('registry helpers', () => {
  const before = globalNames()

  afterEach(() => {
    // Never touches prom-client's global register.
    expect(globalNames()).toEqual(before)
  })

  it('uses the detour_ prefix', () => {
    expect(METRIC_PREFIX).toBe('detour_')
  })

  it('registers a counter in the given registry and reuses it on the second call', async () => {
    const registry = new Registry()
    const name = `${METRIC_PREFIX}redirects_total`
    const first = counter(registry, { name, help: 'Redirected messages', labelNames: ['reason'] as const })
    expect(first).toBeInstanceOf(Counter)
    const second = counter(registry, { name, help: 'Redirected messages', labelNames: ['reason'] as const })
    expect(second).toBe(first)
    first.inc({ reason: 'failure' })
    second.inc({ reason: 'failure' }, 2)
    expect((await registry.getSingleMetric(name)!.get()).values).toEqual([{ value: 3, labels: { reason: 'failure' } }])
    expect(registry.getMetricsAsArray()).toHaveLength(1)
    expect(globalRegister.getSingleMetric(name)).toBeUndefined()
  })

  it('reuses gauges and histograms too', async () => {
    const registry = new Registry()
    const g1 = gauge(registry, { name: 'detour_pending_ids', help: 'Pending ids' })
    const g2 = gauge(registry, { name: 'detour_pending_ids', help: 'Pending ids' })
    expect(g1).toBeInstanceOf(Gauge)
    expect(g2).toBe(g1)
    g2.set(7)
    expect((await g1.get()).values[0]!.value).toBe(7)

    const h1 = histogram(registry, { name: 'detour_handler_duration_seconds', help: 'Handler time', buckets: [0.1, 1] })
    const h2 = histogram(registry, { name: 'detour_handler_duration_seconds', help: 'Handler time', buckets: [0.1, 1] })
    expect(h1).toBeInstanceOf(Histogram)
    expect(h2).toBe(h1)
    expect(registry.getMetricsAsArray().map((m) => m.name).sort()).toEqual(['detour_handler_duration_seconds', 'detour_pending_ids'])
  })

  it('keeps separate registries separate', () => {
    const a = new Registry()
    const b = new Registry()
    const inA = counter(a, { name: 'detour_x_total', help: 'x' })
    const inB = counter(b, { name: 'detour_x_total', help: 'x' })
    expect(inB).not.toBe(inA)
    expect(a.getSingleMetric('detour_x_total')).toBe(inA)
    expect(b.getSingleMetric('detour_x_total')).toBe(inB)
  })

  it('would throw without the reuse (what the helper protects against)', () => {
    const registry = new Registry()
    counter(registry, { name: 'detour_dup_total', help: 'x' })
    expect(() => new Counter({ name: 'detour_dup_total', help: 'x', registers: [registry] })).toThrow(/already been registered/)
  })
})

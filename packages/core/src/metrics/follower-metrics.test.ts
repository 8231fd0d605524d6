import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { createFollowerMetrics } from './follower-metrics.js'

async function values(registry: Registry): Promise<Record<string, { labels: Record<string, string | number>; value: number }[]>> {
  const metrics = await registry.getMetricsAsJSON()
  return Object.fromEntries(metrics.map((m) => [m.name, (m.values as { labels: Record<string, string | number>; value: number }[]).map(({ labels, value }) => ({ labels, value }))]))
}

describe('createFollowerMetrics', () => {
  it('counts applied records by kind, unknown tombstones, malformed and foreign records per source topic', async () => {
    const registry = new Registry()
    const metrics = createFollowerMetrics(registry)
    metrics.applied('orders', 'pending', 5)
    metrics.applied('orders', 'released', 2)
    metrics.applied('orders', 'pending', 1)
    metrics.unknownTombstones('payments', 3)
    metrics.malformed('orders')
    metrics.malformed('orders')
    metrics.foreign('payments')
    expect(await values(registry)).toEqual({
      detour_redirect_records_applied_total: [
        { labels: { topic: 'orders', kind: 'pending' }, value: 6 },
        { labels: { topic: 'orders', kind: 'released' }, value: 2 },
      ],
      detour_unknown_tombstones_total: [{ labels: { topic: 'payments' }, value: 3 }],
      detour_malformed_redirect_records_total: [{ labels: { topic: 'orders' }, value: 2 }],
      detour_foreign_redirect_records_total: [{ labels: { topic: 'payments' }, value: 1 }],
    })
  })

  it('shares the counters of a registry between two followers (the main app and a restarted one)', async () => {
    const registry = new Registry()
    const first = createFollowerMetrics(registry)
    const second = createFollowerMetrics(registry)
    first.foreign('orders')
    second.foreign('orders')
    expect((await values(registry)).detour_foreign_redirect_records_total).toEqual([{ labels: { topic: 'orders' }, value: 2 }])
    expect(registry.getMetricsAsArray()).toHaveLength(4)
  })
})

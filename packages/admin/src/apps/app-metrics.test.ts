import { describe, expect, it } from 'vitest'
import { appStatusFrom, fetchAppStatus, parsePrometheusText } from './app-metrics.js'

const TEXT = `# HELP detour_ready 1 when every assigned partition is claimed and rebuilt
# TYPE detour_ready gauge
detour_ready 1
# TYPE detour_pending_ids gauge
detour_pending_ids 7
# TYPE detour_rebuild_duration_seconds histogram
detour_rebuild_duration_seconds_bucket{le="0.1"} 1
detour_rebuild_duration_seconds_bucket{le="0.5"} 2
detour_rebuild_duration_seconds_bucket{le="1"} 3
detour_rebuild_duration_seconds_bucket{le="+Inf"} 3
detour_rebuild_duration_seconds_sum 1.2
detour_rebuild_duration_seconds_count 3
detour_messages_redirected_total{topic="orders",reason="failure \\"x\\""} 4
`

describe('app metrics', () => {
  it('parses the Prometheus text format with labels and escapes', () => {
    const samples = parsePrometheusText(TEXT)
    expect(samples.find((s) => s.name === 'detour_messages_redirected_total')).toEqual({ name: 'detour_messages_redirected_total', labels: { topic: 'orders', reason: 'failure "x"' }, value: 4 })
    expect(samples.find((s) => s.labels.le === '+Inf')?.value).toBe(3)
  })

  it('reads readiness, pending ids and rebuild durations', () => {
    expect(appStatusFrom('http://app/metrics', TEXT)).toEqual({
      url: 'http://app/metrics',
      reachable: true,
      ready: true,
      pendingIds: 7,
      rebuild: { count: 3, meanSeconds: expect.closeTo(0.4, 9), maxBucketSeconds: 1 },
    })
    expect(appStatusFrom('u', 'detour_ready 0\n')).toMatchObject({ ready: false, pendingIds: undefined, rebuild: undefined })
    expect(appStatusFrom('u', 'other 1\n').ready).toBeUndefined()
  })

  it('reports an unreachable or failing app instead of throwing', async () => {
    const down = (async () => Promise.reject(new Error('ECONNREFUSED'))) as unknown as typeof fetch
    expect(await fetchAppStatus('http://app/metrics', { fetch: down })).toMatchObject({ reachable: false, error: 'ECONNREFUSED' })
    const failing = (async () => new Response('no', { status: 503 })) as unknown as typeof fetch
    expect(await fetchAppStatus('http://app/metrics', { fetch: failing })).toMatchObject({ reachable: false, error: 'answered 503' })
  })
})

import { afterEach, describe, expect, it } from 'vitest'
import { Registry } from 'prom-client'
import { counter } from '@detour/core'
import type { HeldGroup, ReleaseResult, WorkerState } from '../worker/types.js'
import { startHttpServer, type HttpWorker, type RunningHttpServer } from './http-server.js'

class FakeWorker implements HttpWorker {
  state: WorkerState = 'starting'
  ready = false
  held: HeldGroup[] = []
  releases: string[] = []
  heldGroups(): HeldGroup[] {
    return this.held
  }
  async releaseHeld(id: string): Promise<ReleaseResult> {
    this.releases.push(id)
    if (this.state !== 'running') return { released: false, reason: 'not-running' }
    const group = this.held.find((g) => g.id === id)
    return group ? { released: true, group } : { released: false, reason: 'not-found' }
  }
}

const group: HeldGroup = {
  id: 'orders/0/7',
  topic: 'orders',
  partition: 0,
  groupKey: 'customer-1',
  retryTopic: 'orders-app-retry',
  retryPartition: 0,
  retryOffset: '3',
  attempts: 10,
  since: '2024-01-01T00:00:00.000Z',
  lastError: 'timeout',
}

describe('HTTP server', () => {
  let http: RunningHttpServer | undefined
  afterEach(async () => {
    await http?.close()
  })

  it('serves metrics, health, readiness and held groups', async () => {
    const registry = new Registry()
    counter(registry, { name: 'detour_retry_test_total', help: 'test' }).inc(3)
    const worker = new FakeWorker()
    http = await startHttpServer({ port: 0, host: '127.0.0.1', registry, worker })
    expect(http.url).toBe(`http://127.0.0.1:${http.port}`)

    const metrics = await fetch(`${http.url}/metrics`)
    expect(metrics.headers.get('content-type')).toBe(registry.contentType)
    expect(await metrics.text()).toMatch(/^detour_retry_test_total 3$/m)

    expect((await fetch(`${http.url}/healthz`)).status).toBe(200)
    expect((await fetch(`${http.url}/readyz`)).status).toBe(503)
    worker.state = 'running'
    worker.ready = true
    expect(await (await fetch(`${http.url}/readyz`)).json()).toEqual({ ready: true, state: 'running' })
    worker.state = 'failed'
    worker.ready = false
    expect((await fetch(`${http.url}/healthz`)).status).toBe(503)
    expect((await fetch(`${http.url}/readyz`)).status).toBe(503)

    worker.held = [group]
    expect(await (await fetch(`${http.url}/groups/held`)).json()).toEqual([group])
  })

  it('validates release requests and maps results to status codes', async () => {
    const worker = new FakeWorker()
    worker.held = [group]
    http = await startHttpServer({ port: 0, host: '127.0.0.1', registry: new Registry(), worker })
    const post = (body: string): Promise<Response> => fetch(`${http!.url}/groups/release`, { method: 'POST', body })

    expect((await post(JSON.stringify({ id: group.id }))).status).toBe(503)
    worker.state = 'running'
    const ok = await post(JSON.stringify({ id: group.id }))
    expect(ok.status).toBe(200)
    expect(await ok.json()).toEqual({ released: true, group })
    expect((await post(JSON.stringify({ id: 'orders/0/8' }))).status).toBe(404)
    expect((await post('{')).status).toBe(400)
    expect((await post(JSON.stringify({ id: 42 }))).status).toBe(400)
    expect((await post('x'.repeat(70_000))).status).toBe(413)
    expect(worker.releases).toEqual([group.id, group.id, 'orders/0/8'])

    expect((await fetch(`${http.url}/groups/release`)).status).toBe(405)
    expect((await fetch(`${http.url}/metrics`, { method: 'DELETE' })).status).toBe(405)
    expect((await fetch(`${http.url}/nope`)).status).toBe(404)
  })

  it('fails to start on a port in use, and close() is idempotent', async () => {
    const worker = new FakeWorker()
    http = await startHttpServer({ port: 0, host: '127.0.0.1', registry: new Registry(), worker })
    await expect(startHttpServer({ port: http.port, host: '127.0.0.1', registry: new Registry(), worker })).rejects.toThrow(/EADDRINUSE/)
    await Promise.all([http.close(), http.close()])
  })
})

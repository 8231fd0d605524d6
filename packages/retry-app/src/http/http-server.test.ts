import { request as httpRequest } from 'node:http'
import { networkInterfaces } from 'node:os'
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
    const post = (body: string): Promise<Response> =>
      fetch(`${http!.url}/groups/release`, { method: 'POST', headers: { 'content-type': 'application/json; charset=utf-8' }, body })

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

  it('answers 415 to a release without content-type: application/json (no state change)', async () => {
    const worker = new FakeWorker()
    worker.state = 'running'
    worker.held = [group]
    http = await startHttpServer({ port: 0, host: '127.0.0.1', registry: new Registry(), worker })
    const variants: Array<Record<string, string>> = [{}, { 'content-type': 'text/plain' }, { 'content-type': 'application/x-www-form-urlencoded' }]
    for (const headers of variants) {
      const response = await fetch(`${http.url}/groups/release`, { method: 'POST', headers, body: JSON.stringify({ id: group.id }) })
      expect(response.status).toBe(415)
      expect(await response.json()).toMatchObject({ error: expect.stringMatching(/application\/json/) as unknown })
    }
    expect(worker.releases).toEqual([])
  })

  it('refuses admin routes from a loopback peer that names a foreign Host (DNS rebinding), but not the open routes', async () => {
    const worker = new FakeWorker()
    worker.state = 'running'
    worker.held = [group]
    http = await startHttpServer({ port: 0, host: '127.0.0.1', registry: new Registry(), worker })
    const evil = await raw(http.port, '127.0.0.1', { method: 'GET', path: '/groups/held', headers: { host: `attacker.example:${http.port}` } })
    expect(evil.status).toBe(403)
    expect(JSON.parse(evil.body)).toMatchObject({ error: expect.stringMatching(/loopback Host header/) as unknown })
    const release = await raw(http.port, '127.0.0.1', {
      method: 'POST',
      path: '/groups/release',
      headers: { host: 'attacker.example', 'content-type': 'application/json' },
      body: JSON.stringify({ id: group.id }),
    })
    expect(release.status).toBe(403)
    expect(worker.releases).toEqual([])
    for (const host of [`localhost:${http.port}`, `127.0.0.1:${http.port}`, 'localhost', '127.0.0.2']) {
      expect((await raw(http.port, '127.0.0.1', { method: 'GET', path: '/groups/held', headers: { host } })).status).toBe(200)
    }
    expect((await raw(http.port, '127.0.0.1', { method: 'GET', path: '/metrics', headers: { host: 'attacker.example' } })).status).toBe(200)
    expect((await raw(http.port, '127.0.0.1', { method: 'GET', path: '/readyz', headers: { host: 'attacker.example' } })).status).toBe(503)
  })

  const external = Object.values(networkInterfaces())
    .flat()
    .find((address) => address !== undefined && !address.internal && address.family === 'IPv4')?.address

  it.skipIf(external === undefined)('from a non-loopback peer: 401 without a token, 403 with a wrong one, 200 with the right one (bearer)', async () => {
    const worker = new FakeWorker()
    worker.state = 'running'
    worker.held = [group]
    const token = 's3cret-admin-token'
    http = await startHttpServer({ port: 0, host: '0.0.0.0', registry: new Registry(), worker, adminToken: token })
    const base = `http://${external!}:${http.port}`
    const anonymous = await fetch(`${base}/groups/held`)
    expect(anonymous.status).toBe(401)
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer/)
    expect(await anonymous.json()).toMatchObject({ error: expect.stringMatching(/Authorization: Bearer/) as unknown })
    const wrong = await fetch(`${base}/groups/held`, { headers: { authorization: 'Bearer nope' } })
    expect(wrong.status).toBe(403)
    expect(await wrong.json()).toEqual({ error: 'invalid admin token' })
    expect((await fetch(`${base}/groups/held`, { headers: { authorization: `Basic ${token}` } })).status).toBe(403)
    const held = await fetch(`${base}/groups/held`, { headers: { authorization: `Bearer ${token}` } })
    expect(held.status).toBe(200)
    expect(await held.json()).toEqual([group])
    const released = await fetch(`${base}/groups/release`, {
      method: 'POST',
      headers: { authorization: `bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id: group.id }),
    })
    expect(released.status).toBe(200)
    const refused = await fetch(`${base}/groups/release`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: group.id }) })
    expect(refused.status).toBe(401)
    expect(worker.releases).toEqual([group.id])
    // The open routes need nothing.
    expect((await fetch(`${base}/metrics`)).status).toBe(200)
    expect((await fetch(`${base}/healthz`)).status).toBe(200)
  })

  it.skipIf(external === undefined)('from a non-loopback peer without a configured token: 401, and a bearer does not help', async () => {
    const worker = new FakeWorker()
    http = await startHttpServer({ port: 0, host: '0.0.0.0', registry: new Registry(), worker })
    const base = `http://${external!}:${http.port}`
    const anonymous = await fetch(`${base}/groups/held`)
    expect(anonymous.status).toBe(401)
    expect(await anonymous.json()).toMatchObject({ error: expect.stringMatching(/loopback-only/) as unknown })
    const guessed = await fetch(`${base}/groups/held`, { headers: { authorization: 'Bearer anything' } })
    expect(guessed.status).toBe(403)
    expect(await guessed.json()).toMatchObject({ error: expect.stringMatching(/no admin token is configured/) as unknown })
  })

  it('rejects an empty admin token at start', async () => {
    await expect(startHttpServer({ port: 0, host: '127.0.0.1', registry: new Registry(), worker: new FakeWorker(), adminToken: ' ' })).rejects.toThrow(/adminToken/)
  })

  it('fails to start on a port in use, and close() is idempotent', async () => {
    const worker = new FakeWorker()
    http = await startHttpServer({ port: 0, host: '127.0.0.1', registry: new Registry(), worker })
    await expect(startHttpServer({ port: http.port, host: '127.0.0.1', registry: new Registry(), worker })).rejects.toThrow(/EADDRINUSE/)
    await Promise.all([http.close(), http.close()])
  })
})

/** A request with exactly these headers (fetch would set Host itself). */
function raw(
  port: number,
  address: string,
  options: { method: string; path: string; headers: Record<string, string>; body?: string },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest({ host: address, port, method: options.method, path: options.path, headers: options.headers }, (response) => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => (body += chunk))
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }))
    })
    request.on('error', reject)
    request.end(options.body)
  })
}

import { request } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { AdminService } from '../service/admin-service.js'
import { scenario, T0 } from '../test-support/scenario.js'
import { startConsoleServer, type RunningConsole } from './console-server.js'

const TOKEN = 'console-token-0123456789'

function call(
  console: RunningConsole,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string; json: () => unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: console.port, path, method: options.method ?? 'GET', headers: { host: `127.0.0.1:${console.port}`, ...options.headers } }, (res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => (text += chunk.toString()))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) as unknown }))
    })
    req.on('error', reject)
    req.end(options.body)
  })
}

const running: RunningConsole[] = []
afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.close()))
})

async function consoleFor(options: { token?: string; host?: string } = {}) {
  const s = scenario()
  s.redirect(0, 4, 'customer-1', { withoutRetry: true, at: T0 - 300_000 })
  s.deadLetter(0, 2, 'customer-1')
  const service = new AdminService({ scope: s.scope, log: s.kafka, writer: s.kafka, clientId: 'test', now: () => T0 + 1000 })
  const started = await startConsoleServer({ service, port: 0, ...options })
  running.push(started)
  return { s, console: started }
}

describe('console server', () => {
  it('serves the page and the API on loopback without a token, with security headers', async () => {
    const { console } = await consoleFor()
    expect(console.url).toBe(`http://127.0.0.1:${console.port}/`)
    const page = await call(console, '/')
    expect(page.status).toBe(200)
    expect(page.text).toContain('<script type="module" src="/app.js"></script>')
    expect(page.headers['content-security-policy']).toContain("script-src 'self'")
    expect(page.headers['x-frame-options']).toBe('DENY')
    const pending = await call(console, '/api/pending')
    expect(pending.status).toBe(200)
    expect(pending.json()).toMatchObject({ consumerGroup: 'orders-app', pendingIds: 1 })
    const dlt = await call(console, '/api/dlt?reason=exhausted')
    expect(dlt.json()).toMatchObject({ matched: 1, deadLetters: [{ id: 'orders/0/2', keyDisplay: 'customer-1', value: null }] })
    const record = await call(console, `/api/dlt/record?coordinates=${encodeURIComponent('orders-orders-app-dlt/0/0')}`)
    expect(record.json()).toMatchObject({ value: { encoding: 'utf8', data: 'value-2' } })
    expect((await call(console, '/api/dlt/record?coordinates=0:9')).status).toBe(404)
    expect((await call(console, '/api/nope')).status).toBe(404)
  })

  it('refuses cross-site and non-JSON POSTs, and foreign Host headers on loopback (DNS rebinding)', async () => {
    const { s, console } = await consoleFor()
    const body = JSON.stringify({ id: 'orders/0/4', mode: 'direct', dryRun: false })
    const form = await call(console, '/api/release', { method: 'POST', headers: { 'content-type': 'text/plain' }, body })
    expect(form.status).toBe(403)
    const crossOrigin = await call(console, '/api/release', { method: 'POST', headers: { 'content-type': 'application/json', origin: 'http://evil.example' }, body })
    expect(crossOrigin.status).toBe(403)
    const crossSite = await call(console, '/api/release', { method: 'POST', headers: { 'content-type': 'application/json', 'sec-fetch-site': 'cross-site' }, body })
    expect(crossSite.status).toBe(403)
    const rebinding = await call(console, '/api/pending', { headers: { host: 'evil.example' } })
    expect(rebinding.status).toBe(421)
    expect(s.kafka.records(s.topics.redirect, 0)).toHaveLength(1)
    const sameOrigin = await call(console, '/api/release', {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: `http://127.0.0.1:${console.port}`, 'sec-fetch-site': 'same-origin' },
      body,
    })
    expect(sameOrigin.status).toBe(200)
    expect(sameOrigin.json()).toMatchObject({ dryRun: false, result: { id: 'orders/0/4', verified: true } })
    expect(s.kafka.records(s.topics.redirect, 0)).toHaveLength(2)
  })

  it('needs a token to bind anything but loopback, and then on every request (bearer or login cookie)', async () => {
    const s = scenario()
    const service = new AdminService({ scope: s.scope, log: s.kafka, writer: s.kafka, clientId: 'test' })
    await expect(startConsoleServer({ service, host: '0.0.0.0', port: 0 })).rejects.toThrow(/set --console-token/)
    await expect(startConsoleServer({ service, port: 0, token: 'short' })).rejects.toThrow(/at least 16/)
    const { console } = await consoleFor({ host: '0.0.0.0', token: TOKEN })
    expect((await call(console, '/api/pending')).status).toBe(401)
    expect((await call(console, '/')).headers.location).toBe('/login')
    expect((await call(console, '/style.css')).status).toBe(200)
    expect((await call(console, '/api/pending', { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200)
    expect((await call(console, '/api/pending', { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status).toBe(401)
    const wrong = await call(console, '/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'token=nope' })
    expect(wrong.status).toBe(401)
    const login = await call(console, '/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${TOKEN}` })
    expect(login.status).toBe(303)
    const cookie = String(login.headers['set-cookie']).split(';')[0]!
    expect(String(login.headers['set-cookie'])).toMatch(/HttpOnly; SameSite=Strict/)
    expect(cookie).not.toContain(TOKEN)
    const page = await call(console, '/', { headers: { cookie } })
    expect(page.status).toBe(200)
    // Bound to every interface, any Host header is fine: the token protects it.
    expect((await call(console, '/api/config', { headers: { cookie, host: 'ops.example:9470' } })).status).toBe(200)
  })
})

import { describe, expect, it } from 'vitest'
import { WorkerClient } from './worker-client.js'

const group = { id: 'orders/0/1', topic: 'orders', partition: 0, groupKey: 'k', retryTopic: 'r', retryPartition: 0, retryOffset: '4', attempts: 5, since: 'now', lastError: 'boom' }

function stub(status: number, body: unknown) {
  const calls: Array<{ url: string; init: RequestInit }> = []
  const fetch = (async (url: URL, init: RequestInit) => {
    calls.push({ url: String(url), init })
    return new Response(typeof body === 'string' ? body : JSON.stringify(body), { status })
  }) as unknown as typeof globalThis.fetch
  return { calls, fetch }
}

describe('WorkerClient', () => {
  it('lists held groups and releases one with a JSON body and the bearer token', async () => {
    const held = stub(200, [group])
    expect(await new WorkerClient({ url: 'http://w:9464', token: 's3cret', fetch: held.fetch }).held()).toEqual([group])
    expect(held.calls[0]!.url).toBe('http://w:9464/groups/held')
    expect(new Headers(held.calls[0]!.init.headers).get('authorization')).toBe('Bearer s3cret')
    const release = stub(200, { released: true, group })
    expect(await new WorkerClient({ url: 'http://w:9464/', fetch: release.fetch }).release('orders/0/1')).toEqual(group)
    const call = release.calls[0]!
    expect(call.url).toBe('http://w:9464/groups/release')
    expect(call.init.method).toBe('POST')
    expect(new Headers(call.init.headers).get('content-type')).toBe('application/json')
    expect(new Headers(call.init.headers).get('authorization')).toBeNull()
    expect(call.init.body).toBe('{"id":"orders/0/1"}')
  })

  it('maps answers to errors: 404 not found, 401 with a token hint, garbage, unreachable', async () => {
    await expect(new WorkerClient({ url: 'http://w', fetch: stub(404, { error: 'no held group' }).fetch }).release('x/0/1')).rejects.toMatchObject({ code: 'DETOUR_ADMIN_NOT_FOUND' })
    await expect(new WorkerClient({ url: 'http://w', fetch: stub(401, { error: 'unauthorised' }).fetch }).held()).rejects.toThrow(/answered 401: unauthorised \(set --admin-token/)
    await expect(new WorkerClient({ url: 'http://w', fetch: stub(200, { not: 'a list' }).fetch }).held()).rejects.toMatchObject({ code: 'DETOUR_ADMIN_WORKER' })
    const down = (async () => Promise.reject(new TypeError('fetch failed'))) as unknown as typeof fetch
    await expect(new WorkerClient({ url: 'http://w', fetch: down }).held()).rejects.toThrow(/Cannot reach the worker at http:\/\/w: fetch failed/)
  })
})

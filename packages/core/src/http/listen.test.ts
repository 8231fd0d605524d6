import { createServer, request } from 'node:http'
import { describe, expect, it } from 'vitest'
import { listenHttp } from './listen.js'

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: undefined, headers: { connection: 'keep-alive' } }, (response) => {
      let body = ''
      response.on('data', (chunk: Buffer) => (body += chunk.toString()))
      response.on('end', () => resolve(body))
    })
    req.on('error', reject)
    req.end()
  })
}

describe('listenHttp', () => {
  it('listens on a port the system picks, gives a fetchable loopback URL for an all-interfaces host, and closes idempotently', async () => {
    const server = createServer((_, response) => response.end('ok'))
    const listening = await listenHttp(server, 0, '0.0.0.0')
    expect(listening.port).toBeGreaterThan(0)
    expect(listening.url).toBe(`http://127.0.0.1:${listening.port}`)
    expect(await get(listening.url)).toBe('ok')
    const first = listening.close()
    expect(listening.close()).toBe(first)
    await first
    expect(server.listening).toBe(false)
  })

  it('brackets an IPv6 host in the URL', async () => {
    const listening = await listenHttp(createServer(), 0, '::1').catch(() => undefined)
    if (listening === undefined) return // no IPv6 loopback on this machine
    expect(listening.url).toBe(`http://[::1]:${listening.port}`)
    await listening.close()
  })

  it('rejects with the bind error when the port is taken', async () => {
    const first = await listenHttp(createServer(), 0, '127.0.0.1')
    await expect(listenHttp(createServer(), first.port, '127.0.0.1')).rejects.toMatchObject({ code: 'EADDRINUSE' })
    await first.close()
  })
})

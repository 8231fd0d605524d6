import type { IncomingMessage } from 'node:http'
import { describe, expect, it } from 'vitest'
import { authorizeAdmin } from './admin-auth.js'

const request = (remoteAddress: string, headers: Record<string, string>): IncomingMessage =>
  ({ headers, socket: { remoteAddress } }) as unknown as IncomingMessage

describe('authorizeAdmin', () => {
  it('with a token configured, requires it on every request, loopback included (a sidecar or proxy relays from loopback)', () => {
    // Istio relays inbound traffic from 127.0.0.6, Linkerd from 127.0.0.1; port-forward, ssh -L and a local nginx connect from loopback.
    expect(authorizeAdmin(request('127.0.0.6', { host: 'localhost', 'x-forwarded-for': '10.1.2.3' }), 'secret')).toMatchObject({ allowed: false, status: 401 })
    expect(authorizeAdmin(request('127.0.0.1', { host: 'localhost' }), 'secret')).toMatchObject({ allowed: false, status: 401 })
    expect(authorizeAdmin(request('127.0.0.1', { host: 'localhost', authorization: 'Bearer wrong' }), 'secret')).toMatchObject({ allowed: false, status: 403 })
    expect(authorizeAdmin(request('127.0.0.1', { host: 'localhost', authorization: 'Bearer secret' }), 'secret')).toEqual({ allowed: true, via: 'token' })
    expect(authorizeAdmin(request('10.1.2.3', { host: 'worker:9464', authorization: 'bearer secret' }), 'secret')).toEqual({ allowed: true, via: 'token' })
  })

  it('without a token, refuses a loopback peer whose request carries a forwarding header (Forwarded, X-Forwarded-For, X-Real-IP)', () => {
    for (const header of ['forwarded', 'x-forwarded-for', 'x-real-ip']) {
      const decision = authorizeAdmin(request('::ffff:127.0.0.1', { host: '127.0.0.1:9464', [header]: header === 'forwarded' ? 'for=10.1.2.3' : '10.1.2.3' }), undefined)
      expect(decision).toMatchObject({ allowed: false, status: 403 })
    }
  })

  it('without a token, allows a loopback peer naming a loopback host with no forwarding header, and nothing else', () => {
    expect(authorizeAdmin(request('::ffff:127.0.0.1', { host: '127.0.0.1:9464' }), undefined)).toEqual({ allowed: true, via: 'loopback' })
    expect(authorizeAdmin(request('::1', { host: '[::1]:9464' }), undefined)).toEqual({ allowed: true, via: 'loopback' })
    expect(authorizeAdmin(request('127.0.0.1', { host: 'attacker.example' }), undefined)).toMatchObject({ allowed: false, status: 403 })
    expect(authorizeAdmin(request('10.1.2.3', { host: 'localhost' }), undefined)).toMatchObject({ allowed: false, status: 401 })
    expect(authorizeAdmin(request('127.0.0.1', { host: 'localhost', authorization: 'Bearer guess' }), undefined)).toMatchObject({ allowed: false, status: 403 })
  })
})

import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { isIP } from 'node:net'

/** Whether a request may use the admin routes, and if not, the status and message to answer. */
export type AdminDecision = { readonly allowed: true; readonly via: 'loopback' | 'token' } | { readonly allowed: false; readonly status: 401 | 403; readonly error: string }

function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false
  const bare = address.startsWith('::ffff:') ? address.slice(7) : address
  if (isIP(bare) === 4) return bare.startsWith('127.')
  return bare === '::1'
}

/**
 * The `Host` header names a loopback host: `localhost` (or `*.localhost`), `127.x.x.x` or `[::1]`, with
 * an optional port. A browser tricked by DNS rebinding sends the attacker's host name here, so a
 * loopback peer alone is not enough.
 */
function isLoopbackHost(host: string | undefined): boolean {
  if (host === undefined || host.length === 0) return false
  let name = host.toLowerCase()
  if (name.startsWith('[')) {
    const end = name.indexOf(']')
    if (end === -1) return false
    name = name.slice(1, end)
  } else {
    const colon = name.lastIndexOf(':')
    if (colon !== -1) name = name.slice(0, colon)
  }
  return name === 'localhost' || name.endsWith('.localhost') || isLoopbackAddress(name)
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest()
}

/** Compares in constant time (digests of equal length, whatever the inputs' lengths). */
function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected))
}

/** Headers a proxy adds when it relays a request: the peer address is then the proxy's, not the caller's. */
const FORWARDED_HEADERS = ['forwarded', 'x-forwarded-for', 'x-real-ip'] as const

/** The request carries a header that says it was relayed (its real caller is elsewhere). */
function isForwarded(request: IncomingMessage): boolean {
  return FORWARDED_HEADERS.some((name) => request.headers[name] !== undefined)
}

/**
 * The admin routes (`GET /groups/held`, `POST /groups/release`) change or reveal state. They are allowed:
 * - when an admin token is configured: only with `Authorization: Bearer <adminToken>` (compared in constant
 *   time), from loopback too — a same-host proxy, a service-mesh sidecar (Istio relays from 127.0.0.6,
 *   Linkerd from 127.0.0.1), `kubectl port-forward` or `ssh -L` all connect from loopback, so a loopback
 *   peer proves nothing once the port is reachable some other way;
 * - when no token is configured: only from a loopback peer whose `Host` header is loopback too (the
 *   DNS-rebinding guard) and that carries no forwarding header (`Forwarded`, `X-Forwarded-For`,
 *   `X-Real-IP`): a relayed request is not a local one.
 *
 * Otherwise: 401 without credentials, 403 with a wrong token, a relayed request or a loopback peer naming a
 * foreign host.
 */
export function authorizeAdmin(request: IncomingMessage, adminToken: string | undefined): AdminDecision {
  const authorization = request.headers.authorization
  const bearer = authorization !== undefined && /^bearer\s+/i.test(authorization) ? authorization.replace(/^bearer\s+/i, '').trim() : undefined
  if (adminToken !== undefined) {
    if (bearer !== undefined && sameSecret(bearer, adminToken)) return { allowed: true, via: 'token' }
    if (authorization !== undefined) return { allowed: false, status: 403, error: 'invalid admin token' }
    return { allowed: false, status: 401, error: 'admin routes need Authorization: Bearer <admin token> (an admin token is configured on this worker)' }
  }
  if (authorization !== undefined) {
    return {
      allowed: false,
      status: 403,
      error: 'no admin token is configured on this worker (--admin-token / DETOUR_ADMIN_TOKEN): admin routes are loopback-only',
    }
  }
  const loopbackPeer = isLoopbackAddress(request.socket.remoteAddress)
  if (loopbackPeer && isForwarded(request)) {
    return {
      allowed: false,
      status: 403,
      error: 'a relayed request (Forwarded / X-Forwarded-For / X-Real-IP) is not a loopback request: configure an admin token (--admin-token / DETOUR_ADMIN_TOKEN)',
    }
  }
  if (loopbackPeer && isLoopbackHost(request.headers.host)) return { allowed: true, via: 'loopback' }
  if (loopbackPeer) {
    return { allowed: false, status: 403, error: `admin routes need a loopback Host header (got ${JSON.stringify(request.headers.host ?? '')}): use http://127.0.0.1:<port>` }
  }
  return {
    allowed: false,
    status: 401,
    error: "admin routes are loopback-only: call them from the worker's host, or configure an admin token (--admin-token / DETOUR_ADMIN_TOKEN) and send Authorization: Bearer <token>",
  }
}

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

/**
 * The admin routes (`GET /groups/held`, `POST /groups/release`) change or reveal state. They are allowed:
 * - from a loopback peer whose `Host` header is loopback too (the DNS-rebinding guard), or
 * - with `Authorization: Bearer <adminToken>` when an admin token is configured (compared in constant time).
 *
 * Otherwise: 401 without credentials, 403 with a wrong token or a loopback peer naming a foreign host.
 */
export function authorizeAdmin(request: IncomingMessage, adminToken: string | undefined): AdminDecision {
  const authorization = request.headers.authorization
  const bearer = authorization !== undefined && /^bearer\s+/i.test(authorization) ? authorization.replace(/^bearer\s+/i, '').trim() : undefined
  if (adminToken !== undefined && bearer !== undefined && sameSecret(bearer, adminToken)) return { allowed: true, via: 'token' }
  const loopbackPeer = isLoopbackAddress(request.socket.remoteAddress)
  const loopbackHost = isLoopbackHost(request.headers.host)
  if (loopbackPeer && loopbackHost) return { allowed: true, via: 'loopback' }
  if (authorization !== undefined) {
    return {
      allowed: false,
      status: 403,
      error: adminToken === undefined ? 'no admin token is configured on this worker (--admin-token / DETOUR_ADMIN_TOKEN): admin routes are loopback-only' : 'invalid admin token',
    }
  }
  if (loopbackPeer) {
    return { allowed: false, status: 403, error: `admin routes need a loopback Host header (got ${JSON.stringify(request.headers.host ?? '')}): use http://127.0.0.1:<port>` }
  }
  return {
    allowed: false,
    status: 401,
    error:
      adminToken === undefined
        ? 'admin routes are loopback-only: call them from the worker\'s host, or configure an admin token (--admin-token / DETOUR_ADMIN_TOKEN) and send Authorization: Bearer <token>'
        : 'admin routes need Authorization: Bearer <admin token> (or a loopback request)',
  }
}

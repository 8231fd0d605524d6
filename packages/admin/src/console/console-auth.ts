import { createHmac, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { isIP } from 'node:net'

/** The console session cookie's name. */
export const SESSION_COOKIE = 'detour_console'

/** True for addresses only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase()
  if (bare === 'localhost' || bare === '::1') return true
  return isIP(bare) === 4 && bare.startsWith('127.')
}

function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8')
  const right = Buffer.from(b, 'utf8')
  return left.length === right.length && timingSafeEqual(left, right)
}

/** The cookie value that stands for the token: a keyed hash, so the token itself never sits in the browser. */
export function sessionValue(token: string): string {
  return createHmac('sha256', token).update('detour-console-session-v1').digest('base64url')
}

function cookies(request: IncomingMessage): Map<string, string> {
  const out = new Map<string, string>()
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const at = part.indexOf('=')
    if (at > 0) out.set(part.slice(0, at).trim(), part.slice(at + 1).trim())
  }
  return out
}

/**
 * Who may use the console. Without a token (only allowed on loopback) everyone who can reach the port;
 * with one, requests carry `Authorization: Bearer <token>` or the session cookie set by the login form.
 */
export class ConsoleAuth {
  private readonly session: string | undefined

  constructor(readonly token: string | undefined) {
    this.session = token === undefined ? undefined : sessionValue(token)
  }

  get required(): boolean {
    return this.token !== undefined
  }

  /** True when the token given (login form) is the console's token. */
  checkToken(candidate: string): boolean {
    return this.token !== undefined && safeEqual(candidate, this.token)
  }

  authorised(request: IncomingMessage): boolean {
    if (this.token === undefined || this.session === undefined) return true
    const header = request.headers.authorization
    if (header !== undefined && header.startsWith('Bearer ') && safeEqual(header.slice(7).trim(), this.token)) return true
    const cookie = cookies(request).get(SESSION_COOKIE)
    return cookie !== undefined && safeEqual(cookie, this.session)
  }

  /** The `Set-Cookie` value of a session (HttpOnly, SameSite=Strict). */
  cookie(): string {
    return `${SESSION_COOKIE}=${this.session ?? ''}; HttpOnly; SameSite=Strict; Path=/`
  }
}

/**
 * Requests that change state must come from the console's own page: a JSON body (an HTML form cannot send
 * one cross-site without a CORS preflight, which the console never answers), and, when the browser says
 * where the request comes from (`Origin`, `Sec-Fetch-Site`), the console's own origin. Returns why not, or
 * `undefined` when the request is acceptable.
 */
export function sameOriginProblem(request: IncomingMessage, options: { requireJson: boolean }): string | undefined {
  if (options.requireJson) {
    const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase()
    if (type !== 'application/json') return 'POST requests need Content-Type: application/json'
  }
  const site = request.headers['sec-fetch-site']
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `cross-site request refused (Sec-Fetch-Site: ${site})`
  const origin = request.headers.origin
  if (origin !== undefined && origin !== 'null') {
    let host: string
    try {
      host = new URL(origin).host
    } catch {
      return 'malformed Origin header'
    }
    if (host !== request.headers.host) return `cross-origin request refused (Origin ${origin})`
  } else if (origin === 'null') {
    return 'cross-origin request refused (Origin null)'
  }
  return undefined
}

/**
 * On a console bound to loopback, the Host header must name loopback too: a page elsewhere that points its
 * own host name at 127.0.0.1 (DNS rebinding) would otherwise reach the console as same-origin.
 */
export function hostHeaderProblem(request: IncomingMessage, boundToLoopback: boolean): string | undefined {
  if (!boundToLoopback) return undefined
  const host = request.headers.host
  if (host === undefined) return 'no Host header'
  let hostname: string
  try {
    hostname = new URL(`http://${host}`).hostname
  } catch {
    return 'malformed Host header'
  }
  return isLoopbackHost(hostname) ? undefined : `Host ${host} is not this machine's loopback address`
}

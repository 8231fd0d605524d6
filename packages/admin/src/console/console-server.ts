import { readFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { listenHttp, noopLogger, type Logger } from '@detour/core'
import { AdminUsageError } from '../errors/index.js'
import type { AdminService } from '../service/admin-service.js'
import { ConsoleApi, statusOf } from './console-api.js'
import { ConsoleAuth, hostHeaderProblem, isLoopbackHost, sameOriginProblem } from './console-auth.js'

export interface ConsoleServerOptions {
  readonly service: AdminService
  /** Interface to listen on. Anything but loopback needs a token. @defaultValue '127.0.0.1' */
  readonly host?: string
  /** Port; 0 picks a free one. @defaultValue 9470 */
  readonly port?: number
  /** Required on every request when set; required to bind anything but loopback. */
  readonly token?: string
  /** How often the page refreshes the pending view. @defaultValue 5000 */
  readonly refreshMs?: number
  readonly logger?: Logger
  /** The page's files. @defaultValue the package's `console/` folder */
  readonly staticDir?: string
}

export interface RunningConsole {
  readonly server: Server
  readonly host: string
  readonly port: number
  /** `http://host:port/` (loopback when bound to every interface). */
  readonly url: string
  /** Stops listening and closes every connection; idempotent (a bound function). */
  readonly close: () => Promise<void>
}

const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
}

const MAX_BODY_BYTES = 64 * 1024

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
}

/** The package's `console/` folder, from `src/console` (tests) and `dist/console` (installed) alike. */
export function defaultStaticDir(): string {
  return fileURLToPath(new URL('../../console/', import.meta.url))
}

class BodyTooLarge extends Error {}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of request) {
    const buffer = chunk as Buffer
    size += buffer.length
    if (size > MAX_BODY_BYTES) throw new BodyTooLarge(`request body larger than ${MAX_BODY_BYTES} bytes`)
    chunks.push(buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function send(response: ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}): void {
  response.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, ...extra })
  response.end(body)
}

function json(response: ServerResponse, status: number, body: unknown): void {
  send(response, status, 'application/json; charset=utf-8', `${JSON.stringify(body)}\n`)
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

function loginPage(error?: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Detour console: sign in</title><link rel="stylesheet" href="/style.css"></head>
<body class="login"><main><h1>Detour console</h1>
<form method="post" action="/login"><label>Console token <input type="password" name="token" autocomplete="current-password" autofocus required></label>
<button type="submit">Sign in</button></form>${error ? `<p class="error">${escapeHtml(error)}</p>` : ''}</main></body></html>`
}

/**
 * Serves the web console: the page (plain HTML/CSS/JS from the package; nothing from the network) and its
 * JSON API ({@link ConsoleApi}). Bound to loopback by default; bound elsewhere it refuses to start without a
 * token, and with a token every request must carry it (bearer header, or the cookie of the login form).
 * State-changing requests must be same-origin JSON.
 */
export async function startConsoleServer(options: ConsoleServerOptions): Promise<RunningConsole> {
  const host = options.host ?? '127.0.0.1'
  const loopback = isLoopbackHost(host)
  if (!loopback && (options.token === undefined || options.token.length === 0)) {
    throw new AdminUsageError(
      `--host ${host} is reachable from other machines: set --console-token (or DETOUR_CONSOLE_TOKEN) so that every request needs it, or keep the default 127.0.0.1`,
    )
  }
  if (options.token !== undefined && options.token.length < 16) {
    throw new AdminUsageError('--console-token must be at least 16 characters (e.g. openssl rand -hex 24)')
  }
  const logger = options.logger ?? noopLogger
  const auth = new ConsoleAuth(options.token)
  const api = new ConsoleApi(options.service)
  const staticDir = options.staticDir ?? defaultStaticDir()
  const refreshMs = options.refreshMs ?? 5000

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? '/', 'http://console.invalid')
    const path = url.pathname
    const method = request.method ?? 'GET'
    const hostProblem = hostHeaderProblem(request, loopback)
    if (hostProblem !== undefined) {
      json(response, 421, { error: hostProblem })
      return
    }
    if (path === '/login') {
      if (method === 'GET') {
        send(response, 200, 'text/html; charset=utf-8', loginPage())
        return
      }
      if (method === 'POST') {
        const problem = sameOriginProblem(request, { requireJson: false })
        if (problem !== undefined) {
          send(response, 403, 'text/html; charset=utf-8', loginPage(problem))
          return
        }
        const token = new URLSearchParams(await readBody(request)).get('token') ?? ''
        if (!auth.required) {
          send(response, 303, 'text/plain', '', { location: '/' })
          return
        }
        if (!auth.checkToken(token)) {
          logger.warn('Console sign-in refused', { remote: request.socket.remoteAddress })
          send(response, 401, 'text/html; charset=utf-8', loginPage('Wrong token'))
          return
        }
        send(response, 303, 'text/plain', '', { location: '/', 'set-cookie': auth.cookie() })
        return
      }
    }
    const asset = STATIC[path]
    if (asset && path !== '/' && path !== '/index.html' && method === 'GET') {
      // The style sheet and script hold no data: the login page needs the style sheet.
      send(response, 200, asset.type, await readFile(join(staticDir, asset.file)))
      return
    }
    if (!auth.authorised(request)) {
      if (path.startsWith('/api/')) json(response, 401, { error: 'sign in: Authorization: Bearer <console token>, or the login form at /login' })
      else send(response, 303, 'text/plain', '', { location: '/login' })
      return
    }
    if (asset && method === 'GET') {
      const html = (await readFile(join(staticDir, asset.file), 'utf8')).replace('data-refresh-ms="5000"', `data-refresh-ms="${refreshMs}"`)
      send(response, 200, asset.type, html)
      return
    }
    if (path.startsWith('/api/')) {
      try {
        if (method === 'GET') {
          const answer = await api.get(path, url.searchParams)
          if (answer) return json(response, answer.status, answer.body)
        } else if (method === 'POST') {
          const problem = sameOriginProblem(request, { requireJson: true })
          if (problem !== undefined) return json(response, 403, { error: problem })
          let body: unknown
          try {
            body = JSON.parse(await readBody(request)) as unknown
          } catch (error) {
            if (error instanceof BodyTooLarge) return json(response, 413, { error: error.message })
            return json(response, 400, { error: 'the body is not JSON' })
          }
          const answer = await api.post(path, body)
          if (answer) return json(response, answer.status, answer.body)
        } else {
          return json(response, 405, { error: `${method} is not allowed` })
        }
      } catch (error) {
        const status = statusOf(error)
        if (status >= 500) logger.error('Console API request failed', { method, path, error })
        return json(response, status, { error: (error as Error).message, code: (error as { code?: unknown }).code })
      }
      return json(response, 404, { error: `no route ${method} ${path}` })
    }
    json(response, 404, { error: `no page ${path}` })
  }

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      logger.error('Console request failed', { url: request.url, error })
      if (!response.headersSent) json(response, 500, { error: 'internal error' })
      else response.destroy()
    })
  })
  server.keepAliveTimeout = 5000
  const listening = await listenHttp(server, options.port ?? 9470, host)
  return { server, host, port: listening.port, url: `${listening.url}/`, close: listening.close }
}

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Registry } from 'prom-client'
import { DetourConfigError, listenHttp, noopLogger, type ListeningServer, type Logger } from '@detour/core'
import type { HeldGroup, ReleaseResult, WorkerState } from '../worker/types.js'
import { authorizeAdmin } from './admin-auth.js'

/** What the HTTP endpoints need from a worker (a `RetryWorker` fits). */
export interface HttpWorker {
  readonly state: WorkerState
  readonly ready: boolean
  heldGroups(): HeldGroup[]
  releaseHeld(id: string): Promise<ReleaseResult>
}

export interface HttpServerOptions {
  /** Port; 0 picks a free one. @defaultValue 9464 */
  port?: number
  /** Interface to listen on. @defaultValue '0.0.0.0' */
  host?: string
  registry: Registry
  worker: HttpWorker
  /**
   * Once set, the admin routes need `Authorization: Bearer <adminToken>` on every request, loopback ones
   * included. Without it they answer loopback requests only (peer and `Host` header, no forwarding header).
   * Prefer the environment (`DETOUR_ADMIN_TOKEN`) to a flag.
   */
  adminToken?: string
  logger?: Logger
}

/** The listening server: `url` is `http://host:port` (loopback when listening on all interfaces). */
export interface RunningHttpServer extends ListeningServer {
  readonly server: Server
}

const MAX_BODY_BYTES = 64 * 1024

/**
 * Metrics, health and held-group endpoints on `node:http`:
 * - `GET /metrics`: Prometheus text format from `registry`
 * - `GET /healthz`: 200 while the process serves requests and the consumer has not crashed for good
 * - `GET /readyz`: 200 once the consumer joined its group and runs; 503 before, after a crash and while stopping
 * - `GET /groups/held`: JSON list of held groups (admin)
 * - `POST /groups/release` with `content-type: application/json` and `{ "id": "<detour id>" }`: writes the
 *   tombstone and lets the group continue (admin)
 *
 * `/metrics`, `/healthz` and `/readyz` are open. The admin routes need `Authorization: Bearer <adminToken>`
 * when a token is configured (from loopback too); without one, they answer a loopback peer with a loopback
 * `Host` header (a DNS-rebinding guard) and no forwarding header; otherwise 401/403 with a JSON error (see
 * `authorizeAdmin`).
 */
export async function startHttpServer(options: HttpServerOptions): Promise<RunningHttpServer> {
  if (options.adminToken !== undefined && options.adminToken.trim().length === 0) {
    throw new DetourConfigError('adminToken', 'must be a non-empty secret (or left out: admin routes are then loopback-only)')
  }
  const logger = options.logger ?? noopLogger
  const server = createServer((request, response) => {
    handle(request, response, options).catch((error: unknown) => {
      if (error instanceof PayloadTooLarge) {
        json(response, 413, { error: error.message })
        return
      }
      logger.error('HTTP request failed', { method: request.method, url: request.url, error })
      if (!response.headersSent) json(response, 500, { error: 'internal error' })
      else response.destroy()
    })
  })
  server.keepAliveTimeout = 5_000
  const host = options.host ?? '0.0.0.0'
  const listening = await listenHttp(server, options.port ?? 9464, host)
  return { server, ...listening }
}

async function handle(request: IncomingMessage, response: ServerResponse, options: HttpServerOptions): Promise<void> {
  const path = new URL(request.url ?? '/', 'http://localhost').pathname
  const method = request.method ?? 'GET'
  const { worker } = options
  const route = `${method === 'HEAD' ? 'GET' : method} ${path}`
  switch (route) {
    case 'GET /metrics': {
      const body = await options.registry.metrics()
      response.writeHead(200, { 'content-type': options.registry.contentType })
      response.end(body)
      return
    }
    case 'GET /healthz':
      if (worker.state === 'failed') json(response, 503, { status: 'failed', state: worker.state })
      else json(response, 200, { status: 'ok', state: worker.state })
      return
    case 'GET /readyz':
      json(response, worker.ready ? 200 : 503, { ready: worker.ready, state: worker.state })
      return
    case 'GET /groups/held':
      if (!admitted(request, response, options)) return
      json(response, 200, worker.heldGroups())
      return
    case 'POST /groups/release': {
      if (!admitted(request, response, options)) return
      const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase()
      if (type !== 'application/json') {
        json(response, 415, { error: `expected content-type: application/json, got ${JSON.stringify(request.headers['content-type'] ?? '')}` })
        return
      }
      const body = await readJson(request)
      const id = typeof body === 'object' && body !== null ? (body as { id?: unknown }).id : undefined
      if (typeof id !== 'string' || id.length === 0) {
        json(response, 400, { error: 'expected a JSON body { "id": "<detour id>" }' })
        return
      }
      const result = await worker.releaseHeld(id)
      if (result.released) json(response, 200, { released: true, group: result.group })
      else if (result.reason === 'not-found') json(response, 404, { released: false, error: `no held group with id "${id}"` })
      else json(response, 503, { released: false, error: `the worker cannot release now (${result.reason})` })
      return
    }
  }
  const known = ['/metrics', '/healthz', '/readyz', '/groups/held', '/groups/release']
  if (known.includes(path)) json(response, 405, { error: `${method} is not allowed on ${path}` })
  else json(response, 404, { error: `no route ${path}` })
}

/** Answers 401/403 (and returns false) unless the request may use the admin routes. */
function admitted(request: IncomingMessage, response: ServerResponse, options: HttpServerOptions): boolean {
  const decision = authorizeAdmin(request, options.adminToken)
  if (decision.allowed) return true
  if (decision.status === 401) response.setHeader('www-authenticate', 'Bearer realm="detour-retry"')
  options.logger?.warn('Admin route refused', { method: request.method, url: request.url, status: decision.status, peer: request.socket.remoteAddress })
  json(response, decision.status, { error: decision.error })
  return false
}

function json(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8' })
  response.end(`${JSON.stringify(body)}\n`)
}

class PayloadTooLarge extends Error {}

async function readJson(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of request) {
    const buffer = chunk as Buffer
    size += buffer.length
    if (size > MAX_BODY_BYTES) throw new PayloadTooLarge(`request body larger than ${MAX_BODY_BYTES} bytes`)
    chunks.push(buffer)
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown
  } catch {
    return undefined
  }
}

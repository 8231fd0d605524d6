import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Registry } from 'prom-client'
import { noopLogger, type Logger } from '@detour/core'
import type { HeldGroup, ReleaseResult, WorkerState } from '../worker/types.js'

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
  logger?: Logger
}

export interface RunningHttpServer {
  readonly server: Server
  readonly port: number
  readonly host: string
  /** `http://host:port` (loopback when listening on all interfaces). */
  readonly url: string
  close(): Promise<void>
}

const MAX_BODY_BYTES = 64 * 1024

/**
 * Metrics, health and held-group endpoints on `node:http`:
 * - `GET /metrics`: Prometheus text format from `registry`
 * - `GET /healthz`: 200 while the process serves requests and the consumer has not crashed for good
 * - `GET /readyz`: 200 once the consumer joined its group and runs; 503 before, after a crash and while stopping
 * - `GET /groups/held`: JSON list of held groups
 * - `POST /groups/release` with `{ "id": "<detour id>" }`: writes the tombstone and lets the group continue
 *
 * The release endpoint changes state and has no authentication: expose the port to Prometheus and
 * operators only, never publicly.
 */
export async function startHttpServer(options: HttpServerOptions): Promise<RunningHttpServer> {
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
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 9464, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host
  let closing: Promise<void> | undefined
  return {
    server,
    port,
    host,
    url: `http://${urlHost}:${port}`,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })),
  }
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
      json(response, 200, worker.heldGroups())
      return
    case 'POST /groups/release': {
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

import type { HeldGroup } from '@detour/core'
import { AdminNotFoundError, WorkerRequestError } from '../errors/index.js'

/** A group a running worker holds (its `GET /groups/held` answer): the contract lives in core. */
export type { HeldGroup }

export interface WorkerClientOptions {
  /** Base URL of the worker's HTTP server (its `--metrics-host`/`--metrics-port`). */
  readonly url: string
  /** Sent as `Authorization: Bearer <token>` (the worker asks for it unless called from loopback). */
  readonly token?: string
  /** @defaultValue 15000 */
  readonly timeoutMs?: number
  /** For tests. @defaultValue globalThis.fetch */
  readonly fetch?: typeof fetch
}

function isHeldGroup(value: unknown): value is HeldGroup {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Record<string, unknown>
  return typeof v.id === 'string' && typeof v.topic === 'string' && typeof v.partition === 'number' && typeof v.groupKey === 'string'
}

/** The held-group API of a running retry worker: `GET /groups/held`, `POST /groups/release`. */
export class WorkerClient {
  constructor(private readonly options: WorkerClientOptions) {}

  get url(): string {
    return this.options.url
  }

  private endpoint(path: string): URL {
    const base = this.options.url
    return new URL(path, base.endsWith('/') ? base : `${base}/`)
  }

  private async call(path: string, init: RequestInit): Promise<{ status: number; body: unknown }> {
    const headers = new Headers(init.headers)
    if (this.options.token !== undefined) headers.set('authorization', `Bearer ${this.options.token}`)
    const doFetch = this.options.fetch ?? fetch
    let response: Response
    try {
      response = await doFetch(this.endpoint(path), { ...init, headers, signal: AbortSignal.timeout(this.options.timeoutMs ?? 15_000) })
    } catch (error) {
      throw new WorkerRequestError(`Cannot reach the worker at ${this.options.url}: ${(error as Error).message}`, undefined, { cause: error })
    }
    const text = await response.text()
    let body: unknown = text
    try {
      body = JSON.parse(text) as unknown
    } catch {
      // not JSON: keep the text
    }
    return { status: response.status, body }
  }

  private failure(what: string, status: number, body: unknown): WorkerRequestError {
    const detail = typeof body === 'object' && body !== null && typeof (body as { error?: unknown }).error === 'string' ? (body as { error: string }).error : JSON.stringify(body)
    const hint = status === 401 || status === 403 ? ' (set --admin-token or DETOUR_ADMIN_TOKEN to the worker\'s admin token)' : ''
    return new WorkerRequestError(`${what}: the worker at ${this.options.url} answered ${status}: ${detail}${hint}`, status)
  }

  /** The groups the worker holds. */
  async held(): Promise<HeldGroup[]> {
    const { status, body } = await this.call('groups/held', { method: 'GET' })
    if (status !== 200) throw this.failure('GET /groups/held', status, body)
    if (!Array.isArray(body) || !body.every(isHeldGroup)) {
      throw new WorkerRequestError(`GET /groups/held: the worker at ${this.options.url} answered something else than a list of held groups`, status)
    }
    return body
  }

  /** Releases a held group: the worker writes the tombstone and the group continues. */
  async release(id: string): Promise<HeldGroup | undefined> {
    const { status, body } = await this.call('groups/release', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id }),
    })
    if (status === 404) throw new AdminNotFoundError(`The worker at ${this.options.url} holds no group with id ${id}`)
    if (status !== 200) throw this.failure('POST /groups/release', status, body)
    const group = typeof body === 'object' && body !== null ? (body as { group?: unknown }).group : undefined
    return isHeldGroup(group) ? group : undefined
  }
}

import { coordinatesText, deadLetterJson } from '../dlt/dead-letter.js'
import type { DeadLetterFilter } from '../dlt/dead-letter-filter.js'
import { parseTime } from '../dlt/dead-letter-filter.js'
import { AdminErrorCodes, AdminUsageError, isAdminError } from '../errors/index.js'
import type { LedgerEntry } from '../replay/replay-ledger.js'
import type { ReplayPlan, ReplayTarget } from '../replay/replay-plan.js'
import type { AdminService } from '../service/admin-service.js'

/** An API answer: status and JSON body. */
export interface ApiResponse {
  readonly status: number
  readonly body: unknown
}

const ok = (body: unknown): ApiResponse => ({ status: 200, body })

function replayJson(entry: LedgerEntry | undefined): unknown {
  return entry === undefined ? undefined : { at: entry.replayedAt, to: entry.to, target: entry.target, count: entry.count, by: entry.by }
}

function stringList(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string' && v.length > 0)
  if (typeof value === 'string') return value.split(',').map((v) => v.trim()).filter((v) => v.length > 0)
  return []
}

/** The dead-letter filter of a query string or a JSON body (same names as the CLI's flags, camelCased). */
export function filterFrom(input: Record<string, unknown>, now: number = Date.now()): DeadLetterFilter {
  const reasons = stringList(input.reason)
  const errorNames = stringList(input.errorName)
  const keys = typeof input.key === 'string' && input.key.length > 0 ? [input.key] : stringList(Array.isArray(input.key) ? input.key : [])
  const text = (name: string): string | undefined => {
    const value = input[name]
    return typeof value === 'string' && value.length > 0 ? value : undefined
  }
  const since = text('since')
  const until = text('until')
  const partition = text('sourcePartition') ?? (typeof input.sourcePartition === 'number' ? String(input.sourcePartition) : undefined)
  const offset = text('sourceOffset')
  if (partition !== undefined && !/^\d{1,9}$/.test(partition)) throw new AdminUsageError(`sourcePartition must be a partition number, got ${partition}`)
  if (offset !== undefined && !/^\d{1,19}$/.test(offset)) throw new AdminUsageError(`sourceOffset must be an offset, got ${offset}`)
  return {
    ...(reasons.length ? { reasons } : {}),
    ...(errorNames.length ? { errorNames } : {}),
    ...(keys.length ? { keys } : {}),
    ...(since !== undefined ? { since: parseTime(since, now) } : {}),
    ...(until !== undefined ? { until: parseTime(until, now) } : {}),
    ...(partition !== undefined ? { sourcePartition: Number(partition) } : {}),
    ...(offset !== undefined ? { sourceOffset: offset } : {}),
  }
}

function planJson(plan: ReplayPlan): unknown {
  return {
    to: plan.to,
    force: plan.force,
    replays: plan.decisions.filter((decision) => decision.action === 'replay').length,
    decisions: plan.decisions.map((decision) => ({
      deadLetter: coordinatesText(decision.deadLetter.coordinates),
      action: decision.action,
      note: decision.note,
      pendingAhead: decision.pendingAhead,
      writes: decision.writes.map((write) => ({ topic: write.topic, partition: write.messages[0]?.partition })),
      summary: deadLetterJson(decision.deadLetter, { withValue: false }),
    })),
  }
}

/** The HTTP status of an error: usage 400, not found 404, refused 409, worker 502, the rest 500. */
export function statusOf(error: unknown): number {
  if (!isAdminError(error)) return 500
  switch (error.code) {
    case AdminErrorCodes.USAGE:
      return 400
    case AdminErrorCodes.NOT_FOUND:
      return 404
    case AdminErrorCodes.REFUSED:
    case AdminErrorCodes.REPLAY_FENCED:
      return 409
    case AdminErrorCodes.WORKER:
      return 502
    default:
      return 500
  }
}

/**
 * The console's JSON API over the {@link AdminService}: the same reads and writes as the CLI. Routes:
 * - `GET /api/config`, `GET /api/pending`, `GET /api/held`, `GET /api/apps`
 * - `GET /api/dlt?reason=&errorName=&key=&since=&until=&sourcePartition=&sourceOffset=&limit=`
 * - `GET /api/dlt/record?coordinates=<topic>/<partition>/<offset>`
 * - `POST /api/release` `{ id, mode: 'worker' | 'direct', dryRun, force }`
 * - `POST /api/replay` `{ coordinates?, filter?, all?, to, force, dryRun, rate }`
 */
export class ConsoleApi {
  constructor(private readonly service: AdminService) {}

  async get(path: string, query: URLSearchParams): Promise<ApiResponse | undefined> {
    const service = this.service
    switch (path) {
      case '/api/config':
        return ok({
          consumerGroup: service.scope.consumerGroup,
          topics: [...service.scope.topics.values()],
          errorTopics: service.browser.errorTopics,
          worker: service.worker?.url ?? null,
          apps: service.appMetricsUrls.length,
        })
      case '/api/pending':
        return ok(await service.inspect({ retryScan: query.get('retryScan') !== 'false' }))
      case '/api/held':
        return ok(await service.held())
      case '/api/apps':
        return ok(await service.apps())
      case '/api/dlt': {
        const limit = Number(query.get('limit') ?? '100')
        const page = await service.listDeadLetters(filterFrom(Object.fromEntries(query)), { limit })
        return ok({
          matched: page.matched,
          scanned: page.scanned,
          complete: page.complete,
          errorTopics: page.errorTopics,
          deadLetters: page.deadLetters.map((deadLetter) => ({
            ...deadLetterJson(deadLetter, { withValue: false }),
            replayed: replayJson(page.replays.get(coordinatesText(deadLetter.coordinates))),
          })),
        })
      }
      case '/api/dlt/record': {
        const coordinates = query.get('coordinates')
        if (coordinates === null) throw new AdminUsageError('coordinates=<topic>/<partition>/<offset> is missing')
        const { deadLetter, replayed } = await service.showDeadLetter(coordinates)
        return ok({ ...deadLetterJson(deadLetter), replayed: replayJson(replayed) })
      }
      default:
        return undefined
    }
  }

  async post(path: string, body: unknown): Promise<ApiResponse | undefined> {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new AdminUsageError('expected a JSON object')
    const input = body as Record<string, unknown>
    const dryRun = input.dryRun !== false
    switch (path) {
      case '/api/release': {
        const id = input.id
        if (typeof id !== 'string' || id.length === 0) throw new AdminUsageError('expected { "id": "<detour id>", "mode": "worker" | "direct" }')
        if (input.mode === 'direct') {
          const preview = await this.service.previewDirectRelease(id)
          if (dryRun) return ok({ dryRun, preview })
          return ok({ dryRun, preview, result: await this.service.releaseDirect(preview, { force: input.force === true }) })
        }
        if (input.mode !== undefined && input.mode !== 'worker') throw new AdminUsageError('mode must be "worker" or "direct"')
        if (dryRun) {
          const group = await this.service.heldGroup(id)
          if (!group) return { status: 404, body: { error: `the worker holds no group with id ${id}` } }
          return ok({ dryRun, preview: group })
        }
        return ok({ dryRun, released: (await this.service.releaseViaWorker(id)) ?? { id } })
      }
      case '/api/replay': {
        const to: ReplayTarget = input.to === 'retry' ? 'retry' : 'source'
        if (input.to !== undefined && input.to !== 'source' && input.to !== 'retry') throw new AdminUsageError('to must be "source" or "retry"')
        const filter = typeof input.filter === 'object' && input.filter !== null ? filterFrom(input.filter as Record<string, unknown>) : {}
        const plan = await this.service.planReplay(
          { coordinates: stringList(input.coordinates), filter, all: input.all === true, ...(typeof input.max === 'number' ? { max: input.max } : {}) },
          { to, force: input.force === true },
        )
        if (dryRun) return ok({ dryRun, plan: planJson(plan) })
        const rate = typeof input.rate === 'number' ? input.rate : undefined
        const execution = await this.service.executeReplay(plan, rate !== undefined ? { rate } : {})
        return ok({ dryRun, plan: planJson(plan), execution })
      }
      default:
        return undefined
    }
  }
}

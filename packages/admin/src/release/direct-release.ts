import { buildTombstone } from '@detour/core'
import { AdminNotFoundError, AdminRefusedError } from '../errors/index.js'
import type { InspectReport, PendingIdView } from '../inspect/inspect-report.js'
import type { Inspector } from '../inspect/inspector.js'
import type { TopicWriter, WrittenRecord } from '../kafka/topic-log.js'
import type { AdminScope } from '../model/scope.js'
import { topicsOf } from '../model/scope.js'

/** What a direct release of an id will do: shown before the confirmation. */
export interface DirectReleasePreview {
  readonly id: string
  readonly sourceTopic: string
  readonly partition: number
  /** Printable group key (core `displayGroupKey`). */
  readonly groupKey: string
  /** The group key bytes, base64 (`null` for a keyless message). */
  readonly groupKeyBase64: string | null
  readonly redirectTopic: string
  readonly pending: PendingIdView
  /** The ids of the same group, oldest first (the released one among them). */
  readonly groupIds: readonly string[]
  /**
   * Why releasing it directly is risky, when it is (an unresolved retry record, held by the worker);
   * `--force` is needed then.
   */
  readonly risk: string | undefined
}

export interface DirectReleaseResult {
  readonly id: string
  readonly tombstone: WrittenRecord
  /** True once a read of the redirect topic no longer shows the id pending. */
  readonly verified: boolean
}

/**
 * Releases a pending id by writing its tombstone (core `buildTombstone` with the main app's consumer group)
 * to the redirect topic, without a worker. For ids nothing else will release (state `no-retry-record`): an
 * id whose retry record the worker still has would be processed later, after newer messages of its key that
 * the release lets through — that breaks order, so it is refused unless forced, and held ids go through the
 * worker, which also unblocks its own queue.
 */
export class DirectRelease {
  constructor(
    private readonly scope: AdminScope,
    private readonly inspector: Inspector,
    private readonly writer: TopicWriter,
  ) {}

  async preview(id: string): Promise<DirectReleasePreview> {
    const report = await this.inspector.inspect({ retryScan: true })
    return previewFrom(report, id)
  }

  async release(preview: DirectReleasePreview, options: { force?: boolean } = {}): Promise<DirectReleaseResult> {
    const refused = directReleaseRefusal(preview, options.force ?? false)
    if (refused) throw refused
    const topics = topicsOf(this.scope, preview.sourceTopic)
    const tombstone = buildTombstone({
      partition: preview.partition,
      id: preview.id,
      groupKey: preview.groupKeyBase64 === null ? null : Buffer.from(preview.groupKeyBase64, 'base64'),
      consumerGroup: this.scope.consumerGroup,
    })
    const [written] = await this.writer.send({ topic: topics.redirect, messages: [tombstone] })
    const after = await this.inspector.inspect({ retryScan: false })
    const stillPending = after.topics.some((topic) => topic.partitions.some((p) => p.groups.some((g) => g.ids.some((entry) => entry.id === preview.id))))
    return { id: preview.id, tombstone: written!, verified: !stillPending }
  }
}

/** A pending id younger than this may still be getting its retry record (sequential hand-off, a resumed hand-off). */
const YOUNG_MS = 60_000

/**
 * Why a direct release must not go ahead, or `undefined`: a held id goes through the worker (always); an id
 * with an unresolved retry record only with `force`.
 */
export function directReleaseRefusal(preview: DirectReleasePreview, force: boolean): AdminRefusedError | undefined {
  if (preview.pending.state === 'held') {
    return new AdminRefusedError(
      `The worker holds ${preview.id}: release it through the worker (detour release --id ${preview.id} --worker-url <url>), which also unblocks the worker's queue of its group`,
    )
  }
  if (preview.risk !== undefined && !force) return new AdminRefusedError(`${preview.risk}; --force releases it anyway`)
  return undefined
}

/** Finds the id in an inspect report and says what releasing it directly means. */
export function previewFrom(report: InspectReport, id: string): DirectReleasePreview {
  for (const topic of report.topics) {
    for (const partition of topic.partitions) {
      for (const group of partition.groups) {
        const pending = group.ids.find((entry) => entry.id === id)
        if (!pending) continue
        let risk: string | undefined
        if (pending.state === 'retrying' || pending.state === 'waiting') {
          risk = `${id} has an unresolved retry record (${topic.retry}/${partition.partition}/${pending.retry?.offset}): the worker will still process it, after the newer messages of its group that releasing it now lets through`
        } else if (pending.state === 'unknown') {
          risk = `the retry topic was not read, so whether the worker still has ${id} is unknown`
        } else if (pending.ageMs === undefined || pending.ageMs < YOUNG_MS) {
          risk = `${id} was redirected ${pending.ageMs === undefined ? 'at an unknown time' : `${Math.round(pending.ageMs / 1000)} s ago`}: a main app in sequential hand-off mode writes its retry record right after its redirect record (and resumes the hand-off when it crashed in between); look again in a minute`
        }
        return {
          id,
          sourceTopic: topic.source,
          partition: partition.partition,
          groupKey: group.groupKey,
          groupKeyBase64: group.groupKeyBase64,
          redirectTopic: topic.redirect,
          pending,
          groupIds: group.ids.map((entry) => entry.id),
          risk,
        }
      }
    }
  }
  throw new AdminNotFoundError(`${id} is not pending on ${report.topics.map((topic) => topic.redirect).join(', ')}`)
}

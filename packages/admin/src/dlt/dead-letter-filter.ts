import { AdminUsageError } from '../errors/index.js'
import { displayKey, failedAtMs, type DeadLetter } from './dead-letter.js'

/**
 * Which dead letters to show or replay. Every field narrows the selection; lists match any of their values.
 */
export interface DeadLetterFilter {
  /** `detour-reason`: unprocessable, deserialization, exhausted, malformed, record-too-large. */
  readonly reasons?: readonly string[]
  /** `detour-error-name` (the error class name), exactly. */
  readonly errorNames?: readonly string[]
  /** The record key as printed (UTF-8 text, or `base64:<base64>` for binary keys, `(none)` for no key). */
  readonly keys?: readonly string[]
  /** Failed at or after (epoch ms; `detour-failed-at`, else the record timestamp). */
  readonly since?: number
  /** Failed before (epoch ms). */
  readonly until?: number
  /** The source topics of the dead letters (`detour-original-topic`); those without it always match. */
  readonly sourceTopics?: readonly string[]
  /** `detour-original-partition`. */
  readonly sourcePartition?: number
  /** `detour-original-offset`. */
  readonly sourceOffset?: string
}

function keyMatches(deadLetter: DeadLetter, keys: readonly string[]): boolean {
  const shown = displayKey(deadLetter.key)
  for (const key of keys) {
    if (key === shown) return true
    if (key.startsWith('base64:') && deadLetter.key !== null && deadLetter.key.equals(Buffer.from(key.slice(7), 'base64'))) return true
    if (deadLetter.key !== null && deadLetter.key.equals(Buffer.from(key, 'utf8'))) return true
  }
  return false
}

export function matchesFilter(deadLetter: DeadLetter, filter: DeadLetterFilter): boolean {
  if (filter.reasons?.length && !filter.reasons.includes(deadLetter.reason ?? '')) return false
  if (filter.errorNames?.length && !filter.errorNames.includes(deadLetter.errorName ?? '')) return false
  if (filter.keys?.length && !keyMatches(deadLetter, filter.keys)) return false
  if (filter.since !== undefined || filter.until !== undefined) {
    const at = failedAtMs(deadLetter)
    if (filter.since !== undefined && !(at >= filter.since)) return false
    if (filter.until !== undefined && !(at < filter.until)) return false
  }
  if (filter.sourceTopics?.length && deadLetter.source && !filter.sourceTopics.includes(deadLetter.source.topic)) return false
  if (filter.sourcePartition !== undefined && deadLetter.source?.partition !== filter.sourcePartition) return false
  if (filter.sourceOffset !== undefined && deadLetter.source?.offset !== filter.sourceOffset) return false
  return true
}

/** True when the filter selects something narrower than "everything". */
export function isNarrowing(filter: DeadLetterFilter): boolean {
  return Boolean(
    filter.reasons?.length ||
      filter.errorNames?.length ||
      filter.keys?.length ||
      filter.since !== undefined ||
      filter.until !== undefined ||
      filter.sourcePartition !== undefined ||
      filter.sourceOffset !== undefined,
  )
}

/**
 * Parses a time for `--since`/`--until`: ISO-8601 (`2024-05-01T12:00:00Z`), epoch milliseconds, or a
 * duration back from now (`90s`, `15m`, `2h`, `7d`).
 */
export function parseTime(text: string, now: number = Date.now()): number {
  const relative = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/.exec(text.trim())
  if (relative) {
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[relative[2] as 'ms' | 's' | 'm' | 'h' | 'd']
    return now - Number(relative[1]) * unit
  }
  if (/^\d{10,16}$/.test(text.trim())) return Number(text.trim())
  const parsed = Date.parse(text)
  if (Number.isFinite(parsed)) return parsed
  throw new AdminUsageError(`"${text}" is not a time: write ISO-8601 (2024-05-01T12:00:00Z), epoch milliseconds, or a duration ago (15m, 2h, 7d)`)
}

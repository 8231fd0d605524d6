/**
 * True when `match` holds for the error or for an error it wraps: kafkajs wraps broker errors in `cause`,
 * `originalError` (retries exceeded) and aggregated `errors` (one per broker).
 */
export function someInChain(error: unknown, match: (error: { type?: unknown; code?: unknown; name?: unknown }) => boolean, depth = 0): boolean {
  if (depth > 5 || typeof error !== 'object' || error === null) return false
  const e = error as { type?: unknown; code?: unknown; name?: unknown; cause?: unknown; originalError?: unknown; errors?: unknown }
  if (match(e)) return true
  if (someInChain(e.cause, match, depth + 1) || someInChain(e.originalError, match, depth + 1)) return true
  return Array.isArray(e.errors) && e.errors.some((inner) => someInChain(inner, match, depth + 1))
}

const FENCED_TYPES = new Set(['INVALID_PRODUCER_EPOCH', 'PRODUCER_FENCED'])

/**
 * True when a transactional producer was fenced: another producer initialised the same transactional id
 * (a new owner of the partition), so this one's transaction is aborted and it can write no more.
 */
export function isFencedError(error: unknown): boolean {
  return someInChain(error, (e) => typeof e.type === 'string' && FENCED_TYPES.has(e.type))
}

import { someInChain } from './error-chain.js'

/** Kafka error types that mean "this record will never fit", whatever the number of retries. */
const TOO_LARGE_TYPES = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE'])
/** Their protocol error codes. */
const TOO_LARGE_CODES = new Set([10, 18])

/**
 * True when a produce failed because the record is too large for the broker or topic
 * (`MESSAGE_TOO_LARGE`, `RECORD_LIST_TOO_LARGE`). Looks through kafkajs' wrappers (`cause`,
 * `originalError`, aggregated `errors`).
 */
export function isRecordTooLargeError(error: unknown): boolean {
  return someInChain(
    error,
    (e) => (typeof e.type === 'string' && TOO_LARGE_TYPES.has(e.type)) || (typeof e.code === 'number' && TOO_LARGE_CODES.has(e.code) && typeof e.type === 'string'),
  )
}

export {
  REDIRECT_KEY_SEPARATOR,
  redirectKey,
  parseRedirectKey,
  buildRedirectRecord,
  buildTombstone,
  decodeRedirectRecord,
  RedirectPartitionDecoder,
  BARRIER_KEY,
  buildBarrierRecord,
  isBarrierRecord,
} from './redirect-codec.js'
export type { RedirectRecordInput, RedirectEntry, RedirectUpdate, TombstoneInput } from './redirect-codec.js'
export { buildRetryRecord, decodeRetryRecord, describeError } from './retry-codec.js'
export type { RetryRecordInput, RetryEnvelope } from './retry-codec.js'
export { buildDeadLetterRecord, writeDeadLetter } from './dead-letter-codec.js'
export type { DeadLetterInput } from './dead-letter-codec.js'

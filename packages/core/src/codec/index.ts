export {
  redirectKey,
  parseRedirectKey,
  buildRedirectRecord,
  buildTombstone,
  decodeRedirectRecord,
} from './redirect-codec.js'
export type { RedirectRecordInput, RedirectEntry } from './redirect-codec.js'
export { buildRetryRecord, decodeRetryRecord, describeError } from './retry-codec.js'
export type { RetryRecordInput, RetryEnvelope } from './retry-codec.js'
export { buildDeadLetterRecord } from './dead-letter-codec.js'
export type { DeadLetterInput } from './dead-letter-codec.js'

/**
 * Header names of the Detour contract. All start with `detour-`; values are UTF-8 strings unless noted.
 * See docs/ARCHITECTURE.md for which records carry which headers.
 */
export const DetourHeaders = {
  /** Unique id of the source message, `<topic>/<partition>/<offset>`. On retry, redirect, tombstone and error records. */
  ID: 'detour-id',
  /** Raw bytes of the group key (absent for keyless messages). */
  GROUP_KEY: 'detour-group-key',
  /** Why the record exists: `failure`/`ordering` (retry, redirect) or a {@link DeadLetterReason} (error topic). */
  REASON: 'detour-reason',
  ORIGINAL_TOPIC: 'detour-original-topic',
  ORIGINAL_PARTITION: 'detour-original-partition',
  ORIGINAL_OFFSET: 'detour-original-offset',
  /** Source record timestamp, epoch milliseconds. */
  ORIGINAL_TIMESTAMP: 'detour-original-timestamp',
  /** The consumer group of the main app that owns the source topic. */
  CONSUMER_GROUP: 'detour-consumer-group',
  /** When the main app redirected the message (ISO-8601). */
  REDIRECTED_AT: 'detour-redirected-at',
  /** Error class name (`error.name`). */
  ERROR_NAME: 'detour-error-name',
  /** Error message, truncated to {@link HeaderLimits.errorMessageBytes}. */
  ERROR_MESSAGE: 'detour-error-message',
  /** Error stack, truncated to {@link HeaderLimits.stackBytes}. */
  ERROR_STACK: 'detour-error-stack',
  /** `error.code` when the error has a string code. */
  ERROR_CODE: 'detour-error-code',
  /** When the record was dead-lettered (ISO-8601). */
  FAILED_AT: 'detour-failed-at',
  /** Attempts made before dead-lettering (handler invocations). */
  ATTEMPTS: 'detour-attempts',
  /** First error seen for this message (retry worker dead letters). */
  FIRST_ERROR_MESSAGE: 'detour-first-error-message',
  FIRST_FAILED_AT: 'detour-first-failed-at',
  /** Where the dead letter came from: `main-app` or `retry-worker`. */
  SOURCE_COMPONENT: 'detour-component',
  /** For `malformed` dead letters: the topic/partition/offset of the bad record itself. */
  RECORD_TOPIC: 'detour-record-topic',
  RECORD_PARTITION: 'detour-record-partition',
  RECORD_OFFSET: 'detour-record-offset',
  /** The group policy applied after exhaustion: `release` or `hold`. */
  GROUP_POLICY: 'detour-group-policy',
} as const

export type DetourHeaderName = (typeof DetourHeaders)[keyof typeof DetourHeaders]

/** Why a message was sent to the retry topic. */
export type RedirectReason = 'failure' | 'ordering'

/** Why a message was sent to the error topic. */
export type DeadLetterReason =
  | 'unprocessable'
  | 'deserialization'
  | 'exhausted'
  | 'malformed'
  | 'record-too-large'

/** Size limits for header values that Detour itself writes. User headers are forwarded untouched. */
export const HeaderLimits = {
  errorMessageBytes: 1024,
  stackBytes: 4096,
} as const

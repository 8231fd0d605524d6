/**
 * Stable error codes. Users may match on `error.code`; codes never change meaning.
 */
export const ErrorCodes = {
  /** An option is missing or invalid. Fix the configuration. */
  INVALID_OPTION: 'DETOUR_INVALID_OPTION',
  /** A retry/redirect/error topic is missing or does not match the source topic. */
  TOPIC_MISMATCH: 'DETOUR_TOPIC_MISMATCH',
  /** Writing the retry, redirect, error or tombstone record failed; the source offset was not committed. */
  HANDOFF_FAILED: 'DETOUR_HANDOFF_FAILED',
  /** The user handler declared the message unprocessable: it goes to the error topic. */
  UNPROCESSABLE: 'DETOUR_UNPROCESSABLE',
  /** The message payload could not be deserialized: it goes to the error topic. */
  DESERIALIZATION: 'DETOUR_DESERIALIZATION',
  /** A record on a Detour topic lacks or garbles the Detour headers. */
  MALFORMED_RECORD: 'DETOUR_MALFORMED_RECORD',
  /** The component is not started, or already stopped. */
  NOT_RUNNING: 'DETOUR_NOT_RUNNING',
  /** Waiting for something (rebuild, shutdown, a handler in the retry worker) took longer than allowed. */
  TIMEOUT: 'DETOUR_TIMEOUT',
  /**
   * Another instance now owns the partition and fenced this one's transactional producer: the message
   * goes back to kafkajs, which hands the partition to its new owner.
   */
  FENCED: 'DETOUR_FENCED',
  /** The consumer or Detour is stopping: a wait ended so that kafkajs can stop. The message is handled again later. */
  STOPPING: 'DETOUR_STOPPING',
} as const

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes]

const BRAND = Symbol.for('detour.error')

export interface DetourErrorOptions {
  /** The underlying error. */
  cause?: unknown
  /** Whether retrying the same operation may succeed. */
  retriable?: boolean
}

/**
 * Root of Detour's error hierarchy. Every Detour error has a stable `code`, a `retriable` flag
 * and an optional `cause`. Classify with {@link isDetourError} (works across duplicated package copies).
 */
export class DetourError extends Error {
  readonly code: ErrorCode
  readonly retriable: boolean
  override readonly cause?: unknown
  readonly [BRAND] = true

  constructor(message: string, code: ErrorCode, options: DetourErrorOptions = {}) {
    super(message)
    Object.setPrototypeOf(this, new.target.prototype)
    this.name = 'DetourError'
    this.code = code
    this.retriable = options.retriable ?? false
    if (options.cause !== undefined) this.cause = options.cause
  }
}

/** An option is invalid; thrown at construction so misconfiguration fails at start-up. */
export class DetourConfigError extends DetourError {
  readonly option: string
  /** What is wrong with the option, without the option's name (a command line names the flag instead). */
  readonly reason: string
  constructor(option: string, message: string) {
    super(`Invalid option "${option}": ${message}`, ErrorCodes.INVALID_OPTION)
    this.name = 'DetourConfigError'
    this.option = option
    this.reason = message
  }
}

/** A Detour topic is missing or does not match its source topic (partition count, cleanup policy). */
export class DetourTopicError extends DetourError {
  readonly topic: string
  constructor(topic: string, message: string, options: DetourErrorOptions = {}) {
    super(message, ErrorCodes.TOPIC_MISMATCH, options)
    this.name = 'DetourTopicError'
    this.topic = topic
  }
}

/**
 * A write Detour depends on (retry, redirect, error or tombstone record) failed.
 * The source offset is not committed: the message is handled again.
 */
export class DetourHandOffError extends DetourError {
  readonly topic: string
  constructor(topic: string, message: string, cause: unknown) {
    super(message, ErrorCodes.HANDOFF_FAILED, { cause, retriable: true })
    this.name = 'DetourHandOffError'
    this.topic = topic
  }
}

/**
 * Throw (or reject with) this from a handler to declare a message unprocessable: it can never
 * succeed, so it goes straight to the error topic without retries.
 */
export class UnprocessableMessageError extends DetourError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, ErrorCodes.UNPROCESSABLE, { cause: options.cause, retriable: false })
    this.name = 'UnprocessableMessageError'
  }
}

/** Throw this when a payload cannot be decoded; it is dead-lettered with reason `deserialization`. */
export class DeserializationError extends DetourError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, ErrorCodes.DESERIALIZATION, { cause: options.cause, retriable: false })
    this.name = 'DeserializationError'
  }
}

/** A record on a Detour topic lacks or garbles the Detour headers (foreign producer, corruption). */
export class MalformedRecordError extends DetourError {
  constructor(message: string) {
    super(message, ErrorCodes.MALFORMED_RECORD, { retriable: false })
    this.name = 'MalformedRecordError'
  }
}

/** Waiting took longer than allowed. */
export class DetourTimeoutError extends DetourError {
  constructor(message: string) {
    super(message, ErrorCodes.TIMEOUT, { retriable: true })
    this.name = 'DetourTimeoutError'
  }
}

/**
 * This instance no longer owns the partition: a newer owner initialised the partition's transactional
 * producer (fencing this one), or the consumer group says the partition is assigned elsewhere.
 */
export class DetourFencedError extends DetourError {
  readonly topic: string
  readonly partition: number
  constructor(topic: string, partition: number, message: string, options: { cause?: unknown } = {}) {
    super(message, ErrorCodes.FENCED, { cause: options.cause, retriable: true })
    this.name = 'DetourFencedError'
    this.topic = topic
    this.partition = partition
  }
}

/** A wait (for a rebuild, for room in the group store) ended because the consumer or Detour is stopping. */
export class DetourStoppingError extends DetourError {
  constructor(message: string) {
    super(message, ErrorCodes.STOPPING, { retriable: true })
    this.name = 'DetourStoppingError'
  }
}

/** True for any Detour error, even one thrown by another copy of this package. */
export function isDetourError(error: unknown): error is DetourError {
  return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[BRAND] === true
}

function hasName(error: unknown, name: string): boolean {
  return error instanceof Error && error.name === name
}

/** True when the error says the message can never be processed. */
export function isUnprocessableError(error: unknown): boolean {
  return error instanceof UnprocessableMessageError || hasName(error, 'UnprocessableMessageError')
}

/** True when the error says the payload could not be decoded (Detour's class, or a `SyntaxError` from JSON.parse). */
export function isDeserializationError(error: unknown): boolean {
  return error instanceof DeserializationError || hasName(error, 'DeserializationError')
}

/**
 * Programming errors are never worth retrying elsewhere; but a handler's TypeError still deserves a
 * dead letter rather than an endless retry. Used by the default classifier.
 */
export function isProgrammingError(error: unknown): boolean {
  return (
    error instanceof TypeError ||
    error instanceof RangeError ||
    error instanceof ReferenceError ||
    error instanceof SyntaxError
  )
}

/**
 * Stable codes of the operator surface's errors. Scripts may match on `error.code` (library use) or on the
 * exit code the CLI derives from it ({@link exitCodeOf}).
 */
export const AdminErrorCodes = {
  /** A flag or request is missing, malformed or contradictory. Exit code 2. */
  USAGE: 'DETOUR_ADMIN_USAGE',
  /** What was asked for does not exist (a dead letter, a pending id, a held group). Exit code 3. */
  NOT_FOUND: 'DETOUR_ADMIN_NOT_FOUND',
  /** The operation would break an invariant (ordering, no double replay) and was not done. Exit code 1. */
  REFUSED: 'DETOUR_ADMIN_REFUSED',
  /** A worker's HTTP API answered with an error or could not be reached. Exit code 1. */
  WORKER: 'DETOUR_ADMIN_WORKER',
  /** Another replay of the same error topic took over its ledger (its producer was fenced). Exit code 1. */
  REPLAY_FENCED: 'DETOUR_ADMIN_REPLAY_FENCED',
  /** A write to Kafka failed; nothing of the failed step was written (transactions) or it was not acknowledged. Exit code 1. */
  WRITE_FAILED: 'DETOUR_ADMIN_WRITE_FAILED',
  /** A read did not finish in time. Exit code 1. */
  TIMEOUT: 'DETOUR_ADMIN_TIMEOUT',
} as const

export type AdminErrorCode = (typeof AdminErrorCodes)[keyof typeof AdminErrorCodes]

const BRAND = Symbol.for('detour.admin.error')

/** Root of the operator surface's errors: a stable `code`, a `retriable` flag and an optional `cause`. */
export class AdminError extends Error {
  readonly code: AdminErrorCode
  readonly retriable: boolean
  override readonly cause?: unknown
  readonly [BRAND] = true

  constructor(message: string, code: AdminErrorCode, options: { cause?: unknown; retriable?: boolean } = {}) {
    super(message)
    this.name = 'AdminError'
    this.code = code
    this.retriable = options.retriable ?? false
    if (options.cause !== undefined) this.cause = options.cause
    Object.setPrototypeOf(this, new.target.prototype)
  }
}

/** A flag or request is wrong: says what to change. */
export class AdminUsageError extends AdminError {
  constructor(message: string) {
    super(message, AdminErrorCodes.USAGE)
    this.name = 'AdminUsageError'
  }
}

/** Nothing matched: a script can tell "nothing there" from a failure. */
export class AdminNotFoundError extends AdminError {
  constructor(message: string) {
    super(message, AdminErrorCodes.NOT_FOUND)
    this.name = 'AdminNotFoundError'
  }
}

/** The operation was refused because it would break ordering or replay at most once; says what to do instead. */
export class AdminRefusedError extends AdminError {
  constructor(message: string) {
    super(message, AdminErrorCodes.REFUSED)
    this.name = 'AdminRefusedError'
  }
}

/** A running worker's HTTP API failed or answered with an error status. */
export class WorkerRequestError extends AdminError {
  readonly status: number | undefined
  constructor(message: string, status: number | undefined, options: { cause?: unknown } = {}) {
    super(message, AdminErrorCodes.WORKER, { cause: options.cause, retriable: status === undefined || status >= 500 })
    this.name = 'WorkerRequestError'
    this.status = status
  }
}

/** True for any error of this package, even from another copy of it. */
export function isAdminError(error: unknown): error is AdminError {
  return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[BRAND] === true
}

/**
 * Exit codes of the `detour` CLI (documented in the README). Scripts can tell "nothing to do" (3) from a
 * failure (1), and a refused confirmation (4) from both.
 */
export const ExitCodes = {
  /** Done; something was found, shown or written. */
  OK: 0,
  /** A failure: Kafka or the worker unreachable, a refused or failed write. */
  ERROR: 1,
  /** Wrong flags (also: a confirmation is needed but stdin is not a terminal and --yes is missing). */
  USAGE: 2,
  /** Nothing found or nothing to do: no pending id, no matching dead letter, nothing left to replay. */
  NOTHING: 3,
  /** The operator answered no at the confirmation prompt: nothing was written. */
  DECLINED: 4,
} as const

export type ExitCode = (typeof ExitCodes)[keyof typeof ExitCodes]

/** The exit code an error maps to. */
export function exitCodeOf(error: unknown): ExitCode {
  if (!isAdminError(error)) return ExitCodes.ERROR
  if (error.code === AdminErrorCodes.USAGE) return ExitCodes.USAGE
  if (error.code === AdminErrorCodes.NOT_FOUND) return ExitCodes.NOTHING
  return ExitCodes.ERROR
}

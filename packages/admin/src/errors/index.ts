export {
  AdminErrorCodes,
  AdminError,
  AdminUsageError,
  AdminNotFoundError,
  AdminRefusedError,
  WorkerRequestError,
  isAdminError,
  ExitCodes,
  exitCodeOf,
} from './admin-error.js'
export type { AdminErrorCode, ExitCode } from './admin-error.js'

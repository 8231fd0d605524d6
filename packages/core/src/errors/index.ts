export {
  ErrorCodes,
  DetourError,
  DetourConfigError,
  DetourTopicError,
  DetourHandOffError,
  UnprocessableMessageError,
  DeserializationError,
  MalformedRecordError,
  DetourTimeoutError,
  DetourFencedError,
  DetourStoppingError,
  isDetourError,
  isUnprocessableError,
  isDeserializationError,
  isProgrammingError,
} from './detour-error.js'
export type { ErrorCode, DetourErrorOptions } from './detour-error.js'

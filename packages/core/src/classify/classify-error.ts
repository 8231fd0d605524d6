import { isDeserializationError, isProgrammingError, isUnprocessableError } from '../errors/index.js'

/** What a failure means for the message. */
export type FailureKind = 'transient' | 'unprocessable' | 'deserialization'

/**
 * A user classifier: return a verdict, or `undefined` to fall back to the default rules.
 */
export type ErrorClassifier = (error: unknown) => FailureKind | undefined

/**
 * Default rules, after the user classifier (if any) had its say:
 * - {@link UnprocessableMessageError} (by class or name) → `unprocessable`
 * - {@link DeserializationError}, or a `SyntaxError` (JSON.parse) → `deserialization`
 * - programming errors (`TypeError`, `RangeError`, `ReferenceError`) → `unprocessable`: retrying the
 *   same code on the same input cannot help, so they are dead-lettered instead of retried forever
 * - anything else → `transient`
 */
export function classifyError(error: unknown, classifier?: ErrorClassifier): FailureKind {
  const verdict = classifier?.(error)
  if (verdict !== undefined) return verdict
  if (isUnprocessableError(error)) return 'unprocessable'
  if (isDeserializationError(error) || error instanceof SyntaxError) return 'deserialization'
  if (isProgrammingError(error)) return 'unprocessable'
  return 'transient'
}

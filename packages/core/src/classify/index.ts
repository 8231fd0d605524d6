export { classifyError } from './classify-error.js'
export type { FailureKind, ErrorClassifier } from './classify-error.js'
export { isRecordTooLargeError } from './record-too-large.js'

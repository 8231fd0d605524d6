import type { IHeaders, KafkaMessage, Message } from 'kafkajs'
import { DetourHeaders, HeaderLimits, type DeadLetterReason } from '../headers/header-names.js'
import { truncateUtf8, userHeaders } from '../headers/header-values.js'
import type { GroupKey } from '../model/group-key.js'
import type { SourceCoordinates } from '../model/message-id.js'
import { isRecordTooLargeError } from '../classify/record-too-large.js'
import { describeError } from './retry-codec.js'

export interface DeadLetterInput {
  readonly reason: DeadLetterReason
  /** The record as received: key, value bytes and user headers are kept unchanged. */
  readonly message: Pick<KafkaMessage, 'key' | 'value' | 'headers' | 'timestamp'>
  /** Coordinates of the source message, when known. */
  readonly source?: SourceCoordinates
  readonly id?: string
  readonly groupKey?: GroupKey
  readonly consumerGroup: string
  readonly error: unknown
  readonly component: 'main-app' | 'retry-worker'
  readonly attempts?: number
  readonly firstErrorMessage?: string
  readonly firstFailedAt?: Date
  /** For records read from a Detour topic (retry topic), where that record itself sits. */
  readonly record?: { topic: string; partition: number; offset: string }
  readonly groupPolicy?: 'release' | 'hold'
  /** Drop the value (used when the original record is too large to republish). */
  readonly withoutValue?: boolean
  readonly now?: Date
}

/**
 * An error-topic record: the original key, value bytes and headers, plus the reason, the error
 * (name, message, size-limited stack), the source coordinates, the consumer group and the time.
 * Partitioned by the original key.
 */
export function buildDeadLetterRecord(input: DeadLetterInput): Message {
  const { name, message, stack, code } = describeError(input.error)
  const headers: IHeaders = {
    ...(input.withoutValue ? {} : userHeaders(input.message.headers)),
    [DetourHeaders.REASON]: input.reason,
    [DetourHeaders.ERROR_NAME]: name,
    [DetourHeaders.ERROR_MESSAGE]: truncateUtf8(message, HeaderLimits.errorMessageBytes),
    [DetourHeaders.CONSUMER_GROUP]: input.consumerGroup,
    [DetourHeaders.FAILED_AT]: (input.now ?? new Date()).toISOString(),
    [DetourHeaders.SOURCE_COMPONENT]: input.component,
  }
  if (stack !== undefined) headers[DetourHeaders.ERROR_STACK] = truncateUtf8(stack, HeaderLimits.stackBytes)
  if (code !== undefined) headers[DetourHeaders.ERROR_CODE] = code.slice(0, 128)
  if (input.id !== undefined) headers[DetourHeaders.ID] = input.id
  if (input.groupKey) headers[DetourHeaders.GROUP_KEY] = input.groupKey
  if (input.source) {
    headers[DetourHeaders.ORIGINAL_TOPIC] = input.source.topic
    headers[DetourHeaders.ORIGINAL_PARTITION] = String(input.source.partition)
    headers[DetourHeaders.ORIGINAL_OFFSET] = input.source.offset
  }
  if (input.message.timestamp) headers[DetourHeaders.ORIGINAL_TIMESTAMP] = input.message.timestamp
  if (input.attempts !== undefined) headers[DetourHeaders.ATTEMPTS] = String(input.attempts)
  if (input.firstErrorMessage !== undefined) {
    headers[DetourHeaders.FIRST_ERROR_MESSAGE] = truncateUtf8(input.firstErrorMessage, HeaderLimits.errorMessageBytes)
  }
  if (input.firstFailedAt) headers[DetourHeaders.FIRST_FAILED_AT] = input.firstFailedAt.toISOString()
  if (input.record) {
    headers[DetourHeaders.RECORD_TOPIC] = input.record.topic
    headers[DetourHeaders.RECORD_PARTITION] = String(input.record.partition)
    headers[DetourHeaders.RECORD_OFFSET] = input.record.offset
  }
  if (input.groupPolicy) headers[DetourHeaders.GROUP_POLICY] = input.groupPolicy
  return { key: input.message.key, value: input.withoutValue ? null : input.message.value, headers }
}

/**
 * The dead-letter policy of both apps: writes the dead letter through `send` (which must wait for the
 * broker's acknowledgement); when the broker refuses it as too large (`MESSAGE_TOO_LARGE`, …), writes it
 * again without the value and the user headers — the `detour-original-*` coordinates say where the
 * original is. Other errors are thrown as they are (the caller retries or fails the hand-off).
 */
export async function writeDeadLetter(send: (message: Message) => Promise<void>, input: DeadLetterInput): Promise<{ withoutValue: boolean }> {
  if (input.withoutValue) {
    await send(buildDeadLetterRecord(input))
    return { withoutValue: true }
  }
  try {
    await send(buildDeadLetterRecord(input))
    return { withoutValue: false }
  } catch (error) {
    if (!isRecordTooLargeError(error)) throw error
  }
  await send(buildDeadLetterRecord({ ...input, withoutValue: true }))
  return { withoutValue: true }
}

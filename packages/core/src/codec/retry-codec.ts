import type { IHeaders, KafkaMessage, Message } from 'kafkajs'
import { MalformedRecordError } from '../errors/index.js'
import { DetourHeaders, HeaderLimits, type RedirectReason } from '../headers/header-names.js'
import { headerBuffer, headerString, truncateUtf8, userHeaders } from '../headers/header-values.js'
import type { GroupKey } from '../model/group-key.js'
import { isValidOffset, messageId, parseMessageId, type SourceCoordinates } from '../model/message-id.js'

export interface RetryRecordInput {
  readonly source: SourceCoordinates
  /** The source message: its key, value bytes and headers are forwarded unchanged. */
  readonly message: Pick<KafkaMessage, 'key' | 'value' | 'headers' | 'timestamp'>
  readonly id: string
  readonly groupKey: GroupKey
  readonly reason: RedirectReason
  readonly consumerGroup: string
  /** The error that caused a `failure` redirect. */
  readonly error?: unknown
  readonly now?: Date
}

/**
 * The retry record: the source message's key, value bytes and headers, unchanged, plus Detour headers.
 * It goes to the source message's partition of the retry topic.
 */
export function buildRetryRecord(input: RetryRecordInput): Message {
  // The user headers first, then Detour's, in this order. Assigned one by one onto the fresh copy
  // `userHeaders` returns: an object literal mixing a spread with computed keys takes a slow path in V8
  // (~4 µs per record, measured by bench/ on the redirect path).
  const headers: IHeaders = userHeaders(input.message.headers)
  headers[DetourHeaders.ID] = input.id
  headers[DetourHeaders.REASON] = input.reason
  headers[DetourHeaders.ORIGINAL_TOPIC] = input.source.topic
  headers[DetourHeaders.ORIGINAL_PARTITION] = String(input.source.partition)
  headers[DetourHeaders.ORIGINAL_OFFSET] = input.source.offset
  headers[DetourHeaders.ORIGINAL_TIMESTAMP] = input.message.timestamp
  headers[DetourHeaders.CONSUMER_GROUP] = input.consumerGroup
  headers[DetourHeaders.REDIRECTED_AT] = (input.now ?? new Date()).toISOString()
  if (input.groupKey !== null) headers[DetourHeaders.GROUP_KEY] = input.groupKey
  if (input.error !== undefined) {
    const { name, message } = describeError(input.error)
    headers[DetourHeaders.ERROR_NAME] = name
    headers[DetourHeaders.ERROR_MESSAGE] = truncateUtf8(message, HeaderLimits.errorMessageBytes)
  }
  return { partition: input.source.partition, key: input.message.key, value: input.message.value, headers }
}

/** What the retry worker needs from a retry record. */
export interface RetryEnvelope {
  readonly id: string
  readonly groupKey: GroupKey
  readonly reason: RedirectReason
  readonly source: SourceCoordinates
  readonly sourceTimestamp: string | undefined
  readonly consumerGroup: string
  readonly redirectedAt: string | undefined
  /** The error that first sent the message here (when reason is `failure`). */
  readonly firstErrorMessage: string | undefined
}

/** Reads the Detour headers of a retry record. Throws {@link MalformedRecordError} with what is wrong. */
export function decodeRetryRecord(message: Pick<KafkaMessage, 'headers'>): RetryEnvelope {
  const h = message.headers
  const id = headerString(h, DetourHeaders.ID)
  if (id === undefined) throw new MalformedRecordError(`Retry record without header ${DetourHeaders.ID}`)
  const fromId = parseMessageId(id)
  const topic = headerString(h, DetourHeaders.ORIGINAL_TOPIC) ?? fromId.topic
  const partitionText = headerString(h, DetourHeaders.ORIGINAL_PARTITION) ?? String(fromId.partition)
  const offset = headerString(h, DetourHeaders.ORIGINAL_OFFSET) ?? fromId.offset
  const partition = Number(partitionText)
  if (!Number.isInteger(partition) || partition < 0 || !isValidOffset(offset)) {
    throw new MalformedRecordError(`Retry record ${id} has garbled source coordinates`)
  }
  const source = { topic, partition, offset }
  if (messageId(source) !== id) {
    throw new MalformedRecordError(`Retry record ${id} disagrees with its source headers (${messageId(source)})`)
  }
  const reasonText = headerString(h, DetourHeaders.REASON) ?? 'failure'
  if (reasonText !== 'failure' && reasonText !== 'ordering') {
    throw new MalformedRecordError(`Retry record ${id} has unknown ${DetourHeaders.REASON} "${reasonText.slice(0, 64)}"`)
  }
  const consumerGroup = headerString(h, DetourHeaders.CONSUMER_GROUP)
  if (consumerGroup === undefined || consumerGroup.length === 0) {
    throw new MalformedRecordError(`Retry record ${id} without header ${DetourHeaders.CONSUMER_GROUP}`)
  }
  return {
    id,
    groupKey: headerBuffer(h, DetourHeaders.GROUP_KEY) ?? null,
    reason: reasonText,
    source,
    sourceTimestamp: headerString(h, DetourHeaders.ORIGINAL_TIMESTAMP),
    consumerGroup,
    redirectedAt: headerString(h, DetourHeaders.REDIRECTED_AT),
    firstErrorMessage: headerString(h, DetourHeaders.ERROR_MESSAGE),
  }
}

/** Name and message of anything thrown. */
export function describeError(error: unknown): { name: string; message: string; stack: string | undefined; code: string | undefined } {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code
    return { name: error.name, message: error.message, stack: error.stack, code: typeof code === 'string' ? code : undefined }
  }
  return { name: typeof error, message: String(error), stack: undefined, code: undefined }
}

import { MalformedRecordError } from '../errors/index.js'

/**
 * The unique id of a source message: `<topic>/<partition>/<offset>`.
 *
 * Deterministic from the source coordinates, so a message delivered again after a crash gets the
 * same id and produces the same records. Kafka topic names only contain `[a-zA-Z0-9._-]`, so `/`
 * separates unambiguously, and the id never contains `|` (used by the redirect key).
 */
export type MessageId = string

export interface SourceCoordinates {
  readonly topic: string
  readonly partition: number
  /** The offset as Kafka gives it: a decimal string (64-bit; never a JS number). */
  readonly offset: string
}

const OFFSET_RE = /^\d{1,19}$/
const TOPIC_RE = /^[a-zA-Z0-9._-]{1,249}$/

export function messageId(source: SourceCoordinates): MessageId {
  return `${source.topic}/${source.partition}/${source.offset}`
}

/** Parses an id; throws {@link MalformedRecordError} when it is not `<topic>/<partition>/<offset>`. */
export function parseMessageId(id: string): SourceCoordinates {
  const last = id.lastIndexOf('/')
  const mid = last > 0 ? id.lastIndexOf('/', last - 1) : -1
  if (mid <= 0) throw new MalformedRecordError(`Malformed message id "${truncateForLog(id)}"`)
  const topic = id.slice(0, mid)
  const partitionText = id.slice(mid + 1, last)
  const offset = id.slice(last + 1)
  const partition = Number(partitionText)
  if (!isValidTopicName(topic) || !/^\d{1,9}$/.test(partitionText) || !OFFSET_RE.test(offset)) {
    throw new MalformedRecordError(`Malformed message id "${truncateForLog(id)}"`)
  }
  return { topic, partition, offset }
}

export function isValidTopicName(name: string): boolean {
  return TOPIC_RE.test(name) && name !== '.' && name !== '..'
}

export function isValidOffset(offset: string): boolean {
  return OFFSET_RE.test(offset)
}

function truncateForLog(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text
}

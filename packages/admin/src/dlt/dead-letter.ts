import type { IHeaders } from 'kafkajs'
import { DetourHeaders, displayGroupKey, headerBuffer, headerString, isValidOffset, isValidTopicName, type SourceCoordinates } from '@detour/core'
import { AdminUsageError } from '../errors/index.js'
import type { LogRecord } from '../kafka/topic-log.js'

/** Where a dead letter sits: `<error topic>/<partition>/<offset>`. */
export interface DeadLetterCoordinates {
  readonly topic: string
  readonly partition: number
  readonly offset: string
}

/** A dead letter with its Detour headers decoded (core `DetourHeaders`, `headerString`). */
export interface DeadLetter {
  readonly coordinates: DeadLetterCoordinates
  /** Record timestamp (epoch milliseconds). */
  readonly timestamp: string
  readonly key: Buffer | null
  readonly value: Buffer | null
  /** Every header as written: user headers and `detour-*`. */
  readonly headers: IHeaders
  readonly reason: string | undefined
  readonly errorName: string | undefined
  readonly errorMessage: string | undefined
  readonly failedAt: string | undefined
  readonly component: string | undefined
  readonly consumerGroup: string | undefined
  readonly id: string | undefined
  /** Raw group key bytes (`detour-group-key`); `undefined` when absent (keyless, or not known). */
  readonly groupKey: Buffer | undefined
  /** The original message's coordinates, when the dead letter names them. */
  readonly source: SourceCoordinates | undefined
}

/** `<topic>/<partition>/<offset>` of a dead letter (the ledger's key and `detour-replayed-from`'s value). */
export function coordinatesText(coordinates: DeadLetterCoordinates): string {
  return `${coordinates.topic}/${coordinates.partition}/${coordinates.offset}`
}

/**
 * Parses `<partition>:<offset>` (with `defaultTopic`) or `<topic>/<partition>/<offset>`. Throws a usage
 * error that shows the accepted forms.
 */
export function parseCoordinates(text: string, defaultTopic: string | undefined): DeadLetterCoordinates {
  const colon = /^(\d{1,9}):(\d{1,19})$/.exec(text)
  if (colon) {
    if (defaultTopic === undefined) {
      throw new AdminUsageError(`"${text}" names no error topic and the scope has several: write <error topic>/<partition>/<offset>`)
    }
    return { topic: defaultTopic, partition: Number(colon[1]), offset: colon[2]! }
  }
  const last = text.lastIndexOf('/')
  const mid = last > 0 ? text.lastIndexOf('/', last - 1) : -1
  if (mid > 0) {
    const topic = text.slice(0, mid)
    const partition = text.slice(mid + 1, last)
    const offset = text.slice(last + 1)
    if (isValidTopicName(topic) && /^\d{1,9}$/.test(partition) && isValidOffset(offset)) return { topic, partition: Number(partition), offset }
  }
  throw new AdminUsageError(`"${text}" is not a dead letter's coordinates: write <partition>:<offset> or <error topic>/<partition>/<offset>`)
}

function sourceOf(headers: IHeaders): SourceCoordinates | undefined {
  const topic = headerString(headers, DetourHeaders.ORIGINAL_TOPIC)
  const partition = headerString(headers, DetourHeaders.ORIGINAL_PARTITION)
  const offset = headerString(headers, DetourHeaders.ORIGINAL_OFFSET)
  if (topic === undefined || partition === undefined || offset === undefined) return undefined
  if (!isValidTopicName(topic) || !/^\d{1,9}$/.test(partition) || !isValidOffset(offset)) return undefined
  return { topic, partition: Number(partition), offset }
}

/** Reads an error-topic record. Never throws: a record without Detour headers has `undefined` fields. */
export function decodeDeadLetter(record: LogRecord): DeadLetter {
  const h = record.headers
  return {
    coordinates: { topic: record.topic, partition: record.partition, offset: record.offset },
    timestamp: record.timestamp,
    key: record.key,
    value: record.value,
    headers: h,
    reason: headerString(h, DetourHeaders.REASON),
    errorName: headerString(h, DetourHeaders.ERROR_NAME),
    errorMessage: headerString(h, DetourHeaders.ERROR_MESSAGE),
    failedAt: headerString(h, DetourHeaders.FAILED_AT),
    component: headerString(h, DetourHeaders.SOURCE_COMPONENT),
    consumerGroup: headerString(h, DetourHeaders.CONSUMER_GROUP),
    id: headerString(h, DetourHeaders.ID),
    groupKey: headerBuffer(h, DetourHeaders.GROUP_KEY),
    source: sourceOf(h),
  }
}

/** When the dead letter was written: `detour-failed-at`, else the record timestamp (epoch ms). */
export function failedAtMs(deadLetter: DeadLetter): number {
  const failed = deadLetter.failedAt === undefined ? Number.NaN : Date.parse(deadLetter.failedAt)
  return Number.isFinite(failed) ? failed : Number(deadLetter.timestamp)
}

/** Bytes shown as text when they are valid UTF-8, as base64 otherwise. */
export interface ShownBytes {
  readonly encoding: 'utf8' | 'base64'
  readonly data: string
  readonly bytes: number
}

export function showBytes(bytes: Buffer): ShownBytes {
  const text = bytes.toString('utf8')
  if (Buffer.from(text, 'utf8').equals(bytes)) return { encoding: 'utf8', data: text, bytes: bytes.length }
  return { encoding: 'base64', data: bytes.toString('base64'), bytes: bytes.length }
}

/** The printable form of a dead letter's key: core's `displayGroupKey` rules (UTF-8, else `base64:`). */
export function displayKey(key: Buffer | null): string {
  return displayGroupKey(key)
}

/** One header as shown: UTF-8 text when valid, base64 otherwise; repeated headers keep every value. */
export type ShownHeader = ShownBytes | ShownBytes[]

function showHeaderValue(value: Buffer | string): ShownBytes {
  return typeof value === 'string' ? { encoding: 'utf8', data: value, bytes: Buffer.byteLength(value) } : showBytes(value)
}

/** The JSON form of a dead letter, as `dlt show` prints it and the console's API answers it. */
export interface DeadLetterJson {
  readonly coordinates: string
  readonly topic: string
  readonly partition: number
  readonly offset: string
  readonly timestamp: string
  readonly key: ShownBytes | null
  /** Printable key (as group keys are shown). */
  readonly keyDisplay: string
  readonly value: ShownBytes | null
  readonly reason: string | undefined
  readonly errorName: string | undefined
  readonly errorMessage: string | undefined
  readonly failedAt: string | undefined
  readonly component: string | undefined
  readonly consumerGroup: string | undefined
  readonly id: string | undefined
  readonly groupKey: string | undefined
  readonly source: string | undefined
  /** Every `detour-*` header, decoded (`detour-group-key` as core displays group keys). */
  readonly detourHeaders: Readonly<Record<string, string>>
  /** Every other header. */
  readonly userHeaders: Readonly<Record<string, ShownHeader>>
  /** Set when the ledger says it was replayed. */
  readonly replayed?: { readonly at: string; readonly to: string; readonly target: string; readonly count: number }
}

export function deadLetterJson(deadLetter: DeadLetter, options: { withValue?: boolean } = {}): DeadLetterJson {
  const detourHeaders: Record<string, string> = {}
  const user: Record<string, ShownHeader> = {}
  for (const [name, value] of Object.entries(deadLetter.headers)) {
    if (value === undefined) continue
    if (name.startsWith('detour-')) {
      if (name === DetourHeaders.GROUP_KEY) detourHeaders[name] = displayGroupKey(headerBuffer(deadLetter.headers, name) ?? null)
      else detourHeaders[name] = headerString(deadLetter.headers, name) ?? ''
    } else {
      user[name] = Array.isArray(value) ? value.map(showHeaderValue) : showHeaderValue(value)
    }
  }
  const c = deadLetter.coordinates
  return {
    coordinates: coordinatesText(c),
    topic: c.topic,
    partition: c.partition,
    offset: c.offset,
    timestamp: deadLetter.timestamp,
    key: deadLetter.key === null ? null : showBytes(deadLetter.key),
    keyDisplay: displayKey(deadLetter.key),
    value: options.withValue === false || deadLetter.value === null ? null : showBytes(deadLetter.value),
    reason: deadLetter.reason,
    errorName: deadLetter.errorName,
    errorMessage: deadLetter.errorMessage,
    failedAt: deadLetter.failedAt,
    component: deadLetter.component,
    consumerGroup: deadLetter.consumerGroup,
    id: deadLetter.id,
    groupKey: deadLetter.groupKey === undefined ? undefined : displayGroupKey(deadLetter.groupKey),
    source: deadLetter.source ? `${deadLetter.source.topic}/${deadLetter.source.partition}/${deadLetter.source.offset}` : undefined,
    detourHeaders,
    userHeaders: user,
  }
}


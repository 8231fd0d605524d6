import type { IHeaders, KafkaMessage, Message } from 'kafkajs'
import { MalformedRecordError } from '../errors/index.js'
import { DetourHeaders, type RedirectReason } from '../headers/header-names.js'
import { headerString } from '../headers/header-values.js'
import type { GroupKey } from '../model/group-key.js'
import { parseMessageId, type SourceCoordinates } from '../model/message-id.js'

const SEPARATOR = 0x7c // '|': never part of a message id

/**
 * Redirect record key: `<group key bytes>|<id>`, or just `<id>` for a keyless message.
 * Unique per id, so a tombstone (and compaction) removes exactly that record.
 */
export function redirectKey(groupKey: GroupKey, id: string): Buffer {
  const idBytes = Buffer.from(id, 'utf8')
  if (groupKey === null) return idBytes
  const out = Buffer.allocUnsafe(groupKey.length + 1 + idBytes.length)
  groupKey.copy(out, 0)
  out[groupKey.length] = SEPARATOR
  idBytes.copy(out, groupKey.length + 1)
  return out
}

/** Splits a redirect key into group key and id. Throws {@link MalformedRecordError}. */
export function parseRedirectKey(key: Buffer | null): { groupKey: GroupKey; id: string } {
  if (key === null || key.length === 0) throw new MalformedRecordError('Redirect record without a key')
  const at = key.lastIndexOf(SEPARATOR)
  const id = key.subarray(at + 1).toString('utf8')
  parseMessageId(id)
  return { groupKey: at === -1 ? null : key.subarray(0, at), id }
}

export interface RedirectRecordInput {
  readonly source: SourceCoordinates
  readonly id: string
  readonly groupKey: GroupKey
  readonly reason: RedirectReason
  readonly consumerGroup: string
  readonly now?: Date
}

/** The redirect record written by the main app: the id is pending until a tombstone with the same key. */
export function buildRedirectRecord(input: RedirectRecordInput): Message {
  const headers: IHeaders = {
    [DetourHeaders.ID]: input.id,
    [DetourHeaders.REASON]: input.reason,
    [DetourHeaders.ORIGINAL_TOPIC]: input.source.topic,
    [DetourHeaders.ORIGINAL_PARTITION]: String(input.source.partition),
    [DetourHeaders.ORIGINAL_OFFSET]: input.source.offset,
    [DetourHeaders.CONSUMER_GROUP]: input.consumerGroup,
    [DetourHeaders.REDIRECTED_AT]: (input.now ?? new Date()).toISOString(),
  }
  if (input.groupKey !== null) headers[DetourHeaders.GROUP_KEY] = input.groupKey
  return {
    partition: input.source.partition,
    key: redirectKey(input.groupKey, input.id),
    value: Buffer.from(input.id, 'utf8'),
    headers,
  }
}

/** The tombstone written by the retry worker when a message is resolved: same key, null value. */
export function buildTombstone(input: { partition: number; id: string; groupKey: GroupKey }): Message {
  const headers: IHeaders = { [DetourHeaders.ID]: input.id }
  if (input.groupKey !== null) headers[DetourHeaders.GROUP_KEY] = input.groupKey
  return { partition: input.partition, key: redirectKey(input.groupKey, input.id), value: null, headers }
}

export type RedirectEntry =
  | { readonly kind: 'pending'; readonly groupKey: GroupKey; readonly id: string }
  | { readonly kind: 'released'; readonly groupKey: GroupKey; readonly id: string }

/**
 * Reads a redirect-topic record. The key is authoritative (it is what compaction sees); a `detour-id`
 * header, when present, must agree with it. Throws {@link MalformedRecordError}.
 */
export function decodeRedirectRecord(message: Pick<KafkaMessage, 'key' | 'value' | 'headers'>): RedirectEntry {
  const { groupKey, id } = parseRedirectKey(message.key)
  const headerId = headerString(message.headers, DetourHeaders.ID)
  if (headerId !== undefined && headerId !== id) {
    throw new MalformedRecordError(`Redirect record key names id "${id}" but header ${DetourHeaders.ID} says "${headerId}"`)
  }
  return { kind: message.value === null ? 'released' : 'pending', groupKey, id }
}

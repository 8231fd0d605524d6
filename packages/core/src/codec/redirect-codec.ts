import type { IHeaders, KafkaMessage, Message } from 'kafkajs'
import { MalformedRecordError } from '../errors/index.js'
import { DetourHeaders, type RedirectReason } from '../headers/header-names.js'
import { headerString } from '../headers/header-values.js'
import { KEYLESS_GROUP_PREFIX, groupKeyToStoreKey, type GroupKey } from '../model/group-key.js'
import { parseMessageId, type SourceCoordinates } from '../model/message-id.js'

/** `|`: separates the group key from the id in a redirect key. Never part of an id. */
export const REDIRECT_KEY_SEPARATOR = 0x7c

/**
 * Redirect record key: `<group key bytes>|<id>`, or just `<id>` for a keyless message.
 * Unique per id, so a tombstone (and compaction) removes exactly that record.
 */
export function redirectKey(groupKey: GroupKey, id: string): Buffer {
  const idBytes = Buffer.from(id, 'utf8')
  if (groupKey === null) return idBytes
  const out = Buffer.allocUnsafe(groupKey.length + 1 + idBytes.length)
  groupKey.copy(out, 0)
  out[groupKey.length] = REDIRECT_KEY_SEPARATOR
  idBytes.copy(out, groupKey.length + 1)
  return out
}

/** Splits a redirect key into group key and id. Throws {@link MalformedRecordError}. */
export function parseRedirectKey(key: Buffer | null): { groupKey: GroupKey; id: string } {
  if (key === null || key.length === 0) throw new MalformedRecordError('Redirect record without a key')
  const at = key.lastIndexOf(REDIRECT_KEY_SEPARATOR)
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

export interface TombstoneInput {
  readonly partition: number
  readonly id: string
  readonly groupKey: GroupKey
  /** The main app's consumer group: followers of another group sharing the topic ignore the tombstone. */
  readonly consumerGroup: string
}

/** The tombstone that releases an id (written by the retry worker, or the main app): same key, null value. */
export function buildTombstone(input: TombstoneInput): Message {
  const headers: IHeaders = { [DetourHeaders.ID]: input.id, [DetourHeaders.CONSUMER_GROUP]: input.consumerGroup }
  if (input.groupKey !== null) headers[DetourHeaders.GROUP_KEY] = input.groupKey
  return { partition: input.partition, key: redirectKey(input.groupKey, input.id), value: null, headers }
}

/**
 * Key of the barrier records the retry worker writes to a redirect partition: no redirect key looks like it
 * (those end with an id, `<topic>/<partition>/<offset>`). Null value: compaction keeps the latest per
 * partition and then removes it.
 */
export const BARRIER_KEY = Buffer.from('\u0000detour-barrier', 'latin1')

/**
 * A barrier record. A follower (reading `read_committed`) reaches the offset after it only once every
 * transaction that was open on the partition when it was written is decided, and every record written before
 * it is applied: the barrier of the retry worker, which reads retry records while hand-off transactions are
 * open (the last stable offset alone would stop before them).
 */
export function buildBarrierRecord(partition: number, consumerGroup: string): Message {
  return { partition, key: BARRIER_KEY, value: null, headers: { [DetourHeaders.CONSUMER_GROUP]: consumerGroup } }
}

/** True for a barrier record (see {@link buildBarrierRecord}): followers skip it. */
export function isBarrierRecord(message: { key: Buffer | null }): boolean {
  const key = message.key
  return key !== null && key.length === BARRIER_KEY.length && key[0] === 0 && key.equals(BARRIER_KEY)
}

export type RedirectEntry =
  | { readonly kind: 'pending'; readonly groupKey: GroupKey; readonly id: string; readonly consumerGroup: string | undefined }
  | { readonly kind: 'released'; readonly groupKey: GroupKey; readonly id: string; readonly consumerGroup: string | undefined }

/**
 * Reads a redirect-topic record. The key is authoritative (it is what compaction sees); a `detour-id`
 * header, when present, must agree with it. `consumerGroup` is the group that wrote it, when the record
 * says (tombstones written before 0.2 do not). Throws {@link MalformedRecordError}.
 */
export function decodeRedirectRecord(message: Pick<KafkaMessage, 'key' | 'value' | 'headers'>): RedirectEntry {
  const { groupKey, id } = parseRedirectKey(message.key)
  const headerId = headerString(message.headers, DetourHeaders.ID)
  if (headerId !== undefined && headerId !== id) {
    throw new MalformedRecordError(`Redirect record key names id "${id}" but header ${DetourHeaders.ID} says "${headerId}"`)
  }
  const consumerGroup = headerString(message.headers, DetourHeaders.CONSUMER_GROUP)
  return { kind: message.value === null ? 'released' : 'pending', groupKey, id, consumerGroup }
}

/** A redirect record as the group store needs it: the group's store key and the offset part of the id. */
export interface RedirectUpdate {
  readonly pending: boolean
  readonly storeKey: string
  readonly offset: string
}

/**
 * The redirect-record decoder of the followers' hot path, for one redirect partition. It accepts what
 * {@link decodeRedirectRecord} accepts for that partition, without building strings it does not need:
 * the key must be `<group key>|<topic>/<partition>/<digits>` (or that id alone for keyless), a `detour-id`
 * header, if present, must equal the id bytes, and a `detour-consumer-group` header, if present, must be
 * the follower's group. Anything else returns `undefined`: the caller then takes the full decoder, which
 * validates and says what is wrong. `redirect-codec.test.ts` checks that both agree.
 */
export class RedirectPartitionDecoder {
  private readonly prefix: Buffer
  private readonly group: Buffer

  constructor(
    readonly sourceTopic: string,
    readonly partition: number,
    consumerGroup: string,
  ) {
    this.prefix = Buffer.from(`${sourceTopic}/${partition}/`, 'latin1')
    this.group = Buffer.from(consumerGroup, 'utf8')
  }

  decodeFast(message: { key: Buffer | null; value: Buffer | null; headers?: IHeaders }): RedirectUpdate | undefined {
    const key = message.key
    if (key === null || key.length === 0) return undefined
    const prefix = this.prefix
    const at = key.lastIndexOf(REDIRECT_KEY_SEPARATOR)
    const idStart = at + 1
    const digitsStart = idStart + prefix.length
    const digits = key.length - digitsStart
    if (digits < 1 || digits > 19) return undefined
    if (key.compare(prefix, 0, prefix.length, idStart, digitsStart) !== 0) return undefined
    for (let i = digitsStart; i < key.length; i++) {
      const c = key[i]!
      if (c < 0x30 || c > 0x39) return undefined
    }
    const headers = message.headers
    if (headers !== undefined) {
      // kafkajs delivers a header without a value as null: anything but a string or bytes goes to the full decoder.
      const id = headers[DetourHeaders.ID]
      if (id !== undefined) {
        const value: unknown = Array.isArray(id) ? id[0] : id
        if (typeof value === 'string') {
          if (value !== key.toString('latin1', idStart)) return undefined
        } else if (!Buffer.isBuffer(value) || !key.subarray(idStart).equals(value)) {
          return undefined
        }
      }
      const group = headers[DetourHeaders.CONSUMER_GROUP]
      if (group !== undefined) {
        const value: unknown = Array.isArray(group) ? group[0] : group
        if (typeof value === 'string') {
          if (!Buffer.from(value, 'utf8').equals(this.group)) return undefined
        } else if (!Buffer.isBuffer(value) || !this.group.equals(value)) {
          return undefined
        }
      }
    }
    return {
      pending: message.value !== null,
      storeKey: at === -1 ? `${KEYLESS_GROUP_PREFIX}${key.toString('latin1', idStart)}` : key.toString('latin1', 0, at),
      offset: key.toString('latin1', digitsStart),
    }
  }

  /**
   * The full decoder, with this partition's checks: the id must belong to this source partition. Returns
   * `foreign` for a well-formed record of another consumer group (a topic shared by mistake). Throws
   * {@link MalformedRecordError} with what is wrong.
   */
  decode(message: Pick<KafkaMessage, 'key' | 'value' | 'headers'>, consumerGroup: string): RedirectUpdate | { readonly foreign: string } {
    const entry = decodeRedirectRecord(message)
    const { topic, partition, offset } = parseMessageId(entry.id)
    if (topic !== this.sourceTopic || partition !== this.partition) {
      throw new MalformedRecordError(`Redirect record id ${entry.id} does not belong to ${this.sourceTopic}/${this.partition}`)
    }
    if (entry.consumerGroup !== undefined && entry.consumerGroup !== consumerGroup) return { foreign: entry.consumerGroup }
    return { pending: entry.kind === 'pending', storeKey: groupKeyToStoreKey(entry.groupKey, entry.id), offset }
  }
}

import type { KafkaMessage } from 'kafkajs'
import { DetourConfigError } from '../errors/index.js'

/**
 * The key of an ordering group, as raw bytes. `null` means the message belongs to no group: it never
 * waits behind others, and on its own failure it forms a group of one.
 */
export type GroupKey = Buffer | null

/**
 * Chooses the ordering group of a message. The default is the message key. Return a string, bytes
 * (`Buffer` or any `Uint8Array`) or a number; return `null` (or `undefined`) for "no ordering constraint".
 */
export type GroupKeyFn = (message: KafkaMessage, topic: string, partition: number) => Buffer | Uint8Array | string | number | bigint | null | undefined

export const defaultGroupKey: GroupKeyFn = (message) => message.key ?? null

/**
 * Calls the group-key function and brings its answer to bytes: strings as UTF-8, numbers and bigints as
 * their decimal text, `Uint8Array` views as their bytes. Anything else is a bug in the function: it throws
 * a {@link DetourConfigError} naming the type, and the message goes to the error topic with it.
 */
export function resolveGroupKey(fn: GroupKeyFn, message: KafkaMessage, topic: string, partition: number): GroupKey {
  const key: unknown = fn(message, topic, partition)
  if (key === null || key === undefined) return null
  if (Buffer.isBuffer(key)) return key
  if (typeof key === 'string') return Buffer.from(key, 'utf8')
  if (key instanceof Uint8Array) return Buffer.from(key.buffer, key.byteOffset, key.byteLength)
  if ((typeof key === 'number' && Number.isFinite(key)) || typeof key === 'bigint') return Buffer.from(String(key), 'utf8')
  throw new DetourConfigError(
    'groupKey',
    `must return a string, bytes, a finite number or null; it returned ${describeValue(key)} for ${topic}/${partition}/${message.offset}`,
  )
}

function describeValue(value: unknown): string {
  if (typeof value === 'number') return `the number ${value}`
  if (typeof value === 'object') return `an object (${Object.prototype.toString.call(value)})`
  return `a ${typeof value}`
}

/**
 * Prefix of the store key of a keyless message's private group (U+0100: no latin1 string contains it, so
 * it never collides with a real key's store form).
 */
export const KEYLESS_GROUP_PREFIX = '\u0100'

/**
 * Prefix of the group of a retry record the worker cannot decode (U+0101: unlike real keys and keyless
 * groups); such a record is alone in its group.
 */
export const MALFORMED_GROUP_PREFIX = '\u0101malformed/'

/**
 * The in-memory form of a group key: a string that maps bytes 1:1 (latin1), so non-UTF-8 keys
 * never collide. Keyless messages get a private group named after their id, prefixed with U+0100 (which no
 * latin1 string contains).
 */
export function groupKeyToStoreKey(key: GroupKey, id: string): string {
  // latin1 strings only hold U+0000..U+00FF, so a U+0100 prefix can never collide with a real key.
  return key === null ? `${KEYLESS_GROUP_PREFIX}${id}` : key.toString('latin1')
}

/** A printable form for logs and metrics: UTF-8 when valid, base64 otherwise. */
export function displayGroupKey(key: GroupKey): string {
  if (key === null) return '(none)'
  const text = key.toString('utf8')
  if (Buffer.from(text, 'utf8').equals(key)) return text.length > 120 ? `${text.slice(0, 120)}…` : text
  return `base64:${key.toString('base64').slice(0, 160)}`
}

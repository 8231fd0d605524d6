import type { KafkaMessage } from 'kafkajs'

/**
 * The key of an ordering group, as raw bytes. `null` means the message belongs to no group: it never
 * waits behind others, and on its own failure it forms a group of one.
 */
export type GroupKey = Buffer | null

/**
 * Chooses the ordering group of a message. The default is the message key. Return a string or bytes;
 * return `null` for "no ordering constraint".
 */
export type GroupKeyFn = (message: KafkaMessage, topic: string, partition: number) => Buffer | string | null

export const defaultGroupKey: GroupKeyFn = (message) => message.key ?? null

export function resolveGroupKey(fn: GroupKeyFn, message: KafkaMessage, topic: string, partition: number): GroupKey {
  const key = fn(message, topic, partition)
  if (key === null || key === undefined) return null
  return typeof key === 'string' ? Buffer.from(key, 'utf8') : key
}

/**
 * The in-memory form of a group key: a string that maps bytes 1:1 (latin1), so non-UTF-8 keys
 * never collide. Keyless messages get a private group named after their id, prefixed with U+0100 (which no
 * latin1 string contains).
 */
export function groupKeyToStoreKey(key: GroupKey, id: string): string {
  // latin1 strings only hold U+0000..U+00FF, so a U+0100 prefix can never collide with a real key.
  return key === null ? `\u0100${id}` : key.toString('latin1')
}

/** A printable form for logs and metrics: UTF-8 when valid, base64 otherwise. */
export function displayGroupKey(key: GroupKey): string {
  if (key === null) return '(none)'
  const text = key.toString('utf8')
  if (Buffer.from(text, 'utf8').equals(key)) return text.length > 120 ? `${text.slice(0, 120)}…` : text
  return `base64:${key.toString('base64').slice(0, 160)}`
}

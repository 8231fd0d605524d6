// Retry records and entries for unit tests (no broker).
import type { KafkaMessage } from 'kafkajs'
import { buildRetryRecord, detourTopics, messageId, type DetourTopics } from '@detour/core'
import { createRetryEntry, type RetryEntry } from '../worker/retry-entry.js'

export const unitTopics: DetourTopics = detourTopics('orders', 'app')

/** A retry record at `offset` of retry partition `partition` for a source message of group `key` (the group `app`). */
export function retryMessage(offset: string, key: string | null, options: { sourceOffset?: string; partition?: number; value?: string } = {}): KafkaMessage {
  const source = { topic: 'orders', partition: options.partition ?? 0, offset: options.sourceOffset ?? offset }
  const record = buildRetryRecord({
    source,
    id: messageId(source),
    groupKey: key === null ? null : Buffer.from(key),
    reason: 'failure',
    consumerGroup: 'app',
    message: { key: key === null ? null : Buffer.from(key), value: Buffer.from(options.value ?? 'v'), headers: {}, timestamp: '0' },
  })
  return { ...record, offset, timestamp: '0', attributes: 0, size: 0 } as unknown as KafkaMessage
}

/** The entry the worker builds for {@link retryMessage}. */
export function retryEntry(offset: string, key: string | null, options: { sourceOffset?: string; partition?: number } = {}): RetryEntry {
  return createRetryEntry(unitTopics.retry, options.partition ?? 0, retryMessage(offset, key, options), unitTopics, 'app')
}

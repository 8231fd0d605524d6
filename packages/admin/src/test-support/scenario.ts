import type { IHeaders } from 'kafkajs'
import { buildDeadLetterRecord, buildRedirectRecord, buildRetryRecord, buildTombstone, messageId, type DeadLetterReason, type DetourTopics } from '@detour/core'
import { resolveScope, type AdminScope } from '../model/scope.js'
import type { WrittenRecord } from '../kafka/topic-log.js'
import { MemoryKafka } from './memory-kafka.js'

export const GROUP = 'orders-app'
export const SOURCE = 'orders'
export const T0 = Date.parse('2024-05-01T12:00:00.000Z')

export interface Scenario {
  readonly kafka: MemoryKafka
  readonly scope: AdminScope
  readonly topics: DetourTopics
  /** The main app's hand-off for source message `partition`/`offset`: redirect record, then retry record. */
  redirect(partition: number, offset: number, key: string | null, options?: { reason?: 'failure' | 'ordering'; at?: number; error?: Error; withoutRetry?: boolean }): string
  /** The worker's tombstone. */
  tombstone(partition: number, offset: number, key: string | null): void
  /** A dead letter of source message `partition`/`offset`, on the error topic. */
  deadLetter(
    partition: number,
    offset: number,
    key: string | null,
    options?: { reason?: DeadLetterReason; value?: Buffer | null; headers?: IHeaders; error?: Error; at?: number; withoutValue?: boolean; errorPartition?: number },
  ): WrittenRecord
}

/** Topics of one source topic (3 partitions) for consumer group orders-app, in memory. */
export function scenario(partitions = 3): Scenario {
  const kafka = new MemoryKafka()
  const scope = resolveScope({ consumerGroup: GROUP, sourceTopics: [SOURCE] })
  const topics = scope.topics.get(SOURCE)!
  kafka.createTopicSync(topics.source, partitions)
  kafka.createTopicSync(topics.retry, partitions)
  kafka.createTopicSync(topics.redirect, partitions, true)
  kafka.createTopicSync(topics.error, partitions)
  const keyOf = (key: string | null): Buffer | null => (key === null ? null : Buffer.from(key))
  return {
    kafka,
    scope,
    topics,
    redirect(partition, offset, key, options = {}) {
      const source = { topic: SOURCE, partition, offset: String(offset) }
      const id = messageId(source)
      const now = new Date(options.at ?? T0)
      const groupKey = keyOf(key)
      const reason = options.reason ?? 'failure'
      kafka.append(topics.redirect, buildRedirectRecord({ source, id, groupKey, reason, consumerGroup: GROUP, now }))
      if (!options.withoutRetry) {
        const message = { key: groupKey, value: Buffer.from(`value-${offset}`), headers: { trace: 't' }, timestamp: String(T0) }
        kafka.append(topics.retry, buildRetryRecord({ source, message, id, groupKey, reason, consumerGroup: GROUP, error: options.error, now }))
      }
      return id
    },
    tombstone(partition, offset, key) {
      kafka.append(topics.redirect, buildTombstone({ partition, id: `${SOURCE}/${partition}/${offset}`, groupKey: keyOf(key), consumerGroup: GROUP }))
    },
    deadLetter(partition, offset, key, options = {}) {
      const source = { topic: SOURCE, partition, offset: String(offset) }
      const record = buildDeadLetterRecord({
        reason: options.reason ?? 'exhausted',
        message: {
          key: keyOf(key),
          value: options.value === undefined ? Buffer.from(`value-${offset}`) : options.value,
          headers: options.headers ?? { trace: Buffer.from('trace-1') },
          timestamp: String(T0 - 60_000),
        },
        source,
        id: messageId(source),
        groupKey: keyOf(key) ?? undefined,
        consumerGroup: GROUP,
        error: options.error ?? Object.assign(new Error('database down'), { name: 'ConnectionError' }),
        component: 'retry-worker',
        attempts: 5,
        withoutValue: options.withoutValue,
        now: new Date(options.at ?? T0),
      })
      return kafka.append(topics.error, { ...record, partition: options.errorPartition ?? partition }, options.at ?? T0)
    },
  }
}

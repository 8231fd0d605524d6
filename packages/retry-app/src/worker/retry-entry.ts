import type { KafkaMessage } from 'kafkajs'
import {
  MALFORMED_GROUP_PREFIX,
  MalformedRecordError,
  decodeRetryRecord,
  groupKeyToStoreKey,
  type DetourTopics,
  type RetryEnvelope,
} from '@detour/core'

/** Where a retry record is in its life: waiting behind its group, being worked on, held, or done. */
export type EntryState = 'queued' | 'active' | 'held' | 'resolved'

/** One retry record in a partition scheduler, with the attempt state kept while the worker runs. */
export interface RetryEntry {
  readonly retryTopic: string
  readonly retryPartition: number
  /** Offset of the retry record (a decimal string; 64-bit). */
  readonly offset: string
  readonly message: KafkaMessage
  /** The Detour topics this retry topic belongs to (from configuration). */
  readonly topics: DetourTopics
  /** The decoded Detour headers; `undefined` when the record is malformed. */
  readonly envelope: RetryEnvelope | undefined
  /** Why the record is malformed. */
  readonly malformed: MalformedRecordError | undefined
  /**
   * The ordering group within the retry partition (core's store key of the group key; a keyless
   * message is its own group; a malformed record is alone too).
   */
  readonly groupKey: string
  /**
   * Resolves once the redirect follower has applied everything written to the redirect partition before
   * this record's batch was fetched (and, for a partition taken over, before the previous owner let go).
   * No attempt starts before it.
   */
  barrier: Promise<void> | undefined
  state: EntryState
  /** Handler invocations so far. */
  attempts: number
  /** `Date.now()` of the first attempt in this worker. */
  firstAttemptAt: number | undefined
  firstError: unknown
  firstFailedAt: Date | undefined
  lastError: unknown
}

/**
 * Wraps a retry record. Records whose Detour headers are missing or garbled, or that belong to another
 * consumer group, source topic or source partition than their retry topic and partition say (records of
 * source partition N go to retry partition N), are marked malformed.
 */
export function createRetryEntry(
  retryTopic: string,
  retryPartition: number,
  message: KafkaMessage,
  topics: DetourTopics,
  consumerGroup: string,
): RetryEntry {
  let envelope: RetryEnvelope | undefined
  let malformed: MalformedRecordError | undefined
  try {
    envelope = decodeRetryRecord(message)
    if (envelope.consumerGroup !== consumerGroup) {
      throw new MalformedRecordError(
        `Retry record ${envelope.id} names consumer group "${envelope.consumerGroup.slice(0, 200)}" but ${retryTopic} serves "${consumerGroup}"`,
      )
    }
    if (envelope.source.topic !== topics.source) {
      throw new MalformedRecordError(`Retry record ${envelope.id} names source topic "${envelope.source.topic}" but ${retryTopic} serves "${topics.source}"`)
    }
    if (envelope.source.partition !== retryPartition) {
      throw new MalformedRecordError(
        `Retry record ${envelope.id} of source partition ${envelope.source.partition} is on partition ${retryPartition} of ${retryTopic}; records of source partition N belong on retry partition N`,
      )
    }
  } catch (error) {
    envelope = undefined
    malformed = error instanceof MalformedRecordError ? error : new MalformedRecordError(`Retry record cannot be decoded: ${String(error)}`)
  }
  return {
    retryTopic,
    retryPartition,
    offset: message.offset,
    message,
    topics,
    envelope,
    malformed,
    // Outside latin1 (never a real key's store form) and unlike the keyless prefix: a malformed record is alone.
    groupKey: envelope ? groupKeyToStoreKey(envelope.groupKey, envelope.id) : `${MALFORMED_GROUP_PREFIX}${message.offset}`,
    barrier: undefined,
    state: 'queued',
    attempts: 0,
    firstAttemptAt: undefined,
    firstError: undefined,
    firstFailedAt: undefined,
    lastError: undefined,
  }
}

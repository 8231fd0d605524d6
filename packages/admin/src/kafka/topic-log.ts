import type { IHeaders, Message } from 'kafkajs'

/** One record as read from a topic (read_committed: aborted records and control records never appear). */
export interface LogRecord {
  readonly topic: string
  readonly partition: number
  /** Decimal offset string (64-bit). */
  readonly offset: string
  readonly key: Buffer | null
  readonly value: Buffer | null
  readonly headers: IHeaders
  /** Record timestamp, epoch milliseconds as a decimal string. */
  readonly timestamp: string
}

/** The readable offsets of a partition: `[low, high)`, where `high` is the last stable offset. */
export interface PartitionBounds {
  readonly low: bigint
  readonly high: bigint
}

/** Offsets `[from, to)` of one partition to read. */
export interface PartitionRange {
  readonly topic: string
  readonly partition: number
  readonly from: bigint
  readonly to: bigint
}

/** How far a read of one range got. `complete` is false when it stopped early (see {@link TopicLog.read}). */
export interface RangeOutcome extends PartitionRange {
  /** The next offset after the last one read (or skipped: aborted, control or compacted records). */
  readonly reached: bigint
  readonly complete: boolean
}

/**
 * What the operator surface reads from Kafka. The real implementation ({@link KafkaTopicLog}) uses the
 * kafkajs admin API and throwaway consumers that never commit; unit tests use an in-memory stand-in.
 */
export interface TopicLog {
  /** Bounds of every partition, or `undefined` when the topic does not exist. */
  bounds(topic: string): Promise<Map<number, PartitionBounds> | undefined>
  /** Per partition, the first offset whose timestamp is at or after `timestampMs` (`high` when none is). */
  offsetsAt(topic: string, timestampMs: number): Promise<Map<number, bigint>>
  /** Offsets a consumer group committed on a topic (partitions without a commit are absent). */
  committedOffsets(groupId: string, topic: string): Promise<Map<number, bigint>>
  /**
   * Reads the ranges in offset order per partition, read_committed, calling `onRecord` for each record.
   * A partition whose remaining offsets hold no readable record (compacted away at its end) is reported
   * with `complete: false` instead of waiting forever.
   */
  read(ranges: readonly PartitionRange[], onRecord: (record: LogRecord) => void): Promise<RangeOutcome[]>
}

/** Where a written record landed. */
export interface WrittenRecord {
  readonly topic: string
  readonly partition: number
  readonly offset: string
}

/** Records for one topic, written in one call. */
export interface TopicMessages {
  readonly topic: string
  readonly messages: readonly Message[]
}

/** What the operator surface writes. Every write waits for the broker's acknowledgement (acks=all). */
export interface TopicWriter {
  /** Writes records (idempotent producer) and returns where each landed, in order. */
  send(batch: TopicMessages): Promise<WrittenRecord[]>
  /** Creates a topic unless it exists. */
  createTopic(spec: { topic: string; partitions: number; compact: boolean }): Promise<void>
  /**
   * A writer whose writes are Kafka transactions under `transactionalId`. Claiming it (inside this call)
   * fences any earlier writer with the same id and settles its open transaction.
   */
  transactional(transactionalId: string): Promise<TransactionalWriter>
  close(): Promise<void>
}

export interface TransactionalWriter {
  /** Writes every batch in one transaction: all of them become visible to read_committed readers, or none. */
  commit(batches: readonly TopicMessages[]): Promise<WrittenRecord[]>
  close(): Promise<void>
}

import { topicPartitionKey, type Logger, type TopicPartition } from '@detour/core'

/** How the gate pauses and resumes fetching (the kafkajs consumer, or a stand-in). */
export interface FetchControl {
  pause(partitions: readonly TopicPartition[]): void
  resume(partitions: readonly TopicPartition[]): void
}

export interface BufferGateOptions {
  /** `maxBufferedMessages`. */
  readonly max: number
  readonly control: FetchControl
  /** Unresolved records that wait for an operator (held groups and what is queued behind them). */
  readonly blocked: () => number
  /** Held groups now (for the log line). */
  readonly heldGroups: () => number
  /** The buffered-messages gauge moves by this delta. */
  readonly onBufferedChange: (delta: number) => void
  readonly logger: Logger
  readonly onError: (message: string, error: unknown) => void
}

/**
 * Bounds the unresolved retry records in memory (`maxBufferedMessages`). Above the bound, a partition that
 * delivers more is paused; paused partitions resume once the records that can still move are down to half
 * of the room the blocked ones leave. Records of held groups wait for an operator, not for the buffer:
 * counting them as draining would keep partitions paused forever, other groups and partitions included.
 * Only when held work alone fills the buffer does everything wait for a release (the memory bound).
 */
export class BufferGate {
  private total = 0
  private readonly paused = new Map<string, TopicPartition>()
  /** The "buffer full of held groups" warning was logged (reset once it no longer applies). */
  private warnedHeldFull = false
  private closed = false

  constructor(private readonly options: BufferGateOptions) {}

  get buffered(): number {
    return this.total
  }

  get pausedPartitions(): number {
    return this.paused.size
  }

  isPaused(topic: string, partition: number): boolean {
    return this.paused.has(topicPartitionKey(topic, partition))
  }

  /** Records entered the buffer. */
  added(count: number): void {
    if (count === 0) return
    this.total += count
    this.options.onBufferedChange(count)
  }

  /** Records left the buffer (resolved, or dropped with their partition): paused partitions may go on. */
  removed(count: number): void {
    if (count === 0) return
    this.total -= count
    this.options.onBufferedChange(-count)
    this.resumeIfDrained()
  }

  /**
   * After a batch of `partition` was buffered: pauses it when the buffer is full. `pause` pauses the batch's
   * partition in kafkajs (the batch payload's `pause()`).
   */
  afterBatch(partition: TopicPartition, pause: () => void): void {
    if (this.total < this.options.max) return
    // Paused again even when it is marked paused: a partition that delivers is not paused in kafkajs (a
    // consumer restarted after a crash starts with no paused partitions).
    pause()
    const key = topicPartitionKey(partition.topic, partition.partition)
    if (this.paused.has(key)) return
    this.paused.set(key, partition)
    this.options.logger.info('Buffer full; pausing the retry partition', { ...partition, buffered: this.total, maxBufferedMessages: this.options.max })
  }

  /**
   * Resumes the partitions paused for the buffer once the records that can still make progress have
   * drained to half of the room left (also called when a group is held: it no longer drains).
   */
  resumeIfDrained(): void {
    if (this.paused.size === 0 || this.closed) return
    const max = this.options.max
    const blocked = this.options.blocked()
    if (blocked >= max) {
      if (!this.warnedHeldFull) {
        this.warnedHeldFull = true
        this.options.logger.warn('The buffer is full of held groups; retry partitions stay paused until a held group is released', {
          buffered: this.total,
          blocked,
          heldGroups: this.options.heldGroups(),
          maxBufferedMessages: max,
        })
      }
      return
    }
    this.warnedHeldFull = false
    if (this.total - blocked > Math.floor((max - blocked) / 2)) return
    const partitions = [...this.paused.values()]
    this.paused.clear()
    this.resume(partitions)
    this.options.logger.info('Buffer drained; resuming retry partitions', { partitions: partitions.length, buffered: this.total })
  }

  /**
   * After a group join: kafkajs restarts a crashed consumer with nothing paused, and GROUP_JOIN comes
   * before the first fetch of the new session. Pauses again what this gate keeps paused.
   */
  reapply(): void {
    if (this.paused.size === 0 || this.closed) return
    try {
      this.options.control.pause([...this.paused.values()])
    } catch (error) {
      this.options.onError('Could not pause retry partitions again after the consumer joined its group', error)
    }
  }

  /** The partition left this worker: forgets its pause (and resumes it in kafkajs, should it come back). */
  forget(topic: string, partition: number): void {
    const key = topicPartitionKey(topic, partition)
    const paused = this.paused.get(key)
    if (!paused) return
    this.paused.delete(key)
    if (!this.closed) this.resume([paused])
  }

  /** Stopping: nothing resumes any more. */
  close(): void {
    this.closed = true
  }

  private resume(partitions: readonly TopicPartition[]): void {
    try {
      this.options.control.resume(partitions)
    } catch (error) {
      this.options.onError('Could not resume retry partitions', error)
    }
  }
}

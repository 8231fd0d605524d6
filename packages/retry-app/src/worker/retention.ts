import { someInChain, topicPartitionKey, type Logger } from '@detour/core'
import type { WorkerAdmin } from './worker-admin.js'

export interface RetentionOptions {
  readonly admin: Pick<WorkerAdmin, 'deleteRecords' | 'logStartOffsets'>
  /** `purgeResolvedRecords`. */
  readonly purge: boolean
  /** Least time between two purges of one partition. */
  readonly intervalMs: number
  readonly logger: Logger
  readonly metrics: {
    purged(sourceTopic: string): void
    purgeFailed(sourceTopic: string): void
    deletedUnread(sourceTopic: string, records: bigint): void
  }
  /** Records were deleted before they were retried (an `error` event). */
  readonly onDeletedUnread: (error: Error) => void
  readonly now?: () => number
}

/** kafkajs errors that say the worker may not delete records (no `DELETE` ACL), or the broker cannot. */
function isPermanentPurgeError(error: unknown): boolean {
  return someInChain(
    error,
    (e) =>
      (typeof e.type === 'string' && /AUTHORIZATION_FAILED|UNSUPPORTED_VERSION|INVALID_REQUEST/.test(e.type)) ||
      e.name === 'KafkaJSServerDoesNotSupportApiKey' ||
      e.name === 'KafkaJSNotImplemented',
  )
}

/**
 * The retry topic keeps records without a time or size limit (a held group may wait for days), so the
 * worker deletes what it resolved: after a successful commit, `deleteTopicRecords` up to the committed
 * offset (everything below it is resolved and tombstoned), at most every `intervalMs` per partition. When
 * the worker may not delete records it warns once and stops purging.
 *
 * At assignment it checks the other direction: a committed offset below the log start offset means
 * records were deleted before the worker read them (retention changed by hand, a purge by another tool).
 */
export class RetryRetention {
  private readonly lastPurge = new Map<string, { at: number; offset: bigint }>()
  private enabled: boolean
  private readonly now: () => number

  constructor(private readonly options: RetentionOptions) {
    this.enabled = options.purge
    this.now = options.now ?? Date.now
  }

  get purging(): boolean {
    return this.enabled
  }

  /** After a successful commit of `offset`: deletes the records below it when the partition is due. */
  async purge(retryTopic: string, sourceTopic: string, partition: number, offset: string): Promise<void> {
    if (!this.enabled) return
    const key = topicPartitionKey(retryTopic, partition)
    const last = this.lastPurge.get(key)
    const target = BigInt(offset)
    if (last && (target <= last.offset || this.now() - last.at < this.options.intervalMs)) return
    // Marked before the request: a slow purge is not started twice.
    this.lastPurge.set(key, { at: this.now(), offset: last?.offset ?? -1n })
    try {
      await this.options.admin.deleteRecords(retryTopic, partition, offset)
      this.lastPurge.set(key, { at: this.now(), offset: target })
      this.options.metrics.purged(sourceTopic)
      this.options.logger.debug('Deleted resolved retry records', { topic: retryTopic, partition, below: offset })
    } catch (error) {
      this.options.metrics.purgeFailed(sourceTopic)
      if (isPermanentPurgeError(error)) {
        this.enabled = false
        this.options.logger.warn(
          'Cannot delete resolved records from the retry topic (no DELETE permission on it, or the broker does not support DeleteRecords); purging stops. ' +
            'The retry topic keeps every record until you grant the permission or set purgeResolvedRecords: false and a retention of your own',
          { topic: retryTopic, partition, error },
        )
        return
      }
      this.options.logger.warn('Deleting resolved retry records failed; trying again at the next purge interval', { topic: retryTopic, partition, error })
    }
  }

  /** Forgets a partition (revoked). */
  forget(retryTopic: string, partition: number): void {
    this.lastPurge.delete(topicPartitionKey(retryTopic, partition))
  }

  /**
   * At assignment: reports partitions whose committed offset is below the log start offset (records
   * deleted before they were retried). Failures to read are logged, not thrown.
   */
  async checkAssigned(retryTopic: string, sourceTopic: string, committed: ReadonlyMap<number, string | undefined>): Promise<void> {
    let logStart: Map<number, bigint>
    try {
      logStart = await this.options.admin.logStartOffsets(retryTopic)
    } catch (error) {
      this.options.logger.warn('Cannot read the log start offsets of the retry topic; records deleted unread would go unnoticed', { topic: retryTopic, error })
      return
    }
    for (const [partition, offset] of committed) {
      if (offset === '-2') {
        // kafkajs commits "earliest" (-2) when the committed offset was out of range: its evidence is gone.
        this.options.logger.warn('The committed offset of a retry partition was reset to "earliest" (kafkajs does so when it is out of range): records may have been deleted before they were retried', {
          topic: retryTopic,
          partition,
        })
        continue
      }
      // -1: never committed.
      if (offset === undefined || offset.startsWith('-')) continue
      const start = logStart.get(partition)
      const position = BigInt(offset)
      if (start === undefined || position >= start) continue
      const lost = start - position
      this.options.metrics.deletedUnread(sourceTopic, lost)
      const message =
        `Retry records were deleted before the worker read them: ${retryTopic}/${partition} was committed at ${offset} ` +
        `but starts at ${start} (${lost} records lost). Check the retry topic's retention (it must be unlimited: retention.ms=-1, retention.bytes=-1)`
      this.options.logger.error(message, { topic: retryTopic, partition, committed: offset, logStartOffset: start.toString(), lost: lost.toString() })
      this.options.onDeletedUnread(new Error(message))
    }
  }
}

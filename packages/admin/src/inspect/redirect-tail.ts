import { topicPartitionKey } from '@detour/core'
import type { AdminScope } from '../model/scope.js'
import type { PartitionRange, RangeOutcome, TopicLog } from '../kafka/topic-log.js'
import { PendingIndex } from './pending-index.js'

/** How far the redirect topics were read. */
export interface RedirectProgress {
  readonly sourceTopic: string
  readonly redirectTopic: string
  readonly partition: number
  /** The last stable offset the read went up to. */
  readonly end: bigint
  /** False when the read stopped before `end` (see `TopicLog.read`). */
  readonly complete: boolean
}

/**
 * Reads the redirect topics of a scope into a {@link PendingIndex}, each call from where the previous one
 * stopped up to the partitions' last stable offsets *at the time of the call*: after `catchUp()`, every
 * hand-off and tombstone decided before the call is applied. The CLI calls it once; the console on every
 * refresh (reading only what is new).
 */
export class RedirectTail {
  readonly index: PendingIndex
  private readonly positions = new Map<string, bigint>()
  private running: Promise<RedirectProgress[]> | undefined

  constructor(
    private readonly log: TopicLog,
    private readonly scope: AdminScope,
  ) {
    this.index = new PendingIndex(scope.consumerGroup)
  }

  /**
   * Concurrent callers queue: each one's read starts after its call. `boundsTaken` is called once the last
   * stable offsets this read goes to are taken (a caller reading the retry topics at the same time takes its
   * own bounds after these, so that it sees the retry record of every id this read finds).
   */
  catchUp(boundsTaken?: () => void): Promise<RedirectProgress[]> {
    const previous = this.running ?? Promise.resolve([])
    const next = previous.then(
      () => this.read(boundsTaken),
      () => this.read(boundsTaken),
    )
    this.running = next
    return next
  }

  private async read(boundsTaken: (() => void) | undefined): Promise<RedirectProgress[]> {
    const ranges: PartitionRange[] = []
    const sourceOf = new Map<string, string>()
    for (const topics of this.scope.topics.values()) {
      sourceOf.set(topics.redirect, topics.source)
      const bounds = await this.log.bounds(topics.redirect)
      if (bounds === undefined) continue
      for (const [partition, { low, high }] of bounds) {
        const key = topicPartitionKey(topics.redirect, partition)
        const position = this.positions.get(key) ?? 0n
        ranges.push({ topic: topics.redirect, partition, from: position > low ? position : low, to: high })
      }
    }
    boundsTaken?.()
    const outcomes: RangeOutcome[] = await this.log.read(ranges, (record) => {
      const source = sourceOf.get(record.topic)
      if (source !== undefined) this.index.apply(source, record.partition, record)
    })
    for (const outcome of outcomes) this.positions.set(topicPartitionKey(outcome.topic, outcome.partition), outcome.reached)
    return outcomes.map((outcome) => ({
      sourceTopic: sourceOf.get(outcome.topic) ?? outcome.topic,
      redirectTopic: outcome.topic,
      partition: outcome.partition,
      end: outcome.to,
      complete: outcome.complete,
    }))
  }
}

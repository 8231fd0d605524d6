import type { PartitionRange, TopicLog } from '../kafka/topic-log.js'
import { AdminNotFoundError, AdminUsageError } from '../errors/index.js'
import { errorTopicsOf, type AdminScope } from '../model/scope.js'
import { decodeDeadLetter, failedAtMs, type DeadLetter, type DeadLetterCoordinates } from './dead-letter.js'
import { matchesFilter, type DeadLetterFilter } from './dead-letter-filter.js'

export interface DeadLetterPage {
  /** The matches, newest first, at most `limit`. */
  readonly deadLetters: DeadLetter[]
  /** How many matched in all. */
  readonly matched: number
  /** How many records were read. */
  readonly scanned: number
  /** False when some partition could not be read to its end. */
  readonly complete: boolean
  readonly errorTopics: readonly string[]
}

export interface ListOptions {
  /** @defaultValue 100 */
  readonly limit?: number
}

/**
 * Reads the error topics of a scope: lists dead letters with filters (reading from `since` when given,
 * found by timestamp, to the last stable offset) and fetches one by its coordinates.
 */
export class DeadLetterBrowser {
  constructor(
    private readonly log: TopicLog,
    private readonly scope: AdminScope,
  ) {}

  /** The error topics of the scope (several source topics may share one). */
  get errorTopics(): string[] {
    return [...errorTopicsOf(this.scope).keys()]
  }

  /** The error topic `<partition>:<offset>` refers to, when the scope has exactly one. */
  get defaultErrorTopic(): string | undefined {
    const topics = this.errorTopics
    return topics.length === 1 ? topics[0] : undefined
  }

  /** Reads every dead letter that matches, calling `onMatch` in offset order per partition. */
  async scan(filter: DeadLetterFilter, onMatch: (deadLetter: DeadLetter) => void): Promise<{ scanned: number; complete: boolean }> {
    const ranges: PartitionRange[] = []
    // An error topic shared with source topics outside the scope: only the scope's dead letters.
    const scoped: DeadLetterFilter = { ...filter, sourceTopics: filter.sourceTopics ?? [...this.scope.topics.keys()] }
    for (const errorTopic of errorTopicsOf(this.scope).keys()) {
      const bounds = await this.log.bounds(errorTopic)
      if (bounds === undefined) continue
      const starts = filter.since !== undefined ? await this.log.offsetsAt(errorTopic, filter.since) : undefined
      for (const [partition, { low, high }] of bounds) {
        const start = starts?.get(partition)
        ranges.push({ topic: errorTopic, partition, from: start !== undefined && start > low ? start : low, to: high })
      }
    }
    let scanned = 0
    const outcomes = await this.log.read(ranges, (record) => {
      scanned++
      const deadLetter = decodeDeadLetter(record)
      if (matchesFilter(deadLetter, scoped)) onMatch(deadLetter)
    })
    return { scanned, complete: outcomes.every((outcome) => outcome.complete) }
  }

  async list(filter: DeadLetterFilter, options: ListOptions = {}): Promise<DeadLetterPage> {
    const limit = options.limit ?? 100
    if (!Number.isInteger(limit) || limit < 1) throw new AdminUsageError(`--limit must be a positive integer, got ${limit}`)
    const matches: DeadLetter[] = []
    let matched = 0
    const { scanned, complete } = await this.scan(filter, (deadLetter) => {
      matched++
      matches.push(deadLetter)
      // Keep memory bounded: drop the oldest half of what is kept once it doubles the limit.
      if (matches.length >= limit * 2) {
        matches.sort((a, b) => failedAtMs(b) - failedAtMs(a))
        matches.length = limit
      }
    })
    matches.sort((a, b) => failedAtMs(b) - failedAtMs(a))
    return { deadLetters: matches.slice(0, limit), matched, scanned, complete, errorTopics: this.errorTopics }
  }

  /** One dead letter; {@link AdminNotFoundError} when no readable record sits there. */
  async show(coordinates: DeadLetterCoordinates): Promise<DeadLetter> {
    if (!this.errorTopics.includes(coordinates.topic)) {
      throw new AdminUsageError(`${coordinates.topic} is not an error topic of this scope (${this.errorTopics.join(', ')})`)
    }
    const bounds = await this.log.bounds(coordinates.topic)
    const bound = bounds?.get(coordinates.partition)
    const offset = BigInt(coordinates.offset)
    const where = `${coordinates.topic}/${coordinates.partition}/${coordinates.offset}`
    if (!bound) throw new AdminNotFoundError(`No dead letter at ${where}: ${bounds === undefined ? 'the topic does not exist' : 'no such partition'}`)
    if (offset < bound.low || offset >= bound.high) {
      throw new AdminNotFoundError(`No dead letter at ${where}: readable offsets are ${bound.low}..${bound.high - 1n}`)
    }
    let found: DeadLetter | undefined
    await this.log.read([{ topic: coordinates.topic, partition: coordinates.partition, from: offset, to: offset + 1n }], (record) => {
      if (record.offset === coordinates.offset) found = decodeDeadLetter(record)
    })
    if (!found) throw new AdminNotFoundError(`No dead letter at ${where} (an aborted or control record)`)
    return found
  }
}

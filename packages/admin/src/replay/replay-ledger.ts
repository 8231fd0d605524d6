import type { Message } from 'kafkajs'
import { isValidTopicName } from '@detour/core'
import { AdminUsageError } from '../errors/index.js'
import type { TopicLog } from '../kafka/topic-log.js'

/** Where a dead letter was replayed to, as the ledger remembers it. */
export interface LedgerEntry {
  /** The dead letter, `<error topic>/<partition>/<offset>` (the ledger record's key). */
  readonly deadLetter: string
  readonly replayedAt: string
  readonly to: 'source' | 'retry'
  /**
   * Where the replayed record went: the source topic, or the retry topic (for a retry replay). Its offset
   * is not known inside the transaction that writes both; the replay's output shows it.
   */
  readonly target: { readonly topic: string; readonly partition: number } | undefined
  /** How many times it was replayed (more than 1 only with --force). */
  readonly count: number
  /** The client id of the replaying tool. */
  readonly by: string
}

/** Name of the replay ledger of an error topic: `<error topic>-replays` (compacted, created on first use). */
export function ledgerTopicFor(errorTopic: string): string {
  const name = `${errorTopic}-replays`
  if (!isValidTopicName(name)) throw new AdminUsageError(`The replay ledger "${name}" would not be a valid topic name (at most 249 characters)`)
  return name
}

/** The transactional id of replays from one error topic: two replays of it fence each other. */
export function replayTransactionalId(errorTopic: string): string {
  return `detour-admin-replay-${errorTopic}`
}

function parseEntry(key: string, value: Buffer): LedgerEntry | undefined {
  try {
    const parsed = JSON.parse(value.toString('utf8')) as Partial<LedgerEntry>
    if (typeof parsed.replayedAt !== 'string' || (parsed.to !== 'source' && parsed.to !== 'retry')) return undefined
    return {
      deadLetter: key,
      replayedAt: parsed.replayedAt,
      to: parsed.to,
      target: parsed.target,
      count: typeof parsed.count === 'number' ? parsed.count : 1,
      by: typeof parsed.by === 'string' ? parsed.by : 'unknown',
    }
  } catch {
    return undefined
  }
}

/**
 * The replay ledger of one error topic: a compacted topic keyed by the dead letter's coordinates, whose
 * latest record per key says when and where the dead letter was replayed. Replays write their record and
 * its ledger entry in one transaction, so the ledger never misses a replay that happened, nor records one
 * that did not.
 */
export class ReplayLedger {
  readonly topic: string

  constructor(
    private readonly log: TopicLog,
    readonly errorTopic: string,
  ) {
    this.topic = ledgerTopicFor(errorTopic)
  }

  /** Every entry, latest per dead letter (read_committed, to the end). Empty when the ledger does not exist yet. */
  async load(): Promise<Map<string, LedgerEntry>> {
    const entries = new Map<string, LedgerEntry>()
    const bounds = await this.log.bounds(this.topic)
    if (bounds === undefined) return entries
    await this.log.read(
      [...bounds].map(([partition, { low, high }]) => ({ topic: this.topic, partition, from: low, to: high })),
      (record) => {
        if (record.key === null) return
        const key = record.key.toString('utf8')
        if (record.value === null) {
          entries.delete(key)
          return
        }
        const entry = parseEntry(key, record.value)
        if (entry) entries.set(key, entry)
      },
    )
    return entries
  }

  /** The ledger record of an entry (partition 0: the ledger is read whole, one partition is plenty). */
  static record(entry: LedgerEntry): Message {
    const { deadLetter, ...value } = entry
    return { partition: 0, key: Buffer.from(deadLetter, 'utf8'), value: Buffer.from(JSON.stringify(value), 'utf8') }
  }
}

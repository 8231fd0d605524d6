import {
  isBarrierRecord,
  DetourHeaders,
  RedirectPartitionDecoder,
  groupKeyToStoreKey,
  headerString,
  isDetourError,
  parseRedirectKey,
  topicPartitionKey,
  type GroupKey,
} from '@detour/core'
import type { LogRecord } from '../kafka/topic-log.js'

/** A pending id as its redirect record describes it. */
export interface PendingEntry {
  readonly id: string
  readonly sourceTopic: string
  readonly partition: number
  /** The source offset (the last part of the id). */
  readonly offset: string
  readonly groupKey: GroupKey
  /** `failure` or `ordering` (`detour-reason`). */
  readonly reason: string | undefined
  /** When the main app redirected it (`detour-redirected-at`, ISO-8601). */
  readonly redirectedAt: string | undefined
  /** Where its redirect record sits on the redirect topic. */
  readonly redirectOffset: string
}

/** What applying one redirect-topic record did. */
export type ApplyOutcome = 'pending' | 'already-pending' | 'released' | 'unknown-tombstone' | 'malformed' | 'foreign' | 'barrier'

/** The pending ids of one group in one source partition, oldest first. */
export interface PendingGroup {
  readonly sourceTopic: string
  readonly partition: number
  readonly groupKey: GroupKey
  readonly ids: readonly PendingEntry[]
}

interface Counters {
  malformed: number
  foreign: number
  unknownTombstones: number
}

/**
 * The pending ids of redirect partitions with what their redirect records say (reason, time, offset), in
 * log order: the same rules as core's `GroupStore` fed by the `RedirectFollower` — a record makes its id
 * pending (an id already pending keeps its place), a tombstone with the same key releases it, records of
 * another consumer group and malformed records are ignored and counted — but it keeps each record's
 * details, which the group store drops.
 */
export class PendingIndex {
  /** source topic/partition → store key → id → entry (insertion order = queue order). */
  private readonly partitions = new Map<string, Map<string, Map<string, PendingEntry>>>()
  private readonly decoders = new Map<string, RedirectPartitionDecoder>()
  private readonly counters = new Map<string, Counters>()

  constructor(readonly consumerGroup: string) {}

  private countersOf(sourceTopic: string): Counters {
    let counters = this.counters.get(sourceTopic)
    if (!counters) {
      counters = { malformed: 0, foreign: 0, unknownTombstones: 0 }
      this.counters.set(sourceTopic, counters)
    }
    return counters
  }

  /** Applies a record read from partition `partition` of the redirect topic of `sourceTopic`. */
  apply(sourceTopic: string, partition: number, record: Pick<LogRecord, 'key' | 'value' | 'headers' | 'offset'>): ApplyOutcome {
    const key = topicPartitionKey(sourceTopic, partition)
    let decoder = this.decoders.get(key)
    if (!decoder) {
      decoder = new RedirectPartitionDecoder(sourceTopic, partition, this.consumerGroup)
      this.decoders.set(key, decoder)
    }
    // The retry worker's barrier records carry no id: not malformed, just not ours to apply.
    if (isBarrierRecord(record)) return 'barrier'
    let update
    try {
      update = decoder.decode(record, this.consumerGroup)
    } catch (error) {
      if (!isDetourError(error)) throw error
      this.countersOf(sourceTopic).malformed++
      return 'malformed'
    }
    if ('foreign' in update) {
      this.countersOf(sourceTopic).foreign++
      return 'foreign'
    }
    const { groupKey, id } = parseRedirectKey(record.key)
    let groups = this.partitions.get(key)
    if (!groups) {
      groups = new Map()
      this.partitions.set(key, groups)
    }
    const storeKey = groupKeyToStoreKey(groupKey, id)
    const ids = groups.get(storeKey)
    if (update.pending) {
      if (ids?.has(id)) return 'already-pending'
      const entry: PendingEntry = {
        id,
        sourceTopic,
        partition,
        offset: update.offset,
        groupKey,
        reason: headerString(record.headers, DetourHeaders.REASON),
        redirectedAt: headerString(record.headers, DetourHeaders.REDIRECTED_AT),
        redirectOffset: record.offset,
      }
      if (ids) ids.set(id, entry)
      else groups.set(storeKey, new Map([[id, entry]]))
      return 'pending'
    }
    if (!ids?.delete(id)) {
      this.countersOf(sourceTopic).unknownTombstones++
      return 'unknown-tombstone'
    }
    if (ids.size === 0) groups.delete(storeKey)
    return 'released'
  }

  /** Every group with pending ids, by source topic and partition, each oldest id first. */
  groups(): PendingGroup[] {
    const out: PendingGroup[] = []
    for (const groups of this.partitions.values()) {
      for (const ids of groups.values()) {
        const entries = [...ids.values()]
        const first = entries[0]
        if (first) out.push({ sourceTopic: first.sourceTopic, partition: first.partition, groupKey: first.groupKey, ids: entries })
      }
    }
    return out
  }

  /** A pending id, with its group's other ids (oldest first), or `undefined` when it is not pending. */
  find(id: string): { entry: PendingEntry; group: PendingGroup } | undefined {
    for (const group of this.groups()) {
      const entry = group.ids.find((candidate) => candidate.id === id)
      if (entry) return { entry, group }
    }
    return undefined
  }

  /** Records ignored while applying: malformed, of another consumer group, tombstones of ids not pending. */
  ignored(sourceTopic: string): Readonly<Counters> {
    return { ...this.countersOf(sourceTopic) }
  }
}

import { DetourConfigError } from '../errors/index.js'

/**
 * Pending ids of one source partition: group key → pending ids, in insertion order.
 *
 * Memory: most groups hold one id, so a group is the id string itself until a second id arrives,
 * then a `Set`. Within a partition only the offset part of an id is kept (topic and partition are
 * implied), so a pending id costs a map/set slot plus a short string.
 */
class PartitionGroups {
  readonly groups = new Map<string, string | Set<string>>()
  pending = 0

  add(groupKey: string, offset: string): boolean {
    const current = this.groups.get(groupKey)
    if (current === undefined) {
      this.groups.set(groupKey, offset)
    } else if (typeof current === 'string') {
      if (current === offset) return false
      this.groups.set(groupKey, new Set([current, offset]))
    } else {
      if (current.has(offset)) return false
      current.add(offset)
    }
    this.pending++
    return true
  }

  release(groupKey: string, offset: string): boolean {
    const current = this.groups.get(groupKey)
    if (current === undefined) return false
    if (typeof current === 'string') {
      if (current !== offset) return false
      this.groups.delete(groupKey)
    } else {
      if (!current.delete(offset)) return false
      if (current.size === 1) {
        const [only] = current
        this.groups.set(groupKey, only as string)
      } else if (current.size === 0) {
        this.groups.delete(groupKey)
      }
    }
    this.pending--
    return true
  }

  has(groupKey: string, offset: string): boolean {
    const current = this.groups.get(groupKey)
    if (current === undefined) return false
    return typeof current === 'string' ? current === offset : current.has(offset)
  }
}

export interface GroupStoreOptions {
  /**
   * The pending ids the owner means to hold at most (the utilisation in {@link StoreStats} is relative to
   * it). The main app pauses partitions that need to add ids past it; the store itself never refuses or
   * evicts an id.
   * @defaultValue 100000
   */
  maxPendingIds?: number
}

export interface StoreStats {
  readonly pendingIds: number
  readonly groups: number
  readonly partitions: number
  readonly utilisation: number
}

function offsetOf(id: string): string {
  return id.slice(id.lastIndexOf('/') + 1)
}

/**
 * The in-memory ordering state of the main app: per assigned source partition, group key → ordered
 * pending ids. All checks and releases are O(1). Ids are the Detour message ids
 * (`<topic>/<partition>/<offset>`) or, equivalently, the bare offset (topic and partition are the slot's); group keys are store keys (see `groupKeyToStoreKey`).
 */
export class GroupStore {
  readonly maxPendingIds: number
  /**
   * topic → partition → groups. Nested maps rather than one map keyed by a `topic/partition` string:
   * every `hasPending` (one per consumed message) would otherwise build and hash a new string.
   */
  private readonly topics = new Map<string, Map<number, PartitionGroups>>()
  private partitionCount = 0
  private pendingTotal = 0

  constructor(options: GroupStoreOptions = {}) {
    const max = options.maxPendingIds ?? 100_000
    if (!Number.isInteger(max) || max < 1) {
      throw new DetourConfigError('maxPendingIds', `must be a positive integer, got ${String(max)}`)
    }
    this.maxPendingIds = max
  }

  private groupsOf(topic: string, partition: number): PartitionGroups | undefined {
    return this.topics.get(topic)?.get(partition)
  }

  /** The partition's groups, created on first use: a partition added to a topic at runtime is tracked like the others. */
  private slot(topic: string, partition: number): PartitionGroups {
    let partitions = this.topics.get(topic)
    if (!partitions) {
      partitions = new Map()
      this.topics.set(topic, partitions)
    }
    let groups = partitions.get(partition)
    if (!groups) {
      groups = new PartitionGroups()
      partitions.set(partition, groups)
      this.partitionCount++
    }
    return groups
  }

  /** Starts tracking a partition afresh, with nothing pending. */
  resetPartition(topic: string, partition: number): void {
    this.dropPartition(topic, partition)
    this.slot(topic, partition)
  }

  /** Forgets a partition (revoked). */
  dropPartition(topic: string, partition: number): void {
    const partitions = this.topics.get(topic)
    const groups = partitions?.get(partition)
    if (partitions && groups) {
      this.pendingTotal -= groups.pending
      partitions.delete(partition)
      this.partitionCount--
      if (partitions.size === 0) this.topics.delete(topic)
    }
  }

  hasPartition(topic: string, partition: number): boolean {
    return this.groupsOf(topic, partition) !== undefined
  }

  /** Adds a pending id (tracking the partition from now on if it was not). Returns false when it was already pending. */
  add(topic: string, partition: number, groupKey: string, id: string): boolean {
    const added = this.slot(topic, partition).add(groupKey, offsetOf(id))
    if (added) this.pendingTotal++
    return added
  }

  /** Releases a pending id. Returns false when it was not pending (unknown id). */
  release(topic: string, partition: number, groupKey: string, id: string): boolean {
    const groups = this.groupsOf(topic, partition)
    if (!groups) return false
    const released = groups.release(groupKey, offsetOf(id))
    if (released) this.pendingTotal--
    return released
  }

  /** True when the group has pending ids: its new messages must wait behind them. */
  hasPending(topic: string, partition: number, groupKey: string): boolean {
    return this.groupsOf(topic, partition)?.groups.has(groupKey) ?? false
  }

  /** True when this exact id is pending. */
  isPending(topic: string, partition: number, groupKey: string, id: string): boolean {
    return this.groupsOf(topic, partition)?.has(groupKey, offsetOf(id)) ?? false
  }

  /**
   * The highest pending offset of one group (O(group size)), or `undefined` when nothing is pending. A
   * message of a partition below it was decided before: kafkajs delivered it again after a rewind.
   */
  highestPendingOffset(topic: string, partition: number, groupKey: string): bigint | undefined {
    const current = this.groupsOf(topic, partition)?.groups.get(groupKey)
    if (current === undefined) return undefined
    if (typeof current === 'string') return BigInt(current)
    let highest: bigint | undefined
    for (const offset of current) {
      const value = BigInt(offset)
      if (highest === undefined || value > highest) highest = value
    }
    return highest
  }

  /** Pending ids of one group, oldest first (diagnostics; O(group size)). */
  pendingIds(topic: string, partition: number, groupKey: string): string[] {
    const current = this.groupsOf(topic, partition)?.groups.get(groupKey)
    if (current === undefined) return []
    const offsets = typeof current === 'string' ? [current] : [...current]
    return offsets.map((offset) => `${topic}/${partition}/${offset}`)
  }

  /** Groups with pending ids in one partition. */
  partitionGroups(topic: string, partition: number): number {
    return this.groupsOf(topic, partition)?.groups.size ?? 0
  }

  partitionPending(topic: string, partition: number): number {
    return this.groupsOf(topic, partition)?.pending ?? 0
  }

  get pendingCount(): number {
    return this.pendingTotal
  }

  stats(): StoreStats {
    let groups = 0
    for (const partitions of this.topics.values()) for (const partition of partitions.values()) groups += partition.groups.size
    return {
      pendingIds: this.pendingTotal,
      groups,
      partitions: this.partitionCount,
      utilisation: this.pendingTotal / this.maxPendingIds,
    }
  }
}

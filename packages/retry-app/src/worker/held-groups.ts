import type { PartitionScheduler } from './partition-scheduler.js'
import type { RetryEntry } from './retry-entry.js'
import type { HeldGroup } from './types.js'

interface HeldRecord {
  readonly group: HeldGroup
  readonly entry: RetryEntry
  readonly scheduler: PartitionScheduler
  releasing: boolean
}

/** Groups blocked by an exhausted message (policy `hold`), by Detour id. */
export class HeldGroups {
  private readonly byId = new Map<string, HeldRecord>()

  constructor(private readonly onChange: (delta: number) => void) {}

  get size(): number {
    return this.byId.size
  }

  add(group: HeldGroup, entry: RetryEntry, scheduler: PartitionScheduler): void {
    const had = this.byId.has(group.id)
    this.byId.set(group.id, { group, entry, scheduler, releasing: false })
    if (!had) this.onChange(1)
  }

  list(): HeldGroup[] {
    return [...this.byId.values()].map((record) => record.group)
  }

  /** Takes a held group for release; `undefined` when unknown or already being released. */
  claim(id: string): HeldRecord | undefined {
    const record = this.byId.get(id)
    if (!record || record.releasing) return undefined
    record.releasing = true
    return record
  }

  /** Gives back a claim that could not complete. */
  unclaim(id: string): void {
    const record = this.byId.get(id)
    if (record) record.releasing = false
  }

  remove(id: string): void {
    if (this.byId.delete(id)) this.onChange(-1)
  }

  /** Forgets the held groups of a dropped partition. */
  removePartition(scheduler: PartitionScheduler): void {
    let removed = 0
    for (const [id, record] of this.byId) {
      if (record.scheduler === scheduler) {
        this.byId.delete(id)
        removed++
      }
    }
    if (removed > 0) this.onChange(-removed)
  }
}

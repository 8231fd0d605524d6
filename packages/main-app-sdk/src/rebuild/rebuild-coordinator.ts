import type { Admin } from 'kafkajs'
import { DetourTimeoutError, type DetourTopics, type Logger } from '@detour/core'
import type { SdkMetrics } from '../metrics/sdk-metrics.js'

interface Slot {
  ready: boolean
  /** High watermark of the redirect partition taken at assignment; ready once the follower passes it. */
  target: bigint | undefined
  waiters: Array<() => void>
}

export interface RebuildCoordinatorOptions {
  readonly admin: Admin
  readonly topics: ReadonlyMap<string, DetourTopics>
  readonly position: (sourceTopic: string, partition: number) => bigint
  readonly metrics: SdkMetrics
  readonly logger: Logger
  readonly onError: (error: Error) => void
  readonly onReady?: (info: { partitions: number; durationMs: number }) => void
}

export interface PartitionReadiness {
  readonly topic: string
  readonly partition: number
  readonly ready: boolean
  readonly target: string | undefined
  readonly position: string
}

/**
 * Gates processing on rebuilds. On every assignment, each assigned partition becomes not-ready
 * synchronously (before kafkajs fetches anything), then the redirect topic's high watermarks are taken;
 * a partition is ready once the redirect follower has applied its redirect partition up to that mark.
 */
export class RebuildCoordinator {
  private readonly slots = new Map<string, Slot & { topic: string; partition: number }>()
  /**
   * The same slots by topic, then partition: the per-message readiness check looks them up without
   * building a `topic/partition` string.
   */
  private readonly byTopic = new Map<string, Map<number, Slot>>()
  private generation = 0
  private rebuildStartedAt: number | undefined
  private stopped = false
  lastRebuildMs: number | undefined

  constructor(private readonly options: RebuildCoordinatorOptions) {}

  private static key(topic: string, partition: number): string {
    return `${topic}\u0000${partition}`
  }

  /** The consumer's new assignment (kafkajs GROUP_JOIN `memberAssignment`). Returns revoked partitions. */
  onAssignment(assignment: Record<string, number[]>): Array<{ topic: string; partition: number }> {
    const generation = ++this.generation
    const next = new Set<string>()
    const fresh: Array<{ topic: string; partition: number }> = []
    for (const [topic, partitions] of Object.entries(assignment)) {
      if (!this.options.topics.has(topic)) continue
      for (const partition of partitions) {
        const key = RebuildCoordinator.key(topic, partition)
        next.add(key)
        const existing = this.slots.get(key)
        if (existing) {
          existing.ready = false
          existing.target = undefined
        } else {
          this.addSlot(key, { topic, partition, ready: false, target: undefined, waiters: [] })
        }
        fresh.push({ topic, partition })
      }
    }
    const revoked: Array<{ topic: string; partition: number }> = []
    for (const [key, slot] of this.slots) {
      if (!next.has(key)) {
        this.slots.delete(key)
        this.byTopic.get(slot.topic)?.delete(slot.partition)
        revoked.push({ topic: slot.topic, partition: slot.partition })
        for (const wake of slot.waiters) wake()
      }
    }
    this.rebuildStartedAt = Date.now()
    void this.takeTargets(generation, fresh).catch((error: unknown) => {
      this.options.onError(error instanceof Error ? error : new Error(String(error)))
    })
    return revoked
  }

  private addSlot(key: string, slot: Slot & { topic: string; partition: number }): void {
    this.slots.set(key, slot)
    let partitions = this.byTopic.get(slot.topic)
    if (!partitions) {
      partitions = new Map()
      this.byTopic.set(slot.topic, partitions)
    }
    partitions.set(slot.partition, slot)
  }

  /** A partition not announced by a group event (defensive): rebuild it on first sight. */
  private ensureSlot(topic: string, partition: number): Slot {
    const key = RebuildCoordinator.key(topic, partition)
    let slot = this.slots.get(key)
    if (!slot) {
      slot = { topic, partition, ready: false, target: undefined, waiters: [] }
      this.addSlot(key, slot)
      void this.takeTargets(this.generation, [{ topic, partition }]).catch((error: unknown) => {
        this.options.onError(error instanceof Error ? error : new Error(String(error)))
      })
    }
    return slot
  }

  private async takeTargets(generation: number, partitions: Array<{ topic: string; partition: number }>): Promise<void> {
    const byTopic = new Map<string, number[]>()
    for (const { topic, partition } of partitions) byTopic.set(topic, [...(byTopic.get(topic) ?? []), partition])
    for (const [topic, parts] of byTopic) {
      const redirect = this.options.topics.get(topic)?.redirect
      if (!redirect) continue
      let offsets: Array<{ partition: number; high: string }> | undefined
      for (let attempt = 1; offsets === undefined; attempt++) {
        if (this.stopped || generation !== this.generation) return
        try {
          offsets = await this.options.admin.fetchTopicOffsets(redirect)
        } catch (error) {
          this.options.logger.warn('Cannot read redirect topic high watermarks; retrying', { topic: redirect, attempt, error })
          await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 100 * 2 ** attempt)))
        }
      }
      if (generation !== this.generation) return
      for (const partition of parts) {
        const slot = this.slots.get(RebuildCoordinator.key(topic, partition))
        const high = offsets.find((o) => o.partition === partition)?.high
        if (!slot || high === undefined) continue
        slot.target = BigInt(high)
        this.check(topic, partition)
      }
    }
  }

  /** The follower applied records of a partition up to `nextOffset`. */
  onProgress(topic: string, partition: number): void {
    this.check(topic, partition)
  }

  private check(topic: string, partition: number): void {
    const slot = this.slots.get(RebuildCoordinator.key(topic, partition))
    if (!slot || slot.ready || slot.target === undefined) return
    if (this.options.position(topic, partition) < slot.target) return
    slot.ready = true
    const waiters = slot.waiters
    slot.waiters = []
    for (const wake of waiters) wake()
    if (this.rebuildStartedAt !== undefined && this.allReady()) {
      const seconds = (Date.now() - this.rebuildStartedAt) / 1000
      this.lastRebuildMs = Math.round(seconds * 1000)
      this.options.metrics.rebuildDuration.observe(seconds)
      this.options.logger.info('Assigned partitions rebuilt from the redirect topic', {
        partitions: this.slots.size,
        durationMs: this.lastRebuildMs,
      })
      this.rebuildStartedAt = undefined
      this.options.onReady?.({ partitions: this.slots.size, durationMs: this.lastRebuildMs })
    }
  }

  isAssigned(topic: string, partition: number): boolean {
    return this.slots.has(RebuildCoordinator.key(topic, partition))
  }

  /** True when the partition is assigned and rebuilt (then {@link waitReady} would return at once). */
  isPartitionReady(topic: string, partition: number): boolean {
    return this.byTopic.get(topic)?.get(partition)?.ready ?? false
  }

  allReady(): boolean {
    for (const slot of this.slots.values()) if (!slot.ready) return false
    return true
  }

  assignedPartitions(): Array<{ topic: string; partition: number }> {
    return [...this.slots.values()].map(({ topic, partition }) => ({ topic, partition }))
  }

  readiness(): PartitionReadiness[] {
    return [...this.slots.values()].map((slot) => ({
      topic: slot.topic,
      partition: slot.partition,
      ready: slot.ready,
      target: slot.target?.toString(),
      position: this.options.position(slot.topic, slot.partition).toString(),
    }))
  }

  /**
   * Resolves when the partition is rebuilt. Heartbeats while waiting so a long rebuild does not cost the
   * group membership. Rejects with {@link DetourTimeoutError} after `timeoutMs`.
   */
  async waitReady(topic: string, partition: number, heartbeat: () => Promise<void>, timeoutMs: number): Promise<void> {
    const slot = this.ensureSlot(topic, partition)
    if (slot.ready) return
    const deadline = Date.now() + timeoutMs
    while (!slot.ready && this.slots.get(RebuildCoordinator.key(topic, partition)) === slot && !this.stopped) {
      const remaining = deadline - Date.now()
      if (remaining <= 0) {
        throw new DetourTimeoutError(`Partition ${topic}/${partition} was not rebuilt from its redirect partition within ${timeoutMs} ms`)
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(1000, remaining))
        slot.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
      await heartbeat()
    }
    if (!slot.ready) {
      throw new DetourTimeoutError(`Partition ${topic}/${partition} was revoked (or Detour stopped) before it was rebuilt`)
    }
  }

  stop(): void {
    this.stopped = true
    for (const slot of this.slots.values()) for (const wake of slot.waiters) wake()
  }
}

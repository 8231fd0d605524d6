import {
  DetourFencedError,
  DetourStoppingError,
  DetourTimeoutError,
  DetourTopicError,
  topicPartitionKey,
  type DetourTopics,
  type Logger,
  type TopicAdmin,
  type TopicPartition,
} from '@detour/core'
import type { HandOff } from '../hand-off/hand-off.js'
import type { GroupMembership } from './consumer-watch.js'

/**
 * Where an assigned partition stands:
 * - `preparing`: being claimed (transactional hand-offs: its transactional id initialised, fencing the
 *   previous owner) and synced (the redirect follower caught up with the redirect partition);
 * - `ready`: messages are decided on what the group store knows;
 * - `unsynced`: a write's outcome is unknown; the next message claims (if needed) and syncs again first;
 * - `lost`: the coordinator assigns the partition to another member; messages go back to kafkajs;
 * - `mismatch`: the partition has no retry or redirect partition (partitions were added to the source
 *   topic only); it is paused until the Detour topics have as many partitions.
 */
export type PartitionState = 'preparing' | 'ready' | 'unsynced' | 'lost' | 'mismatch'

export interface PartitionReadiness {
  readonly topic: string
  readonly partition: number
  readonly state: PartitionState
  /** Kept for compatibility: `state === 'ready'`. */
  readonly ready: boolean
  /** The redirect partition's offset the follower had to reach (the last barrier). */
  readonly target: string | undefined
  /** The follower's position in the redirect partition. */
  readonly position: string
}

/** What the gate needs from the redirect follower. */
export interface FollowerBarrier {
  catchUp(sourceTopic: string, partition: number, options: { signal?: AbortSignal }): Promise<bigint>
  position(sourceTopic: string, partition: number): bigint
}

export interface PartitionGateOptions {
  readonly topics: ReadonlyMap<string, DetourTopics>
  readonly handOff: HandOff
  readonly follower: FollowerBarrier
  readonly membership: GroupMembership
  readonly topicAdmin: TopicAdmin
  /** Partition counts of the source topics, learnt at start. */
  readonly partitionCounts: Map<string, number>
  readonly logger: Logger
  readonly onError: (error: Error) => void
  /** Every assigned partition became ready after an assignment. */
  readonly onReady?: (info: { partitions: number; durationMs: number }) => void
  /** How often a mismatched partition is checked again. @defaultValue 30000 */
  readonly mismatchRecheckMs?: number
  /** Partitions claimed at the same time after an assignment. @defaultValue 8 */
  readonly claimConcurrency?: number
}

interface Slot extends TopicPartition {
  state: PartitionState
  /** The hand-off writer must be claimed again before the next write. */
  reclaim: boolean
  target: bigint | undefined
  /** The preparation in progress (one at a time per slot). */
  preparing: Promise<void> | undefined
  waiters: Set<() => void>
  problem: Error | undefined
  /** Changes every time the slot becomes ready (see {@link PartitionGate.ticket}). */
  ticket: number
  /** The coordinator must confirm the partition is still this member's before it is ready again. */
  verify: boolean
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(done, ms)
    function done(): void {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    signal?.addEventListener('abort', done, { once: true })
  })

/**
 * Gates processing per assigned partition. On every assignment, each assigned partition stops being ready
 * at once (kafkajs announces the assignment before it fetches), then, in the background:
 *
 *   claim (fence the previous owner) → check the coordinator still assigns it here → sync (barrier) → ready
 *
 * After a write with an unknown outcome the partition goes back to `unsynced`; the next message claims
 * again (after checking ownership first, so that an evicted instance never fences the new owner) and
 * syncs before anything is decided.
 */
export class PartitionGate {
  private readonly slots = new Map<string, Slot>()
  private readonly byTopic = new Map<string, Map<number, Slot>>()
  private generation = 0
  private tickets = 0
  /** Partitions Detour paused in kafkajs (no Detour partitions yet): resumed once ready, in any later generation. */
  private readonly pausedInConsumer = new Set<string>()
  private assignedAt: number | undefined
  private stopped = false
  private readonly stopController = new AbortController()
  lastRebuildMs: number | undefined

  constructor(private readonly options: PartitionGateOptions) {}

  /** The consumer's new assignment (kafkajs `GROUP_JOIN` `memberAssignment`). Returns the revoked partitions. */
  onAssignment(assignment: Record<string, number[]>): TopicPartition[] {
    const generation = ++this.generation
    const next = new Set<string>()
    const fresh: Slot[] = []
    for (const [topic, partitions] of Object.entries(assignment)) {
      if (!this.options.topics.has(topic)) continue
      for (const partition of partitions) {
        const key = topicPartitionKey(topic, partition)
        next.add(key)
        const slot = this.slots.get(key) ?? this.addSlot(key, topic, partition)
        slot.state = 'preparing'
        slot.reclaim = true
        slot.verify = false
        slot.problem = undefined
        fresh.push(slot)
      }
    }
    const revoked: TopicPartition[] = []
    for (const [key, slot] of this.slots) {
      if (next.has(key)) continue
      this.removeSlot(key, slot)
      revoked.push({ topic: slot.topic, partition: slot.partition })
      void this.options.handOff.release(slot.topic, slot.partition)
    }
    this.assignedAt = Date.now()
    void this.prepare(generation, fresh)
    return revoked
  }

  private addSlot(key: string, topic: string, partition: number): Slot {
    const slot: Slot = { topic, partition, state: 'preparing', reclaim: true, target: undefined, preparing: undefined, waiters: new Set(), problem: undefined, ticket: 0, verify: false }
    this.slots.set(key, slot)
    let partitions = this.byTopic.get(topic)
    if (!partitions) {
      partitions = new Map()
      this.byTopic.set(topic, partitions)
    }
    partitions.set(partition, slot)
    return slot
  }

  private removeSlot(key: string, slot: Slot): void {
    this.slots.delete(key)
    this.byTopic.get(slot.topic)?.delete(slot.partition)
    this.wake(slot)
  }

  private wake(slot: Slot): void {
    const waiters = [...slot.waiters]
    slot.waiters.clear()
    for (const wake of waiters) wake()
  }

  private current(slot: Slot, generation: number): boolean {
    return !this.stopped && generation === this.generation && this.slots.get(topicPartitionKey(slot.topic, slot.partition)) === slot
  }

  /** Prepares the partitions of an assignment: mismatch check, claims, one ownership check, then the syncs. */
  private async prepare(generation: number, slots: Slot[]): Promise<void> {
    let pending = slots
    for (let attempt = 1; pending.length > 0; attempt++) {
      if (attempt > 1) await sleep(Math.min(5000, 200 * 2 ** (attempt - 2)), this.stopController.signal)
      pending = pending.filter((slot) => this.current(slot, generation) && slot.state === 'preparing')
      if (pending.length === 0) break
      try {
        await this.checkPartitionCounts(pending)
        const claimable = pending.filter((slot) => slot.state === 'preparing')
        if (claimable.length === 0) break
        await this.runLimited(claimable, async (slot) => {
          if (slot.reclaim) {
            await this.options.handOff.claim(slot.topic, slot.partition)
            slot.reclaim = false
          }
        })
        if (this.options.handOff.mode === 'transactional') {
          const ownership = await this.options.membership.ownership()
          if (!ownership.stable) throw new Error('the consumer group is rebalancing')
          for (const slot of claimable) {
            if (ownership.owned.has(topicPartitionKey(slot.topic, slot.partition))) continue
            slot.state = 'lost'
            this.wake(slot)
          }
        }
        await Promise.all(claimable.filter((slot) => slot.state === 'preparing').map((slot) => this.sync(slot, generation)))
        pending = []
      } catch (error) {
        if (this.stopped) return
        this.options.logger.warn('Preparing assigned partitions failed; retrying', {
          partitions: pending.map((s) => `${s.topic}/${s.partition}`),
          attempt,
          error,
        })
        if (attempt === 3) this.options.onError(error instanceof Error ? error : new Error(String(error)))
      }
    }
    this.checkAllReady()
  }

  /** Claims (when needed, checking ownership before and after), then syncs one partition. */
  private recover(slot: Slot): Promise<void> {
    slot.preparing ??= (async () => {
      const generation = this.generation
      for (let attempt = 1; this.current(slot, generation) && slot.state !== 'ready' && slot.state !== 'lost' && slot.state !== 'mismatch'; attempt++) {
        if (attempt > 1) await sleep(Math.min(5000, 200 * 2 ** (attempt - 2)), this.stopController.signal)
        try {
          if (slot.verify) {
            // The membership lease lapsed: only the coordinator can say whether the partition is still ours.
            if (!(await this.ownsNow(slot))) continue
            slot.verify = false
          }
          if (slot.reclaim && this.options.handOff.mode === 'transactional') {
            // An evicted instance must not fence the partition's new owner: ask the coordinator first.
            if (!(await this.ownsNow(slot))) continue
            await this.options.handOff.claim(slot.topic, slot.partition)
            slot.reclaim = false
            if (!(await this.ownsNow(slot))) continue
          } else if (slot.reclaim) {
            await this.options.handOff.claim(slot.topic, slot.partition)
            slot.reclaim = false
          }
          await this.sync(slot, generation)
        } catch (error) {
          if (this.stopped) return
          this.options.logger.warn('Recovering a partition after a failed hand-off failed; retrying', { topic: slot.topic, partition: slot.partition, attempt, error })
        }
      }
    })().finally(() => {
      slot.preparing = undefined
    })
    return slot.preparing
  }

  /**
   * Whether this member owns the partition now. When the group is stable, every slot the coordinator does
   * not give this member is marked `lost` at once — an evicted member has lost all of them, not only the
   * one that asked.
   */
  private async ownsNow(slot: Slot): Promise<boolean> {
    const ownership = await this.options.membership.ownership()
    if (!ownership.stable) return false
    for (const [key, other] of this.slots) {
      if (ownership.owned.has(key) || other.state === 'lost' || other.state === 'mismatch') continue
      other.state = 'lost'
      this.wake(other)
    }
    return ownership.owned.has(topicPartitionKey(slot.topic, slot.partition))
  }

  /**
   * The consumer's membership lease lapsed (no heartbeat succeeded for most of the session timeout): the
   * coordinator may have evicted this member. No partition is ready — no handler starts on it — until the
   * coordinator confirms it is still this member's (then it is synced again; otherwise it is `lost`, and
   * the next assignment prepares what this member owns then).
   */
  leaseLapsed(): void {
    let affected = 0
    for (const slot of this.slots.values()) {
      if (slot.state !== 'ready' && slot.state !== 'unsynced') continue
      slot.state = 'unsynced'
      slot.verify = true
      affected++
    }
    if (affected > 0) {
      this.options.logger.warn('No consumer heartbeat succeeded for most of the session timeout: pausing decisions until the coordinator confirms the partitions are still ours', {
        partitions: affected,
      })
    }
  }

  private async sync(slot: Slot, generation: number): Promise<void> {
    const target = await this.options.follower.catchUp(slot.topic, slot.partition, { signal: this.stopController.signal })
    if (!this.current(slot, generation) || slot.state === 'lost' || slot.state === 'mismatch') return
    slot.target = target
    slot.state = 'ready'
    slot.ticket = ++this.tickets
    slot.problem = undefined
    this.wake(slot)
    const key = topicPartitionKey(slot.topic, slot.partition)
    if (this.pausedInConsumer.delete(key)) this.onResumed?.({ topic: slot.topic, partition: slot.partition })
  }

  /**
   * Detour paused the partition in kafkajs (it has no Detour partitions): it is resumed when it becomes
   * ready — after the re-check, or after any later assignment that finds the Detour partitions there.
   */
  pausedByDetour(topic: string, partition: number): void {
    this.pausedInConsumer.add(topicPartitionKey(topic, partition))
  }

  /**
   * The partition's ready ticket: a number that changes every time it becomes ready again (after an
   * assignment, or a re-sync after a failed write); 0 when it is not ready. A decision is written only
   * while {@link holds} says the ticket it was made under is still valid.
   */
  ticket(topic: string, partition: number): number {
    const slot = this.byTopic.get(topic)?.get(partition)
    return slot?.state === 'ready' ? slot.ticket : 0
  }

  /** The redirect follower's position in the partition's redirect partition (the next offset it applies). */
  followerPosition(topic: string, partition: number): bigint {
    return this.options.follower.position(topic, partition)
  }

  /** True while the partition is ready under `ticket` (assigned, claimed and synced since the decision). */
  holds(topic: string, partition: number, ticket: number): boolean {
    const slot = this.byTopic.get(topic)?.get(partition)
    return ticket !== 0 && slot?.state === 'ready' && slot.ticket === ticket
  }

  private checkAllReady(): void {
    if (this.assignedAt === undefined) return
    for (const slot of this.slots.values()) if (slot.state !== 'ready' && slot.state !== 'lost' && slot.state !== 'mismatch') return
    const durationMs = Date.now() - this.assignedAt
    this.assignedAt = undefined
    this.lastRebuildMs = durationMs
    this.options.logger.info('Assigned partitions are ready (claimed and rebuilt from the redirect topic)', { partitions: this.slots.size, durationMs })
    this.options.onReady?.({ partitions: this.slots.size, durationMs })
  }

  /**
   * Partitions added to a source topic at runtime: the Detour topics must have them too (the records of
   * source partition N go to partition N). A partition without them is paused, with an error saying how
   * to fix it, and checked again until they exist.
   */
  private async checkPartitionCounts(slots: Slot[]): Promise<void> {
    const { partitionCounts, topicAdmin, topics } = this.options
    const beyond = slots.filter((slot) => slot.partition >= (partitionCounts.get(slot.topic) ?? Infinity))
    for (const topic of new Set(beyond.map((slot) => slot.topic))) {
      const detourTopics = topics.get(topic)
      if (!detourTopics) continue
      const [source, retry, redirect] = await Promise.all([
        topicAdmin.partitionCount(detourTopics.source),
        topicAdmin.partitionCount(detourTopics.retry),
        topicAdmin.partitionCount(detourTopics.redirect),
      ])
      const usable = Math.min(retry ?? 0, redirect ?? 0)
      if (source !== undefined && usable >= source) partitionCounts.set(topic, source)
      for (const slot of beyond.filter((s) => s.topic === topic)) {
        if (slot.partition < usable) continue
        slot.state = 'mismatch'
        slot.problem = new DetourTopicError(
          detourTopics.retry,
          `Source partition ${topic}/${slot.partition} has no retry or redirect partition (${detourTopics.retry}: ${retry ?? 0} partitions, ` +
            `${detourTopics.redirect}: ${redirect ?? 0}). It is paused until both have ${source ?? slot.partition + 1} partitions: ` +
            `kafka-topics --alter --topic ${detourTopics.retry} --partitions ${source ?? slot.partition + 1}, and the same for ${detourTopics.redirect}.`,
          // Retriable: kafkajs keeps the consumer running (the partition is paused), and the re-check resumes it.
          { retriable: true },
        )
        this.options.logger.error(slot.problem.message, { topic, partition: slot.partition })
        this.options.onError(slot.problem)
        this.wake(slot)
        this.scheduleMismatchRecheck(slot)
      }
    }
  }

  private scheduleMismatchRecheck(slot: Slot): void {
    const generation = this.generation
    const timer = setTimeout(() => {
      if (!this.current(slot, generation) || slot.state !== 'mismatch') return
      slot.state = 'preparing'
      slot.reclaim = true
      void this.prepare(generation, [slot])
    }, this.options.mismatchRecheckMs ?? 30_000)
    timer.unref()
  }

  /** Called when a partition Detour paused in kafkajs is ready (Detour resumes it there). */
  onResumed: ((partition: TopicPartition) => void) | undefined

  private async runLimited(slots: Slot[], fn: (slot: Slot) => Promise<void>): Promise<void> {
    const limit = this.options.claimConcurrency ?? 8
    let next = 0
    const errors: unknown[] = []
    const lane = async (): Promise<void> => {
      while (next < slots.length) {
        const slot = slots[next++]!
        try {
          await fn(slot)
        } catch (error) {
          errors.push(error)
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(limit, slots.length) }, lane))
    if (errors.length > 0) throw errors[0]
  }

  /** True when the partition is ready (then {@link waitReady} would return at once). The hot path. */
  isReady(topic: string, partition: number): boolean {
    return this.byTopic.get(topic)?.get(partition)?.state === 'ready'
  }

  /**
   * A write of this partition had an unknown outcome (or was fenced): nothing is decided for it until it is
   * claimed again (when `reclaim`) and synced.
   */
  markUnsynced(topic: string, partition: number, reclaim: boolean): void {
    const slot = this.byTopic.get(topic)?.get(partition)
    if (!slot || slot.state === 'lost' || slot.state === 'mismatch') return
    slot.state = 'unsynced'
    slot.reclaim ||= reclaim
  }

  /**
   * Resolves when the partition is ready, heartbeating (`heartbeat`) meanwhile so a long wait does not
   * cost the group membership. Rejects with `DetourStoppingError` when `signal` aborts, `DetourFencedError`
   * when the partition is lost or revoked, `DetourTopicError` on a partition mismatch, `DetourTimeoutError`
   * after `timeoutMs`.
   */
  async waitReady(topic: string, partition: number, heartbeat: () => Promise<void>, timeoutMs: number, signal: AbortSignal): Promise<void> {
    const key = topicPartitionKey(topic, partition)
    const slot = this.slots.get(key)
    if (!slot) {
      // Not in the current assignment: revoked (kafkajs may still deliver a batch fetched before), or not
      // announced yet. Never adopted here: that would claim — and fence — the partition of its new owner.
      throw new DetourFencedError(topic, partition, `${topic}/${partition} is not assigned to this member (revoked, or not announced by an assignment yet)`)
    }
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new DetourStoppingError('Stopped waiting for the partition')
      if (this.stopped) throw new DetourStoppingError('Detour is stopping')
      if (this.slots.get(key) !== slot) throw new DetourFencedError(topic, partition, `${topic}/${partition} was revoked while its message waited`)
      switch (slot.state) {
        case 'ready':
          return
        case 'lost':
          throw new DetourFencedError(topic, partition, `${topic}/${partition} is assigned to another member of the group`)
        case 'mismatch':
          throw slot.problem ?? new DetourTopicError(topic, `${topic}/${partition} has no retry or redirect partition`)
        case 'unsynced':
          void this.recover(slot)
          break
        case 'preparing':
          break
      }
      const remaining = deadline - Date.now()
      if (remaining <= 0) {
        throw new DetourTimeoutError(
          `Partition ${topic}/${partition} was not ready within ${timeoutMs} ms (${slot.state}; redirect follower at ${this.options.follower.position(topic, partition)})`,
        )
      }
      await new Promise<void>((resolve) => {
        const current = slot
        const done = (): void => {
          clearTimeout(timer)
          signal.removeEventListener('abort', done)
          current.waiters.delete(done)
          resolve()
        }
        const timer = setTimeout(done, Math.min(1000, remaining))
        signal.addEventListener('abort', done, { once: true })
        current.waiters.add(done)
      })
      if (!signal.aborted) await heartbeat()
    }
  }

  allReady(): boolean {
    for (const slot of this.slots.values()) if (slot.state !== 'ready') return false
    return true
  }

  assignedPartitions(): TopicPartition[] {
    return [...this.slots.values()].map(({ topic, partition }) => ({ topic, partition }))
  }

  readiness(): PartitionReadiness[] {
    return [...this.slots.values()].map((slot) => ({
      topic: slot.topic,
      partition: slot.partition,
      state: slot.state,
      ready: slot.state === 'ready',
      target: slot.target?.toString(),
      position: this.options.follower.position(slot.topic, slot.partition).toString(),
    }))
  }

  stop(): void {
    this.stopped = true
    this.stopController.abort(new DetourStoppingError('Detour is stopping'))
    for (const slot of this.slots.values()) this.wake(slot)
  }
}

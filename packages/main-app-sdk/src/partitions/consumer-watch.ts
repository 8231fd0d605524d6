import { AssignerProtocol, type Consumer } from 'kafkajs'
import { DetourStoppingError, HeartbeatLease, topicPartitionKey, type TopicPartition } from '@detour/core'

/** What the partition gate learns from the consumer group. */
export interface Ownership {
  /** False while the group rebalances: ownership is in flux, ask again. */
  readonly stable: boolean
  /** `topicPartitionKey`s this member owns in the group's current generation. */
  readonly owned: ReadonlySet<string>
}

/** The consumer-group facts the partition gate needs, behind a narrow interface (a stand-in in unit tests). */
export interface GroupMembership {
  /** Which of these partitions this member owns now, according to the group coordinator. */
  ownership(): Promise<Ownership>
  /** Aborted when the consumer is being stopped or disconnected (and when Detour stops). */
  readonly stopping: AbortSignal
}

/**
 * The consumer's membership lease: renewed by every successful heartbeat (and group join); it runs out
 * when none succeeded for `leaseMs` — the coordinator may evict this member soon, or did.
 */
export interface MembershipLease {
  /** Called when the lease runs out (once per lapse). */
  onLapse: (() => void) | undefined
}

/**
 * Watches the application's consumer:
 * - its member id (from `GROUP_JOIN`), to ask the coordinator which partitions this member owns
 *   (`DescribeGroups`) before a fenced partition is claimed again;
 * - its shutdown: kafkajs' `disconnect()` and `stop()` wait for the `eachMessage` in progress, so a message
 *   that waits (for its partition's rebuild, for room in the group store) must stop waiting first. kafkajs
 *   announces nothing before it waits, so both methods are wrapped to abort {@link stopping} first.
 */
export class ConsumerWatch implements GroupMembership, MembershipLease {
  private memberId: string | undefined
  private controller = new AbortController()
  private readonly restore: Array<() => void> = []
  // The gate's handler does not throw; a kafkajs timer must never see an error (HeartbeatLease drops it).
  private readonly lease: HeartbeatLease
  onLapse: (() => void) | undefined

  /** `leaseMs`: how long without a successful heartbeat before the lease runs out (see `sessionTimeoutMs`). */
  constructor(
    private readonly consumer: Consumer,
    leaseMs = 20_000,
  ) {
    this.lease = new HeartbeatLease(leaseMs, () => this.onLapse?.())
    this.restore.push(
      consumer.on(consumer.events.GROUP_JOIN, (event) => {
        this.memberId = event.payload.memberId
        this.lease.renew()
      }),
      consumer.on(consumer.events.HEARTBEAT, () => this.lease.renew()),
      // A crashed or stopped consumer is no member: nothing to renew until it joins again.
      consumer.on(consumer.events.CRASH, () => this.lease.end()),
      consumer.on(consumer.events.STOP, () => this.lease.end()),
      // A consumer connected again (after a disconnect) starts with a fresh signal.
      consumer.on(consumer.events.CONNECT, () => {
        if (this.controller.signal.aborted) this.controller = new AbortController()
      }),
    )
    for (const method of ['disconnect', 'stop'] as const) {
      const original = consumer[method].bind(consumer)
      const wrapped = (): Promise<void> => {
        this.abort(`the consumer's ${method}() was called`)
        return original()
      }
      consumer[method] = wrapped
      this.restore.push(() => {
        if (consumer[method] === wrapped) consumer[method] = original
      })
    }
  }

  get stopping(): AbortSignal {
    return this.controller.signal
  }

  abort(why: string): void {
    if (!this.controller.signal.aborted) this.controller.abort(new DetourStoppingError(`Stopped waiting: ${why}`))
  }

  async ownership(): Promise<Ownership> {
    const memberId = this.memberId
    if (memberId === undefined) return { stable: false, owned: new Set() }
    const group = await this.consumer.describeGroup()
    if (group.state !== 'Stable') return { stable: false, owned: new Set() }
    const member = group.members.find((m) => m.memberId === memberId)
    const owned = new Set<string>()
    if (member) {
      const decoded = AssignerProtocol.MemberAssignment.decode(member.memberAssignment)
      for (const [topic, partitions] of Object.entries(decoded?.assignment ?? {})) {
        for (const partition of partitions) owned.add(topicPartitionKey(topic, partition))
      }
    }
    return { stable: true, owned }
  }

  /** Puts the consumer's methods back (Detour stopped). */
  detach(): void {
    this.lease.end()
    for (const undo of this.restore.splice(0)) undo()
  }
}

export type { TopicPartition }

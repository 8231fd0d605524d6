import type { DeadLetterReason, HeldGroup, LifecycleState, StopResult, TopicPartition } from '@detour/core'

/**
 * Life cycle of a worker (core's {@link LifecycleState}): `idle` → `starting` → `running` → `stopping` →
 * `stopped`. `failed`: the start failed, or the consumer crashed and kafkajs will not restart it; call
 * `stop()`.
 */
export type WorkerState = LifecycleState

export type { StopResult }

/** How a retry record was resolved (its offset may then be committed). */
export type ResolutionKind =
  /** The handler succeeded; the tombstone is written. */
  | 'succeeded'
  /** Dead-lettered (unprocessable, deserialization, or exhausted under `release`); the tombstone is written. */
  | 'dead-lettered'
  /** A held group released by an operator; the tombstone is written. */
  | 'released'
  /**
   * The id was no longer pending when the record's turn came (a duplicate, or a record already resolved
   * before a restart or a rebalance): the handler is not called, the tombstone is written again
   * (harmless; it lets compaction drop a stray record). Counted in `detour_retry_duplicates_skipped_total`.
   */
  | 'already-resolved'
  /** The record lacked valid Detour headers; it is in the error topic (reason `malformed`). */
  | 'malformed'

/** A group a running worker holds (its `GET /groups/held` answer): the contract lives in core. */
export type { HeldGroup }

/** The answer to a release request. */
export type ReleaseResult =
  | { readonly released: true; readonly group: HeldGroup }
  | { readonly released: false; readonly reason: 'not-found' | 'not-running' | 'aborted' }

export interface PartitionStats {
  readonly topic: string
  readonly partition: number
  /** Unresolved records of the partition in memory. */
  readonly buffered: number
  /** `waiting`: assigned, waiting for the previous owner to release it (takeover); `active`: attempts may run; `revoking`: handed over, waiting for its handlers. */
  readonly phase: 'waiting' | 'active' | 'revoking'
  /** The offset committed last by this worker (next record to read after a restart). */
  readonly committedOffset: string | undefined
  /** The offset the next commit would store: the lowest unresolved offset, or last + 1. */
  readonly commitOffset: string | undefined
}

export interface RetryWorkerStats {
  readonly state: WorkerState
  readonly ready: boolean
  /** Random per worker instance; named in the offset metadata of its commits. */
  readonly instanceId: string
  /** Retry partitions assigned to this worker. */
  readonly assignedPartitions: number
  /** Unresolved retry records in memory. */
  readonly buffered: number
  /** Handlers running now (timed-out handlers that have not returned included). */
  readonly inFlight: number
  readonly heldGroups: number
  /** Partitions paused because the buffer is full. */
  readonly pausedPartitions: number
  /** The consumer group is rebalancing (no attempt starts until it has joined again). */
  readonly rebalancing: boolean
  /** When the consumer last heartbeat successfully (ISO-8601), if it did. */
  readonly lastHeartbeat: string | undefined
  readonly partitions: readonly PartitionStats[]
}

export interface StopOptions {
  /** How long to wait for in-flight work. @defaultValue the worker's `shutdownTimeoutMs` */
  readonly timeoutMs?: number
}

export interface ResolvedEvent {
  readonly kind: ResolutionKind
  readonly id: string | undefined
  readonly retryTopic: string
  readonly retryPartition: number
  readonly retryOffset: string
  readonly attempts: number
}

export interface DeadLetteredEvent {
  readonly reason: DeadLetterReason
  readonly id: string | undefined
  readonly errorTopic: string
  readonly attempts: number
}

export interface CommittedEvent {
  readonly offsets: ReadonlyArray<{ readonly topic: string; readonly partition: number; readonly offset: string; readonly state: 'active' | 'released' }>
}

export interface RebalancedEvent {
  readonly assigned: readonly TopicPartition[]
  readonly revoked: readonly TopicPartition[]
}

/** A newly assigned partition waited for its previous owner. */
export interface TakeoverEvent {
  readonly topic: string
  readonly partition: number
  /** `released`: the previous owner committed `state=released`; `timeout`: `handlerTimeoutMs` + 2 s passed first. */
  readonly outcome: 'released' | 'timeout'
  readonly previousOwner: string
  readonly waitedMs: number
}

/**
 * Events of a {@link RetryWorker}. They are emitted after the worker's state is consistent, and a listener
 * that throws never breaks the worker: its error becomes an `error` event (or a log line).
 */
export interface RetryWorkerEvents {
  /** The consumer joined its group and is consuming. */
  ready: []
  /** A background failure (commit, hand-off write, records deleted unread, a listener that threw); the worker keeps going. */
  error: [error: Error]
  /** The consumer crashed and will not restart: the worker no longer consumes. Call `stop()`. */
  crash: [error: Error]
  resolved: [event: ResolvedEvent]
  'dead-lettered': [event: DeadLetteredEvent]
  held: [group: HeldGroup]
  released: [group: HeldGroup]
  committed: [event: CommittedEvent]
  /** Retry partitions assigned after a rebalance, and the ones taken away. */
  rebalanced: [event: RebalancedEvent]
  /** A newly assigned partition waited for its previous owner and may now run. */
  'taken-over': [event: TakeoverEvent]
  stopped: [result: StopResult]
}

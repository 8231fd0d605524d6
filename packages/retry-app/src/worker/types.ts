import type { DeadLetterReason } from '@detour/core'

/**
 * Life cycle of a worker: `idle` → `starting` → `running` → `stopping` → `stopped`.
 * `failed`: the consumer crashed and kafkajs will not restart it; call `stop()`.
 */
export type WorkerState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed'

/** How a retry record was resolved (its offset may then be committed). */
export type ResolutionKind =
  /** The handler succeeded; the tombstone is written. */
  | 'succeeded'
  /** Dead-lettered (unprocessable, deserialization, or exhausted under `release`); the tombstone is written. */
  | 'dead-lettered'
  /** A held group released by an operator; the tombstone is written. */
  | 'released'
  /** The id was already completed; the tombstone is written again, the handler not called. */
  | 'duplicate'
  /** The record lacked valid Detour headers; it is in the error topic (reason `malformed`). */
  | 'malformed'

/** A group blocked by an exhausted message under the `hold` policy. */
export interface HeldGroup {
  /** The Detour id of the held message (`<topic>/<partition>/<offset>`). */
  readonly id: string
  /** Source topic and partition of the held message. */
  readonly topic: string
  readonly partition: number
  /** The group key, printable (UTF-8, or `base64:...`; `(none)` for a keyless message). */
  readonly groupKey: string
  /** Where the held retry record sits. */
  readonly retryTopic: string
  readonly retryPartition: number
  readonly retryOffset: string
  readonly attempts: number
  /** When the group was held (ISO-8601). */
  readonly since: string
  /** The last error message. */
  readonly lastError: string
}

/** The answer to a release request. */
export type ReleaseResult =
  | { readonly released: true; readonly group: HeldGroup }
  | { readonly released: false; readonly reason: 'not-found' | 'not-running' | 'aborted' }

export interface RetryWorkerStats {
  readonly state: WorkerState
  readonly ready: boolean
  /** Retry partitions assigned to this worker. */
  readonly assignedPartitions: number
  /** Unresolved retry records in memory. */
  readonly buffered: number
  /** Handlers running now. */
  readonly inFlight: number
  readonly heldGroups: number
  /** Partitions paused because the buffer is full. */
  readonly pausedPartitions: number
  readonly partitions: ReadonlyArray<{
    readonly topic: string
    readonly partition: number
    readonly buffered: number
    /** The offset committed last by this worker (next record to read after a restart). */
    readonly committedOffset: string | undefined
    /** The offset the next commit would store: the lowest unresolved offset, or last + 1. */
    readonly commitOffset: string | undefined
  }>
}

export interface StopOptions {
  /** How long to wait for in-flight work. @defaultValue the worker's `shutdownTimeoutMs` */
  readonly timeoutMs?: number
}

export interface StopResult {
  /**
   * True when nothing was abandoned, the final commit reached the broker (or nothing was left to commit),
   * and no error occurred while stopping.
   */
  readonly clean: boolean
  /** In-flight messages abandoned at the timeout (not committed: they are processed again after a restart). */
  readonly abandoned: number
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
  readonly offsets: ReadonlyArray<{ readonly topic: string; readonly partition: number; readonly offset: string }>
}

/** Events of a {@link RetryWorker}. `error` is for background failures the worker survives. */
export interface RetryWorkerEvents {
  /** The consumer joined its group and is consuming. */
  ready: []
  /** A background failure (commit, hand-off write, unexpected bug); the worker keeps going. */
  error: [error: Error]
  /** The consumer crashed and will not restart: the worker no longer consumes. Call `stop()`. */
  crash: [error: Error]
  resolved: [event: ResolvedEvent]
  'dead-lettered': [event: DeadLetteredEvent]
  held: [group: HeldGroup]
  released: [group: HeldGroup]
  committed: [event: CommittedEvent]
  /** Retry partitions assigned after a rebalance, and the ones taken away. */
  rebalanced: [event: { assigned: ReadonlyArray<{ topic: string; partition: number }>; revoked: ReadonlyArray<{ topic: string; partition: number }> }]
  stopped: [result: StopResult]
}

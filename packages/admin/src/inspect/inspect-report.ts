import type { HeldGroup } from '../worker/worker-client.js'

/**
 * Where a pending id stands:
 * - `held`: the worker exhausted its retries and holds the group (release it through the worker);
 * - `retrying`: the first id of its group; its retry record waits for the worker (backoff, or not read yet);
 * - `waiting`: behind earlier ids of its group; its retry record is there;
 * - `no-retry-record`: no unresolved retry record carries the id — nothing will ever release it (a lost
 *   retry record, or a worker that resolved it without its tombstone landing): a stuck id for `release --direct`.
 *   (A main app that crashed between its two writes resumes the hand-off on redelivery: give it a minute.)
 * - `unknown`: the retry topic was not read (`--no-retry-scan`).
 */
export type PendingState = 'held' | 'retrying' | 'waiting' | 'no-retry-record' | 'unknown'

export interface PendingIdView {
  readonly id: string
  /** 0 for the first id of its group: the one that blocks the others. */
  readonly position: number
  readonly reason: string | undefined
  readonly redirectedAt: string | undefined
  /** Age from `detour-redirected-at`, when the header is there. */
  readonly ageMs: number | undefined
  readonly redirectOffset: string
  readonly state: PendingState
  /** Its retry record, when the retry topic was read and one carries the id. */
  readonly retry?: { readonly offset: string; readonly errorName?: string; readonly errorMessage?: string }
  /** What the worker says, when it holds the id. */
  readonly held?: HeldGroup
}

export interface GroupView {
  /** Printable group key (core `displayGroupKey`). */
  readonly groupKey: string
  /** The key's bytes, base64 (`null` for keyless messages). */
  readonly groupKeyBase64: string | null
  readonly ids: readonly PendingIdView[]
}

export interface OldestPending {
  readonly id: string
  readonly redirectedAt: string
  readonly ageMs: number
}

export interface PartitionView {
  readonly partition: number
  readonly pendingIds: number
  readonly groups: readonly GroupView[]
  readonly oldest: OldestPending | undefined
  /** The redirect partition was read up to this (last stable) offset. */
  readonly redirectEnd: string
  /** False when the read stopped early (compacted tail): the view may miss records. */
  readonly complete: boolean
  /** The worker's committed offset on the retry partition (what it resolved), when it committed. */
  readonly workerCommitted: string | undefined
}

export interface TopicView {
  readonly source: string
  readonly retry: string
  readonly redirect: string
  readonly error: string
  /** False when the redirect topic does not exist (nothing was ever redirected, or wrong names). */
  readonly redirectExists: boolean
  readonly pendingIds: number
  readonly groups: number
  readonly oldest: OldestPending | undefined
  /** Every partition of the redirect topic. */
  readonly partitions: readonly PartitionView[]
  /** Records ignored while reading: malformed, of another consumer group, tombstones of ids not pending. */
  readonly ignored: { readonly malformed: number; readonly foreign: number; readonly unknownTombstones: number }
}

/** What `detour inspect` shows and `GET /api/pending` answers. */
export interface InspectReport {
  readonly consumerGroup: string
  readonly generatedAt: string
  readonly pendingIds: number
  readonly groups: number
  readonly oldest: OldestPending | undefined
  readonly topics: readonly TopicView[]
  /** Present when a worker URL was given. */
  readonly worker?: {
    readonly url: string
    readonly held: readonly HeldGroup[]
    /** Held by the worker but not pending on the redirect topics (another scope, or released meanwhile). */
    readonly heldNotPending: readonly HeldGroup[]
    readonly error?: string
  }
  readonly warnings: readonly string[]
}

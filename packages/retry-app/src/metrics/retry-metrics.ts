import type { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { METRIC_PREFIX, counter, gauge, histogram } from '@detour/core'

/** Prefix of the retry worker's metrics. */
export const RETRY_METRIC_PREFIX = `${METRIC_PREFIX}retry_`

const p = (name: string): string => `${RETRY_METRIC_PREFIX}${name}`

/**
 * The retry worker's Prometheus metrics. Label values are bounded: `topic` is a configured source topic,
 * `reason` a dead-letter reason, `target` a hand-off kind; never keys or ids. Gauges move by deltas, so
 * two workers sharing a registry add up instead of overwriting each other.
 */
export class RetryMetrics {
  readonly attempted: Counter<'topic'>
  readonly succeeded: Counter<'topic'>
  readonly exhausted: Counter<'topic'>
  readonly deadLettered: Counter<'topic' | 'reason'>
  readonly duplicatesSkipped: Counter<'topic'>
  readonly tombstonesWritten: Counter<'topic'>
  readonly handOffFailures: Counter<'target'>
  readonly commitFailures: Counter
  readonly handlerTimeouts: Counter<'topic'>
  readonly takeoverWaits: Counter<'outcome'>
  readonly takeoverWait: Histogram
  readonly partitionReleases: Counter<'outcome'>
  readonly purges: Counter<'topic'>
  readonly purgeFailures: Counter<'topic'>
  readonly deletedUnread: Counter<'topic'>
  readonly attempts: Histogram<'topic'>
  readonly backoffWait: Histogram<'topic'>
  readonly processingLatency: Histogram<'topic'>
  readonly handlerDuration: Histogram<'topic'>
  readonly inFlight: Gauge
  readonly buffered: Gauge
  readonly heldGroups: Gauge

  constructor(readonly registry: Registry) {
    this.attempted = counter(registry, {
      name: p('retries_attempted_total'),
      help: 'Handler invocations by the retry worker',
      labelNames: ['topic'],
    })
    this.succeeded = counter(registry, {
      name: p('retries_succeeded_total'),
      help: 'Retry records whose handler succeeded (tombstone written)',
      labelNames: ['topic'],
    })
    this.exhausted = counter(registry, {
      name: p('retries_exhausted_total'),
      help: 'Retry records that used up maxAttempts or maxRetryDurationMs',
      labelNames: ['topic'],
    })
    this.deadLettered = counter(registry, {
      name: p('dead_lettered_total'),
      help: 'Records written to the error topic, by reason',
      labelNames: ['topic', 'reason'],
    })
    this.duplicatesSkipped = counter(registry, {
      name: p('duplicates_skipped_total'),
      help: 'Retry records whose id was no longer pending when their turn came (already resolved: a duplicate, or a replay after a restart or rebalance); handler not called, tombstone written again',
      labelNames: ['topic'],
    })
    this.tombstonesWritten = counter(registry, {
      name: p('tombstones_written_total'),
      help: 'Tombstones written to the redirect topic (acknowledged)',
      labelNames: ['topic'],
    })
    this.handOffFailures = counter(registry, {
      name: p('hand_off_failures_total'),
      help: 'Failed tombstone or dead-letter writes (each is retried until it succeeds)',
      labelNames: ['target'],
    })
    this.commitFailures = counter(registry, {
      name: p('commit_failures_total'),
      help: 'Failed offset commits of the retry consumer (retried at the next interval)',
    })
    this.handlerTimeouts = counter(registry, {
      name: p('handler_timeouts_total'),
      help: 'Handler attempts that did not return within handlerTimeoutMs (counted as transient failures)',
      labelNames: ['topic'],
    })
    this.takeoverWaits = counter(registry, {
      name: p('takeover_waits_total'),
      help: 'Newly assigned partitions that waited for their previous owner, by how the wait ended (released, timeout)',
      labelNames: ['outcome'],
    })
    this.takeoverWait = histogram(registry, {
      name: p('takeover_wait_seconds'),
      help: 'Time a newly assigned partition waited for its previous owner to release it',
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120],
    })
    this.partitionReleases = counter(registry, {
      name: p('partition_releases_total'),
      help: 'Partitions handed over (revoked or stopped), by whether their handlers settled in time (released) or not (unsettled)',
      labelNames: ['outcome'],
    })
    this.purges = counter(registry, {
      name: p('purges_total'),
      help: 'Resolved records deleted from the retry topic (deleteTopicRecords requests up to the committed offset)',
      labelNames: ['topic'],
    })
    this.purgeFailures = counter(registry, {
      name: p('purge_failures_total'),
      help: 'Failed deleteTopicRecords requests on the retry topic',
      labelNames: ['topic'],
    })
    this.deletedUnread = counter(registry, {
      name: p('records_deleted_unread_total'),
      help: 'Retry records deleted before the worker read them (committed offset below the log start offset at assignment)',
      labelNames: ['topic'],
    })
    this.attempts = histogram(registry, {
      name: p('attempts'),
      help: 'Handler attempts needed per resolved retry record',
      labelNames: ['topic'],
      buckets: [1, 2, 3, 4, 5, 7, 10, 15, 20, 30, 50],
    })
    this.backoffWait = histogram(registry, {
      name: p('backoff_wait_seconds'),
      help: 'Backoff delays scheduled before a retry',
      labelNames: ['topic'],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600],
    })
    this.processingLatency = histogram(registry, {
      name: p('processing_latency_seconds'),
      help: 'Time from the redirect (detour-redirected-at) to the resolution of a retry record',
      labelNames: ['topic'],
      buckets: [0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400],
    })
    this.handlerDuration = histogram(registry, {
      name: p('handler_duration_seconds'),
      help: 'Duration of handler invocations in the retry worker',
      labelNames: ['topic'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    })
    this.inFlight = gauge(registry, { name: p('in_flight'), help: 'Handlers running now (timed-out handlers that have not returned included)' })
    this.buffered = gauge(registry, { name: p('buffered_messages'), help: 'Unresolved retry records held in memory' })
    this.heldGroups = gauge(registry, {
      name: p('held_groups'),
      help: 'Groups blocked by an exhausted message under the hold policy (release with POST /groups/release)',
    })
  }
}

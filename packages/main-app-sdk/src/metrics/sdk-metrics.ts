import type { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { counter, gauge, histogram } from '@detour/core'

/** The main-app SDK's metrics. Label values are bounded (topic names and fixed reasons). */
export interface SdkMetrics {
  readonly processed: Counter<'topic'>
  readonly redirected: Counter<'topic' | 'reason'>
  readonly deadLettered: Counter<'topic' | 'reason'>
  readonly inPlaceRetries: Counter<'topic'>
  readonly handOffFailures: Counter<'topic'>
  readonly redirectRecordsApplied: Counter<'topic' | 'kind'>
  readonly unknownTombstones: Counter<'topic'>
  readonly malformedRedirectRecords: Counter<'topic'>
  readonly pendingIds: Gauge
  readonly groups: Gauge
  readonly storeUtilisation: Gauge
  readonly pausedPartitions: Gauge
  readonly ready: Gauge
  readonly rebuildDuration: Histogram
}

export function createSdkMetrics(registry: Registry, collect: () => { pendingIds: number; groups: number; utilisation: number; paused: number; ready: boolean }): SdkMetrics {
  const p = 'detour_'
  const snapshot = (): ReturnType<typeof collect> => collect()
  return {
    processed: counter(registry, { name: `${p}messages_processed_total`, help: 'Messages the wrapped handler processed successfully', labelNames: ['topic'] }),
    redirected: counter(registry, {
      name: `${p}messages_redirected_total`,
      help: 'Messages sent to the retry topic, by reason (failure, ordering, resumed)',
      labelNames: ['topic', 'reason'],
    }),
    deadLettered: counter(registry, { name: `${p}messages_dead_lettered_total`, help: 'Messages sent to the error topic, by reason', labelNames: ['topic', 'reason'] }),
    inPlaceRetries: counter(registry, { name: `${p}in_place_retries_total`, help: 'Handler attempts repeated in place after a transient failure', labelNames: ['topic'] }),
    handOffFailures: counter(registry, {
      name: `${p}handoff_failures_total`,
      help: 'Failed writes to retry/redirect/error topics (the message is not committed and is handled again)',
      labelNames: ['topic'],
    }),
    redirectRecordsApplied: counter(registry, {
      name: `${p}redirect_records_applied_total`,
      help: 'Redirect-topic records applied to the group store (kind: pending, released)',
      labelNames: ['topic', 'kind'],
    }),
    unknownTombstones: counter(registry, { name: `${p}unknown_tombstones_total`, help: 'Tombstones for ids that were not pending (ignored)', labelNames: ['topic'] }),
    malformedRedirectRecords: counter(registry, { name: `${p}malformed_redirect_records_total`, help: 'Redirect-topic records that could not be decoded (ignored)', labelNames: ['topic'] }),
    pendingIds: gauge(registry, {
      name: `${p}pending_ids`,
      help: 'Pending ids in the group store (assigned partitions)',
      collect() {
        this.set(snapshot().pendingIds)
      },
    }),
    groups: gauge(registry, {
      name: `${p}groups`,
      help: 'Groups with pending ids (assigned partitions)',
      collect() {
        this.set(snapshot().groups)
      },
    }),
    storeUtilisation: gauge(registry, {
      name: `${p}store_utilisation_ratio`,
      help: 'Pending ids of assigned partitions / maxPendingIds',
      collect() {
        this.set(snapshot().utilisation)
      },
    }),
    pausedPartitions: gauge(registry, {
      name: `${p}paused_partitions`,
      help: 'Source partitions paused because the group store is full (backpressure)',
      collect() {
        this.set(snapshot().paused)
      },
    }),
    ready: gauge(registry, {
      name: `${p}ready`,
      help: '1 when every assigned partition is rebuilt from its redirect partition',
      collect() {
        this.set(snapshot().ready ? 1 : 0)
      },
    }),
    rebuildDuration: histogram(registry, {
      name: `${p}rebuild_duration_seconds`,
      help: 'Time from a partition assignment until the assigned partitions are rebuilt',
      buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    }),
  }
}

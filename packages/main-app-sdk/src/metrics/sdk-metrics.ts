import type { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { METRIC_PREFIX, counter, gauge, histogram } from '@detour/core'

/** The main-app SDK's metrics. Label values are bounded (topic names and fixed reasons). */
export interface SdkMetrics {
  readonly processed: Counter<'topic'>
  readonly redirected: Counter<'topic' | 'reason'>
  readonly deadLettered: Counter<'topic' | 'reason'>
  readonly inPlaceRetries: Counter<'topic'>
  readonly skipped: Counter<'topic'>
  readonly handOffFailures: { inc(labels: { topic: string }): void }
  readonly pendingIds: Gauge
  readonly groups: Gauge
  readonly storeUtilisation: Gauge
  readonly pausedPartitions: Gauge
  readonly ready: Gauge
  readonly rebuildDuration: Histogram
}

export interface SdkGaugeValues {
  readonly pendingIds: number
  readonly groups: number
  readonly utilisation: number
  readonly paused: number
  readonly ready: boolean
}

export function createSdkMetrics(registry: Registry, collect: () => SdkGaugeValues): SdkMetrics {
  const p = METRIC_PREFIX
  const handOffFailures = counter(registry, {
    name: `${p}hand_off_failures_total`,
    help: 'Failed or fenced writes to the retry, redirect or error topic (the message is not committed and is handled again)',
    labelNames: ['topic'],
  })
  // The name before 0.2, kept for dashboards and alerts that use it.
  const legacyHandOffFailures = counter(registry, {
    name: `${p}handoff_failures_total`,
    help: 'Deprecated: use detour_hand_off_failures_total',
    labelNames: ['topic'],
  })
  return {
    processed: counter(registry, { name: `${p}messages_processed_total`, help: 'Messages the wrapped handler processed successfully', labelNames: ['topic'] }),
    redirected: counter(registry, {
      name: `${p}messages_redirected_total`,
      help: 'Messages sent to the retry topic, by reason (failure, ordering, resumed)',
      labelNames: ['topic', 'reason'],
    }),
    deadLettered: counter(registry, { name: `${p}messages_dead_lettered_total`, help: 'Messages sent to the error topic, by reason', labelNames: ['topic', 'reason'] }),
    skipped: counter(registry, {
      name: `${p}messages_skipped_total`,
      help: 'Messages delivered again (a rewound position) behind a later pending id of their group: decided before, not run again',
      labelNames: ['topic'],
    }),
    inPlaceRetries: counter(registry, { name: `${p}in_place_retries_total`, help: 'Handler attempts repeated in place after a transient failure', labelNames: ['topic'] }),
    handOffFailures: {
      inc(labels) {
        handOffFailures.inc(labels)
        legacyHandOffFailures.inc(labels)
      },
    },
    pendingIds: gauge(registry, {
      name: `${p}pending_ids`,
      help: 'Pending ids in the group store (assigned partitions)',
      collect() {
        this.set(collect().pendingIds)
      },
    }),
    groups: gauge(registry, {
      name: `${p}groups`,
      help: 'Groups with pending ids (assigned partitions)',
      collect() {
        this.set(collect().groups)
      },
    }),
    storeUtilisation: gauge(registry, {
      name: `${p}store_utilisation_ratio`,
      help: 'Pending ids of assigned partitions / maxPendingIds',
      collect() {
        this.set(collect().utilisation)
      },
    }),
    pausedPartitions: gauge(registry, {
      name: `${p}paused_partitions`,
      help: 'Source partitions paused because the group store is full (backpressure)',
      collect() {
        this.set(collect().paused)
      },
    }),
    ready: gauge(registry, {
      name: `${p}ready`,
      help: '1 when every assigned partition is claimed and rebuilt from its redirect partition',
      collect() {
        this.set(collect().ready ? 1 : 0)
      },
    }),
    rebuildDuration: histogram(registry, {
      name: `${p}rebuild_duration_seconds`,
      help: 'Time from a partition assignment until the assigned partitions are claimed and rebuilt',
      buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    }),
  }
}

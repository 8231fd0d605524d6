import type { Registry } from 'prom-client'
import type { FollowerMetrics } from '../follower/redirect-follower.js'
import { METRIC_PREFIX, counter } from './registry-helpers.js'

/**
 * The redirect follower's metrics, the same in the main app and the retry worker. Label `topic` is the
 * source topic (bounded: configured topics).
 */
export function createFollowerMetrics(registry: Registry): FollowerMetrics {
  const applied = counter(registry, {
    name: `${METRIC_PREFIX}redirect_records_applied_total`,
    help: 'Redirect-topic records applied to the group store (kind: pending, released)',
    labelNames: ['topic', 'kind'] as const,
  })
  const unknown = counter(registry, {
    name: `${METRIC_PREFIX}unknown_tombstones_total`,
    help: 'Tombstones for ids that were not pending (ignored: already released, or written twice)',
    labelNames: ['topic'] as const,
  })
  const malformed = counter(registry, {
    name: `${METRIC_PREFIX}malformed_redirect_records_total`,
    help: 'Redirect-topic records that could not be decoded (ignored)',
    labelNames: ['topic'] as const,
  })
  const foreign = counter(registry, {
    name: `${METRIC_PREFIX}foreign_redirect_records_total`,
    help: 'Redirect-topic records written by another consumer group (ignored; give each group its own topics)',
    labelNames: ['topic'] as const,
  })
  return {
    applied: (topic, kind, count) => applied.inc({ topic, kind }, count),
    unknownTombstones: (topic, count) => unknown.inc({ topic }, count),
    malformed: (topic) => malformed.inc({ topic }),
    foreign: (topic) => foreign.inc({ topic }),
  }
}

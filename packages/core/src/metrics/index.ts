export { METRIC_PREFIX, counter, gauge, histogram } from './registry-helpers.js'
export { createFollowerMetrics } from './follower-metrics.js'

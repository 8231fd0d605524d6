export { METRIC_PREFIX, counter, gauge, histogram } from './registry-helpers.js'

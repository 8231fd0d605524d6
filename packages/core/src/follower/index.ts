export { RedirectFollower } from './redirect-follower.js'
export type { RedirectFollowerOptions, FollowerMetrics, FollowerState, WaitOptions } from './redirect-follower.js'
export { StableOffsetReader } from './stable-offsets.js'

export type { LifecycleState, StopResult } from './lifecycle.js'

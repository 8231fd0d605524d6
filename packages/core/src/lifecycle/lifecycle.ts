/**
 * The life cycle of a Detour component (the main app's `Detour`, the `RetryWorker`): one state value.
 *
 * `idle` → `starting` → `running` → `stopping` → `stopped`; `failed` when it can no longer work (the retry
 * worker's consumer crashed for good; a failed start). `start()` is idempotent while starting or running
 * and rejects once stopping; `stop()` is idempotent and returns the first call's result.
 */
export type LifecycleState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed'

/** What `stop()` reports. */
export interface StopResult {
  /**
   * True when nothing was abandoned, the last offsets reached the broker (or nothing was left to commit),
   * and no error occurred while stopping.
   */
  readonly clean: boolean
  /** In-flight work abandoned at the timeout (not committed: it is done again after a restart). */
  readonly abandoned: number
  /**
   * Set when the stop gave up on a step (the last commit, the disconnect) at its overall bound: it returned
   * anyway, with in-flight work aborted. Exit the process: a client may still be connected.
   */
  readonly timedOut?: true
}

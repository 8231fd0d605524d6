/**
 * A group blocked by an exhausted message under the `hold` policy: what a retry worker answers on
 * `GET /groups/held` (and the `held` and `inspect` commands show).
 */
export interface HeldGroup {
  /** The Detour id of the held message (`<topic>/<partition>/<offset>`). */
  readonly id: string
  /** Source topic and partition of the held message. */
  readonly topic: string
  readonly partition: number
  /** The group key, printable (UTF-8, or `base64:...`; `(none)` for a keyless message). */
  readonly groupKey: string
  /** Where the held retry record sits. */
  readonly retryTopic: string
  readonly retryPartition: number
  readonly retryOffset: string
  readonly attempts: number
  /** When the group was held (ISO-8601). */
  readonly since: string
  /** The last error message. */
  readonly lastError: string
}

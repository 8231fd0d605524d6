import { seededRandom } from './prng.js'

/** The JSON value of a workload message, as the example handler reads it. */
export interface WorkloadValue {
  /** Identifies the run, so the checker ignores records left on reused topics by earlier runs. */
  readonly run: string
  readonly key: string
  /** 1, 2, 3, … per key, in production order. */
  readonly seq: number
  /** The main app fails it (transient); the retry worker fails it with probability DEMO_WORKER_FAILURE_RATE. */
  readonly transient?: boolean
  /** The handler throws `UnprocessableMessageError`: it must end in the error topic. */
  readonly poison?: boolean
}

export interface WorkloadMessage extends WorkloadValue {
  /** `key:seq`, unique within a run. */
  readonly ref: string
}

export interface WorkloadOptions {
  /** @defaultValue 2000 */
  readonly messages?: number
  /** @defaultValue 100 */
  readonly keys?: number
  /** Fraction of messages marked transient. @defaultValue 0.05 */
  readonly failureRate?: number
  /** Messages marked poison. @defaultValue 5 */
  readonly poison?: number
  /** @defaultValue 42 */
  readonly seed?: number
  /** Run id written into every value. @defaultValue `run-<seed>` */
  readonly run?: string
  /**
   * Exact choices instead of random ones (scenario tests): refs (`key:seq`) to mark transient / poison.
   * When given, `failureRate` / `poison` are ignored for that flag.
   */
  readonly transientRefs?: readonly string[]
  readonly poisonRefs?: readonly string[]
}

export interface Workload {
  readonly run: string
  readonly seed: number
  readonly keys: readonly string[]
  /** In production order. */
  readonly messages: readonly WorkloadMessage[]
  readonly byRef: ReadonlyMap<string, WorkloadMessage>
  readonly transient: number
  readonly poison: number
}

export const workloadDefaults = { messages: 2000, keys: 100, failureRate: 0.05, poison: 5, seed: 42 } as const

export function keyName(index: number, keys: number): string {
  return `k${String(index).padStart(String(Math.max(keys - 1, 0)).length, '0')}`
}

export function ref(key: string, seq: number): string {
  return `${key}:${seq}`
}

/**
 * A deterministic workload: `messages` spread over `keys` at random (seeded), each key numbering its
 * messages 1, 2, 3, …; an exact `round(messages × failureRate)` of them transient and `poison` of them
 * poison (never both).
 */
export function generateWorkload(options: WorkloadOptions = {}): Workload {
  const messages = options.messages ?? workloadDefaults.messages
  const keyCount = options.keys ?? workloadDefaults.keys
  const failureRate = options.failureRate ?? workloadDefaults.failureRate
  const poisonCount = options.poison ?? workloadDefaults.poison
  const seed = options.seed ?? workloadDefaults.seed
  if (!Number.isInteger(messages) || messages < 0) throw new RangeError(`messages must be an integer >= 0, got ${messages}`)
  if (!Number.isInteger(keyCount) || keyCount < 1) throw new RangeError(`keys must be an integer >= 1, got ${keyCount}`)
  if (!(failureRate >= 0 && failureRate <= 1)) throw new RangeError(`failureRate must be within 0..1, got ${failureRate}`)
  const transientCount = options.transientRefs ? 0 : Math.round(messages * failureRate)
  const randomPoison = options.poisonRefs ? 0 : poisonCount
  if (!Number.isInteger(randomPoison) || randomPoison < 0) throw new RangeError(`poison must be an integer >= 0, got ${poisonCount}`)
  if (transientCount + randomPoison > messages) {
    throw new RangeError(`${transientCount} transient + ${randomPoison} poison messages do not fit in ${messages} messages`)
  }
  const random = seededRandom(seed)
  const keys = Array.from({ length: keyCount }, (_, i) => keyName(i, keyCount))
  const seqs = new Map<string, number>()
  const draft = Array.from({ length: messages }, () => {
    const key = random.pick(keys)
    const seq = (seqs.get(key) ?? 0) + 1
    seqs.set(key, seq)
    return { key, seq }
  })
  const order = random.shuffle(draft.map((_, i) => i))
  const transient = new Set(order.slice(0, transientCount))
  const poison = new Set(order.slice(transientCount, transientCount + randomPoison))
  const transientRefs = new Set(options.transientRefs ?? [])
  const poisonRefs = new Set(options.poisonRefs ?? [])
  const run = options.run ?? `run-${seed}`
  const out: WorkloadMessage[] = draft.map(({ key, seq }, i) => {
    const r = ref(key, seq)
    const isPoison = poison.has(i) || poisonRefs.has(r)
    const isTransient = !isPoison && (transient.has(i) || transientRefs.has(r))
    return { run, key, seq, ref: r, ...(isTransient ? { transient: true } : {}), ...(isPoison ? { poison: true } : {}) }
  })
  for (const wanted of [...transientRefs, ...poisonRefs]) {
    if (!out.some((m) => m.ref === wanted)) throw new RangeError(`${wanted} is not part of the workload (check keys/messages/seed)`)
  }
  return {
    run,
    seed,
    keys,
    messages: out,
    byRef: new Map(out.map((m) => [m.ref, m])),
    transient: out.filter((m) => m.transient).length,
    poison: out.filter((m) => m.poison).length,
  }
}

/** The bytes the producer writes for a workload message. */
export function encodeValue(message: WorkloadMessage): string {
  const { ref: _ref, ...value } = message
  return JSON.stringify(value)
}

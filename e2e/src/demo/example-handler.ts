/**
 * The handler of the demo and of the end-to-end suites, loaded by BOTH the main app
 * (`DETOUR_HANDLER=e2e/dist/demo/example-handler.js`) and the retry worker
 * (`detour-retry run --handler e2e/dist/demo/example-handler.js`), exactly like a user's handler module.
 *
 * Input: a JSON value `{ run, key, seq, transient?, poison? }`.
 * - `poison` → `UnprocessableMessageError` (the message goes to the error topic).
 * - `transient` → in the main app (no `detour-id` header) always a transient error; in the retry worker
 *   (a `detour-id` header is present) a transient error with probability `DEMO_WORKER_FAILURE_RATE`
 *   per attempt (default 0.3), always for keys listed in `DEMO_ALWAYS_FAIL_KEYS`, and always for the first
 *   `DEMO_WORKER_FAIL_FIRST` attempts of each id in this process.
 * - success → `{ run, key, seq, by, id, src }` is written to `DEMO_OUTPUT_TOPIC` (default
 *   `detour-demo.processed`), keyed by the message key, and the handler waits for the acknowledgement:
 *   the output topic's per-key order is the processing order.
 *
 * Environment: `DEMO_BROKERS` (or `DETOUR_BROKERS`), `DEMO_INSTANCE` (names the main app: `by` is
 * `main-<instance>` or `worker`), `DEMO_PROCESSING_DELAY_MS` (optional per-message work time).
 */
import { Kafka, Partitioners, logLevel, type EachMessagePayload, type Producer } from 'kafkajs'
import { DetourHeaders, UnprocessableMessageError, headerString, type ErrorClassifier } from '@detour/core'

/** Transient failures of the demo: an ordinary error, retried by Detour. */
export class DemoTransientError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'DemoTransientError'
  }
}

interface Settings {
  readonly brokers: string[]
  readonly outputTopic: string
  readonly workerFailureRate: number
  readonly alwaysFailKeys: ReadonlySet<string>
  readonly workerFailFirst: number
  readonly instance: string
  readonly processingDelayMs: number
}

function number(name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a number >= 0, got "${raw}"`)
  return value
}

let cached: Settings | undefined
function settings(): Settings {
  cached ??= {
    brokers: (process.env.DEMO_BROKERS ?? process.env.DETOUR_BROKERS ?? '')
      .split(',')
      .map((b) => b.trim())
      .filter(Boolean),
    outputTopic: process.env.DEMO_OUTPUT_TOPIC || 'detour-demo.processed',
    workerFailureRate: number('DEMO_WORKER_FAILURE_RATE', 0.3),
    alwaysFailKeys: new Set((process.env.DEMO_ALWAYS_FAIL_KEYS ?? '').split(',').map((k) => k.trim()).filter(Boolean)),
    workerFailFirst: number('DEMO_WORKER_FAIL_FIRST', 0),
    instance: process.env.DEMO_INSTANCE || '0',
    processingDelayMs: number('DEMO_PROCESSING_DELAY_MS', 0),
  }
  return cached
}

let producer: Promise<Producer> | undefined

/** One producer per process, created on first use (the worker calls the handler concurrently). */
function outputProducer(): Promise<Producer> {
  producer ??= (async () => {
    const { brokers } = settings()
    if (brokers.length === 0) throw new Error('example handler: set DEMO_BROKERS (or DETOUR_BROKERS) to host:port[,host:port]')
    const created = new Kafka({ clientId: 'detour-demo-handler', brokers, logLevel: logLevel.NOTHING, retry: { initialRetryTime: 100, retries: 8 } }).producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      allowAutoTopicCreation: false,
    })
    await created.connect()
    return created
  })().catch((error: unknown) => {
    producer = undefined
    throw error
  })
  return producer
}

/** Attempts per id in this process (for DEMO_WORKER_FAIL_FIRST). */
const attempts = new Map<string, number>()

interface Value {
  run?: unknown
  key?: unknown
  seq?: unknown
  transient?: unknown
  poison?: unknown
}

export async function handler({ topic, partition, message }: EachMessagePayload): Promise<void> {
  const config = settings()
  const value = JSON.parse(message.value?.toString('utf8') ?? 'null') as Value | null // SyntaxError → error topic
  if (value === null || typeof value !== 'object' || typeof value.key !== 'string' || typeof value.seq !== 'number') {
    throw new UnprocessableMessageError(`expected {"key": string, "seq": number}, got ${message.value?.toString('utf8').slice(0, 200) ?? 'null'}`)
  }
  const detourId = headerString(message.headers, DetourHeaders.ID)
  const inWorker = detourId !== undefined
  if (value.poison === true) throw new UnprocessableMessageError(`poison message ${value.key}:${value.seq}`)
  if (value.transient === true) {
    if (!inWorker) throw new DemoTransientError(`transient failure of ${value.key}:${value.seq} in the main app`)
    const attempt = (attempts.get(detourId) ?? 0) + 1
    attempts.set(detourId, attempt)
    if (attempt <= config.workerFailFirst) {
      throw new DemoTransientError(`transient failure of ${value.key}:${value.seq} in the worker (attempt ${attempt} of the first ${config.workerFailFirst})`)
    }
    if (config.alwaysFailKeys.has(value.key)) throw new DemoTransientError(`key ${value.key} always fails in the worker`)
    if (Math.random() < config.workerFailureRate) throw new DemoTransientError(`transient failure of ${value.key}:${value.seq} in the worker`)
  }
  if (config.processingDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, config.processingDelayMs))
  const by = inWorker ? 'worker' : `main-${config.instance}`
  const id = detourId ?? `${topic}/${partition}/${message.offset}`
  const out = await outputProducer()
  await out.send({
    topic: config.outputTopic,
    acks: -1,
    messages: [{ key: value.key, value: JSON.stringify({ run: value.run, key: value.key, seq: value.seq, by, id }) }],
  })
}

/** Demo errors are classified by name, so a second copy of this module still agrees. */
export const classify: ErrorClassifier = (error) =>
  error instanceof Error && error.name === 'DemoTransientError' ? 'transient' : undefined

/** Disconnects the output producer (the main app calls it on shutdown). */
export async function close(): Promise<void> {
  const current = producer
  producer = undefined
  if (current) await (await current.catch(() => undefined))?.disconnect()
}

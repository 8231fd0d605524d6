import { execFile, spawnSync } from 'node:child_process'
import { RETRY_TOPIC_CONFIG, detourTopics, type DetourTopics } from '@detour/core'
import type { TestBroker } from '@detour/testkit'
import { scrape, sumOf, type Sample } from './metrics-text.js'
import { programs, repoRoot } from './paths.js'
import { freePort, type ManagedProcess, type ProcessSupervisor } from './process-supervisor.js'

/**
 * Consumer timing for every child: the broker's own (`broker.consumerTiming`: sessions as short as that
 * broker allows, because a rebalance waits for a killed member's session to expire; fetch waits of 100 ms).
 * On the embedded broker only, `metadataMaxAge`: the mock keeps a downed broker as partition leader but
 * leaves it out of Metadata, so a kafkajs consumer stops fetching that broker's partitions and only
 * notices it is back at its next periodic metadata refresh (kafkajs default: 5 minutes).
 */
export function childConsumerTiming(broker: Pick<TestBroker, 'mode' | 'consumerTiming'>): {
  sessionTimeout: number
  rebalanceTimeout: number
  heartbeatInterval: number
  maxWaitTimeInMs: number
  metadataMaxAge: number | undefined
} {
  const { sessionTimeout, rebalanceTimeout, heartbeatInterval, maxWaitTimeInMs } = broker.consumerTiming
  // On a real cluster the main apps' rebalances wait up to 30 s for a member still inside a handler (Detour
  // heartbeats for it: a handler's write retried through a broker failover takes 9 s and more); a killed
  // member is still removed at its session timeout.
  return {
    sessionTimeout,
    rebalanceTimeout: broker.mode === 'embedded' ? rebalanceTimeout : Math.max(rebalanceTimeout, 30_000),
    heartbeatInterval,
    maxWaitTimeInMs,
    metadataMaxAge: broker.mode === 'embedded' ? 5000 : undefined,
  }
}

export interface HandlerSettings {
  /** Probability that a transient message fails again in the worker, per attempt. @defaultValue 0.3 */
  readonly workerFailureRate?: number
  /** Keys whose transient messages fail every attempt in the worker (forces exhaustion). */
  readonly alwaysFailKeys?: readonly string[]
  /** The first N worker attempts of each id fail (per worker process). @defaultValue 0 */
  readonly workerFailFirst?: number
  /** Simulated work per message. @defaultValue 0 */
  readonly processingDelayMs?: number
}

export interface WorkerSettings {
  /** @defaultValue 'release' */
  readonly exhaustedPolicy?: 'hold' | 'release'
  /** @defaultValue 10 */
  readonly maxAttempts?: number
  /** @defaultValue 200 */
  readonly initialDelayMs?: number
  /** @defaultValue 2000 */
  readonly maxDelayMs?: number
  /**
   * `--handler-timeout-ms`: also bounds how long a restarted worker waits for a SIGKILLed predecessor's
   * partitions (`handlerTimeoutMs` + 2 s), which matters when the chaos kills the worker every few seconds.
   * @defaultValue the worker's default (30000)
   */
  readonly handlerTimeoutMs?: number
  /** More `detour-retry run` flags. */
  readonly extraArgs?: readonly string[]
}

export interface SystemOptions {
  readonly broker: TestBroker
  readonly supervisor: ProcessSupervisor
  readonly topic: string
  readonly groupId: string
  readonly outputTopic: string
  readonly partitions: number
  readonly handler?: HandlerSettings
  readonly worker?: WorkerSettings
  /** kafkajs `partitionsConsumedConcurrently` of the main apps. @defaultValue the partition count */
  readonly partitionsConsumedConcurrently?: number
  /** How the main apps write hand-offs. @defaultValue transactional where the broker's transactions are faithful */
  readonly handOff?: 'transactional' | 'sequential'
  /** The main apps run their handler through `detour.eachBatch`. @defaultValue false */
  readonly eachBatch?: boolean
}

export interface HeldGroupInfo {
  readonly id: string
  readonly topic: string
  readonly partition: number
  readonly groupKey: string
  readonly attempts: number
}

let workerTimingFlags: boolean | undefined

/**
 * Whether `detour-retry run` has consumer timing flags (`--session-timeout-ms`, `--heartbeat-interval-ms`,
 * `--max-wait-time-ms`). Until it has, they are injected into the worker's kafkajs consumer by the
 * child preload instead.
 */
function workerHasTimingFlags(): boolean {
  if (workerTimingFlags === undefined) {
    const help = spawnSync(process.execPath, [programs.retryWorker, 'run', '--help'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } })
    const text = `${help.stdout}${help.stderr}`
    workerTimingFlags = ['--session-timeout-ms', '--heartbeat-interval-ms', '--max-wait-time-ms'].every((flag) => text.includes(flag))
  }
  return workerTimingFlags
}

/**
 * The processes of one Detour deployment: its topics, N main apps (the example main app) and one retry
 * worker (the real `detour-retry` CLI), all loading the example handler.
 */
export class DetourSystem {
  readonly topics: DetourTopics & { readonly output: string }
  readonly mainApps: ManagedProcess[] = []
  private workerProcess: ManagedProcess | undefined
  private workerPort = 0
  private readonly mainPorts = new Map<ManagedProcess, number>()

  constructor(readonly options: SystemOptions) {
    this.topics = { ...detourTopics(options.topic, options.groupId), output: options.outputTopic }
  }

  get broker(): TestBroker {
    return this.options.broker
  }

  get worker(): ManagedProcess {
    if (!this.workerProcess) throw new Error('The retry worker was not added')
    return this.workerProcess
  }

  /** True once the retry worker was added. */
  get hasWorker(): boolean {
    return this.workerProcess !== undefined
  }

  /** Base URL of the worker's HTTP server. */
  get workerUrl(): string {
    return `http://127.0.0.1:${this.workerPort}`
  }

  mainAppUrl(app: ManagedProcess): string {
    return `http://127.0.0.1:${this.mainPorts.get(app) ?? 0}`
  }

  /**
   * Creates every topic of the run (skipping those that exist with the right partition count): source,
   * retry, redirect (compacted), error and output. The embedded broker cannot create topics through the
   * admin API, so the apps only check them (`createTopics: false`).
   */
  async provision(): Promise<void> {
    const { broker, partitions } = this.options
    const t = this.topics
    // In parallel: on a real broker each creation waits for its partitions' leaders.
    await Promise.all(
      (
        [
          [t.source, false],
          [t.retry, false],
          [t.redirect, true],
          [t.error, false],
          [t.output, false],
        ] as const
      ).map(([name, compact]) =>
        // The retry topic keeps its records without limit (the worker deletes what it resolved), as Detour checks.
        broker.createTopic(name, partitions, { compact, config: name === t.retry ? RETRY_TOPIC_CONFIG : undefined }),
      ),
    )
  }

  private handlerEnv(): Record<string, string> {
    const h = this.options.handler ?? {}
    return {
      DEMO_BROKERS: this.broker.brokers.join(','),
      DEMO_OUTPUT_TOPIC: this.topics.output,
      DEMO_WORKER_FAILURE_RATE: String(h.workerFailureRate ?? 0.3),
      DEMO_ALWAYS_FAIL_KEYS: (h.alwaysFailKeys ?? []).join(','),
      DEMO_WORKER_FAIL_FIRST: String(h.workerFailFirst ?? 0),
      DEMO_PROCESSING_DELAY_MS: String(h.processingDelayMs ?? 0),
      KAFKAJS_NO_PARTITIONER_WARNING: '1',
    }
  }

  /** Adds main app number `index` (not started). */
  async addMainApp(index = this.mainApps.length): Promise<ManagedProcess> {
    const port = await freePort()
    const t = childConsumerTiming(this.broker)
    const app = this.options.supervisor.add({
      name: `main-${index}`,
      script: programs.mainApp,
      nodeArgs: ['--import', programs.preload],
      cwd: repoRoot,
      readyUrl: `http://127.0.0.1:${port}/readyz`,
      env: {
        ...this.handlerEnv(),
        DETOUR_BROKERS: this.broker.brokers.join(','),
        DETOUR_GROUP_ID: this.options.groupId,
        // The embedded broker's transactions are not faithful: its runs use sequential hand-offs.
        DETOUR_HAND_OFF: this.options.handOff ?? (this.broker.capabilities.transactions ? 'transactional' : 'sequential'),
        ...(this.options.eachBatch ? { DETOUR_EACH_BATCH: 'true' } : {}),
        DETOUR_TOPICS: this.options.topic,
        DETOUR_HANDLER: programs.handler,
        DETOUR_METRICS_PORT: String(port),
        DETOUR_CREATE_TOPICS: 'false',
        DETOUR_SESSION_TIMEOUT_MS: String(t.sessionTimeout),
        DETOUR_REBALANCE_TIMEOUT_MS: String(t.rebalanceTimeout),
        DETOUR_HEARTBEAT_INTERVAL_MS: String(t.heartbeatInterval),
        DETOUR_MAX_WAIT_TIME_MS: String(t.maxWaitTimeInMs),
        ...(t.metadataMaxAge === undefined ? {} : { DETOUR_METADATA_MAX_AGE_MS: String(t.metadataMaxAge) }),
        DETOUR_PARTITIONS_CONSUMED_CONCURRENTLY: String(this.options.partitionsConsumedConcurrently ?? this.options.partitions),
        DEMO_INSTANCE: String(index),
        DETOUR_LOG_LEVEL: process.env.DETOUR_E2E_DEBUG_LOGS ? 'debug' : 'info',
      },
    })
    this.mainApps.push(app)
    this.mainPorts.set(app, port)
    return app
  }

  /** Adds the retry worker (not started). */
  async addWorker(): Promise<ManagedProcess> {
    if (this.workerProcess) throw new Error('The retry worker was added already')
    this.workerPort = await freePort()
    const w = this.options.worker ?? {}
    const t = childConsumerTiming(this.broker)
    const timingFlags = workerHasTimingFlags()
      ? ['--session-timeout-ms', String(t.sessionTimeout), '--heartbeat-interval-ms', String(t.heartbeatInterval), '--max-wait-time-ms', String(t.maxWaitTimeInMs)]
      : []
    this.workerProcess = this.options.supervisor.add({
      name: 'worker',
      script: programs.retryWorker,
      nodeArgs: ['--import', programs.preload],
      cwd: repoRoot,
      readyUrl: `${this.workerUrl}/readyz`,
      args: [
        'run',
        '--brokers', this.broker.brokers.join(','),
        '--group-id', this.options.groupId,
        '--topics', this.options.topic,
        '--handler', programs.handler,
        '--metrics-port', String(this.workerPort),
        '--metrics-host', '127.0.0.1',
        '--no-create-topics',
        '--exhausted-policy', w.exhaustedPolicy ?? 'release',
        '--max-attempts', String(w.maxAttempts ?? 10),
        '--initial-delay-ms', String(w.initialDelayMs ?? 200),
        '--max-delay-ms', String(w.maxDelayMs ?? 2000),
        ...(w.handlerTimeoutMs === undefined ? [] : ['--handler-timeout-ms', String(w.handlerTimeoutMs)]),
        '--commit-interval-ms', '200',
        '--shutdown-timeout-ms', '5000',
        '--log-level', process.env.DETOUR_E2E_DEBUG_LOGS ? 'debug' : 'info',
        ...timingFlags,
        ...(w.extraArgs ?? []),
      ],
      env: {
        ...this.handlerEnv(),
        // Without timing flags all of it goes through the preload; metadataMaxAge (embedded only) always does (no flag for it).
        DEMO_KAFKAJS_CONSUMER_DEFAULTS: JSON.stringify(timingFlags.length === 0 ? t : { metadataMaxAge: t.metadataMaxAge }),
      },
    })
    return this.workerProcess
  }

  /** Scrapes the worker's `/metrics` (undefined while it is down). */
  workerMetrics(): Promise<Sample[] | undefined> {
    return scrape(`${this.workerUrl}/metrics`)
  }

  /**
   * Sum of `detour_pending_ids` over the main apps (each reports its assigned partitions), or undefined
   * when one of them does not answer.
   */
  async storePendingIds(): Promise<number | undefined> {
    let total = 0
    for (const app of this.mainApps) {
      const samples = await scrape(`${this.mainAppUrl(app)}/metrics`)
      if (!samples) return undefined
      total += sumOf(samples, 'detour_pending_ids')
    }
    return total
  }

  /** `GET /groups/held` of the worker. */
  async heldGroups(): Promise<HeldGroupInfo[]> {
    const response = await fetch(`${this.workerUrl}/groups/held`, { signal: AbortSignal.timeout(5000) })
    if (!response.ok) throw new Error(`GET /groups/held answered ${response.status}`)
    return (await response.json()) as HeldGroupInfo[]
  }

  /** Releases a held group with the CLI (`detour-retry release --url … --id …`). Resolves with its output. */
  releaseWithCli(id: string): Promise<{ status: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [programs.retryWorker, 'release', '--url', this.workerUrl, '--id', id],
        { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' }, timeout: 30_000 },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0
          resolve({ status: code, stdout, stderr })
        },
      )
    })
  }

  /** Releases a held group with `POST /groups/release`. */
  async releaseWithHttp(id: string): Promise<{ status: number; body: unknown }> {
    const response = await fetch(`${this.workerUrl}/groups/release`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id }),
      signal: AbortSignal.timeout(30_000),
    })
    const body: unknown = await response.json()
    return { status: response.status, body }
  }
}

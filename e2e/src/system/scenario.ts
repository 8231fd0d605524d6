import { createWriteStream } from 'node:fs'
import { join } from 'node:path'
import { Kafka, logLevel } from 'kafkajs'
import { collectMessages, randomName, startBroker, type TestBroker } from '@detour/testkit'
import { BrokerChaos, type BrokerChaosEvent, type BrokerChaosOptions } from './broker-chaos.js'
import { ChaosMonkey, type ChaosEvent, type ChaosOptions, type RunState } from './chaos.js'
import { checkRun, invariantFailures, type CheckReport } from './checker.js'
import { childConsumerTiming, DetourSystem, type HandlerSettings, type WorkerSettings } from './detour-system.js'
import { MemorySampler, type MemoryReport } from './memory-sampler.js'
import { scrape, sumOf, type Sample } from './metrics-text.js'
import type { Observations } from './observations.js'
import { ProcessSupervisor, type ExitRecord, type ManagedProcess, type StuckRecord } from './process-supervisor.js'
import { TopicObserver } from './topic-observer.js'
import { guardFetchAfterStop } from './kafkajs-stop-guard.js'
import { generateWorkload, type Workload, type WorkloadOptions } from './workload.js'
import { WorkloadProducer } from './workload-producer.js'

// The orchestrator's own consumers (the topic observer replaces stalled ones) must not meet kafkajs'
// stop-during-rebalance busy loop; Detour's processes run kafkajs unpatched.
guardFetchAfterStop()

export interface Progress {
  readonly phase: 'starting' | 'running' | 'stopping' | 'checking' | 'done'
  readonly elapsedMs: number
  readonly produced: number
  readonly total: number
  /** Distinct workload messages in the output topic. */
  readonly processed: number
  /** Non-poison messages. */
  readonly expected: number
  /** Distinct workload messages in the error topic. */
  readonly deadLettered: number
  /** Distinct ids in the retry topic, by reason. */
  readonly redirected: Readonly<Record<string, number>>
  /** Handler attempts in the retry worker (all its incarnations). */
  readonly retried: number
  /** Pending ids on the redirect topic. */
  readonly pending: number
  /** `detour_pending_ids` summed over the main apps (undefined while one is down). */
  readonly storePending: number | undefined
  /** Process starts beyond the first, over all processes. */
  readonly restarts: number
  /** Kills (SIGKILL and SIGTERM) of the process chaos so far. */
  readonly kills: number
  /** Broker kills of the broker chaos so far. */
  readonly brokerKills: number
  /** The broker that is down now. */
  readonly brokerDown: number | undefined
}

export interface ScenarioContext {
  readonly system: DetourSystem
  readonly broker: TestBroker
  readonly workload: Workload
  readonly observations: Observations
  readonly supervisor: ProcessSupervisor
  readonly progress: () => Progress
  /** Polls the progress until `predicate` holds; rejects after `timeoutMs`. */
  readonly waitUntil: (predicate: (progress: Progress) => boolean, what: string, timeoutMs?: number) => Promise<void>
  /** Resolves when the whole workload is produced. */
  readonly produced: Promise<void>
  /** Kills (`SIGKILL`) or stops (`SIGTERM`) a process, waits `downMs`, starts it again and waits until it is ready. */
  readonly restart: (target: ManagedProcess, signal: 'SIGKILL' | 'SIGTERM', downMs?: number) => Promise<void>
  readonly log: (line: string) => void
}

export interface ScenarioOptions {
  readonly name?: string
  /** A running broker to use (tests share one per file). @defaultValue `startBroker()`, stopped at the end */
  readonly broker?: TestBroker
  readonly workload?: WorkloadOptions
  /** Partitions of every topic. @defaultValue 4 */
  readonly partitions?: number
  /** Main app instances started at the beginning. @defaultValue 1 */
  readonly mainApps?: number
  readonly handler?: HandlerSettings
  readonly worker?: WorkerSettings
  /** Production pace; unset: as fast as possible. */
  readonly produceRatePerSec?: number
  /** Kills and restarts main apps and the worker (see {@link ChaosOptions}: by default the whole run long). */
  readonly chaos?: ChaosOptions
  /**
   * Kills and restarts brokers of a cluster the test kit runs (`startBroker({ nodes: 3 })`), one at a time;
   * the run's topics are watched for a full ISR before each next kill.
   */
  readonly brokerChaos?: Omit<BrokerChaosOptions, 'topics' | 'log'>
  /** How often the memory of every process is sampled (`/metrics`). @defaultValue 5000 */
  readonly memoryIntervalMs?: number
  /** Scenario-specific actions, run while the workload is produced and processed. */
  readonly during?: (context: ScenarioContext) => Promise<void>
  /** Time for the whole workload to be resolved, from the first produced message. @defaultValue 120000 */
  readonly timeoutMs?: number
  readonly onProgress?: (progress: Progress) => void
  /** @defaultValue 500 */
  readonly progressIntervalMs?: number
  /** Topic and group names. @defaultValue random names */
  readonly names?: { readonly topic?: string; readonly groupId?: string; readonly outputTopic?: string }
  readonly logDir?: string
  /** Aborting stops the run (children stopped, broker stopped if owned); the result says `aborted`. */
  readonly signal?: AbortSignal
  /** Crashes (exits nobody asked for) are restarted either way; unless allowed they fail the run. @defaultValue false */
  readonly allowCrashes?: boolean
  /** Status lines (starting, stopping, …). @defaultValue none */
  readonly log?: (line: string) => void
  /**
   * Delete the run's topics at the end (with the admin API; ignored on the embedded broker, which is
   * thrown away anyway). The suites set it on external clusters so random topic names do not pile up.
   * @defaultValue false
   */
  readonly deleteTopics?: boolean
}

export interface ProcessSummary {
  readonly name: string
  readonly starts: number
  readonly exits: readonly ExitRecord[]
}

export interface ScenarioResult {
  readonly name: string
  /** True when every invariant held and nothing else went wrong. */
  readonly ok: boolean
  readonly failures: readonly string[]
  readonly report: CheckReport
  /** Workload messages actually written to the source topic (all of them unless the run was cut short). */
  readonly produced: number
  /** When the last workload message was acknowledged (epoch ms). */
  readonly producedAt: number | undefined
  readonly retried: number
  readonly storePendingIds: number | undefined
  /** The last `/metrics` of each process before the final stop (counters restart with each process start). */
  readonly finalMetrics: Readonly<Record<string, readonly Sample[]>>
  readonly elapsedMs: number
  readonly timedOut: boolean
  readonly aborted: boolean
  readonly broker: string
  readonly logDir: string
  readonly topics: DetourSystem['topics']
  readonly groupId: string
  readonly processes: readonly ProcessSummary[]
  /**
   * Crashes explained by a known gap of the test broker (not of Detour): the process exited, the
   * supervisor restarted it, and the run went on. Other crashes are failures unless `allowCrashes`.
   */
  readonly environmentCrashes: readonly string[]
  readonly chaos: readonly ChaosEvent[]
  readonly brokerChaos: readonly BrokerChaosEvent[]
  /** Exits nobody asked for (each restarted by the supervisor), described. */
  readonly crashes: readonly string[]
  /** Memory of every process over the run. */
  readonly memory: MemoryReport
  /** Children the supervisor's watchdog found stuck, with their stacks (each is also a failure). */
  readonly stuck: readonly StuckRecord[]
  readonly workload: Workload
  readonly observations: Observations
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

function errorText(error: unknown): string {
  if (error instanceof Error) return error.stack ?? error.message
  return typeof error === 'string' ? error : JSON.stringify(error)
}

/**
 * Known gaps of librdkafka's mock cluster that crash a kafkajs consumer for good (a non-retriable error):
 * the app exits and is restarted, as an orchestrator would. Real Kafka answers these requests.
 */
function knownBrokerGap(broker: TestBroker, log: string): string | undefined {
  if (broker.mode !== 'embedded') return undefined
  // INVALID_REQUEST (42) on SyncGroup, fatal for kafkajs (as KafkaJSProtocolError or wrapped in KafkaJSNonRetriableError).
  if (/Response SyncGroup\(key: 14[^\n]*request being malformed/.test(log) && /Crash: KafkaJS(ProtocolError|NonRetriableError): This most likely occurs because of a request being malformed/.test(log)) {
    return 'the embedded broker answered SyncGroup with INVALID_REQUEST (the mock rejects a SyncGroup once its group is already synced; Kafka returns the assignment)'
  }
  return undefined
}

/**
 * Runs one end-to-end scenario: topics, a retry worker (the `detour-retry` CLI) and main apps as child
 * processes, the workload produced, optional chaos and scenario actions; waits until every message is
 * processed or dead-lettered and no id is pending; stops everything gracefully; checks the invariants
 * from the topics. Used by the demo and by the e2e suites.
 */
export async function runScenario(options: ScenarioOptions = {}): Promise<ScenarioResult> {
  const started = Date.now()
  const name = options.name ?? 'scenario'
  const log = options.log ?? (() => {})
  const failures: string[] = []
  const partitions = options.partitions ?? 4
  const workload = generateWorkload(options.workload)
  const ownsBroker = options.broker === undefined
  const broker = options.broker ?? (await startBroker())
  const supervisor = new ProcessSupervisor({ logDir: options.logDir })
  const topic = options.names?.topic ?? randomName('detour-e2e')
  const groupId = options.names?.groupId ?? randomName('detour-e2e-app')
  const system = new DetourSystem({
    broker,
    supervisor,
    topic,
    groupId,
    outputTopic: options.names?.outputTopic ?? `${topic}.processed`,
    partitions,
    handler: options.handler,
    worker: options.worker,
  })
  // The orchestrator's own clients (observer, workload producer) log to <logDir>/orchestrator.log.
  const orchestratorLog = createWriteStream(join(supervisor.logDir, 'orchestrator.log'), { flags: 'a' })
  const note = (line: string): void => void orchestratorLog.write(`${new Date().toISOString()} ${line}\n`)
  const kafka = new Kafka({
    clientId: 'detour-e2e-orchestrator',
    brokers: broker.brokers,
    logLevel: logLevel.WARN,
    logCreator: () => ({ namespace, level, log: entry }) => {
      const { message, timestamp: _t, logger: _l, ...fields } = entry
      note(`[kafkajs ${namespace} ${logLevel[level]}] ${message} ${JSON.stringify(fields)}`)
    },
    retry: { retries: 20, initialRetryTime: 100, maxRetryTime: 2000 },
  })
  const observer = new TopicObserver(kafka, system.topics, workload.run, note, childConsumerTiming(broker).metadataMaxAge)
  const observations = observer.observations
  const producer = new WorkloadProducer(kafka, topic, { partitions, log: note })
  let phase: Progress['phase'] = 'starting'
  let produced = 0
  let producedAt: number | undefined
  let productionStarted: number | undefined
  const retriedByIncarnation = new Map<number, number>()
  let storePending: number | undefined
  let aborted = options.signal?.aborted ?? false
  let timedOut = false
  let chaos: ChaosMonkey | undefined
  let brokerChaos: BrokerChaos | undefined
  const memory = new MemorySampler(
    () => [
      ...system.mainApps.map((app) => ({ name: app.name, incarnation: app.incarnations, metricsUrl: `${system.mainAppUrl(app)}/metrics`, heldMetric: 'detour_pending_ids' })),
      ...(system.hasWorker ? [{ name: 'worker', incarnation: system.worker.incarnations, metricsUrl: `${system.workerUrl}/metrics`, heldMetric: 'detour_retry_buffered_messages' }] : []),
    ],
    options.memoryIntervalMs ?? 5000,
  )
  // Messages not yet seen resolved: resolution is final, so each round only looks at what is left.
  const unresolved = new Set(workload.messages.map((m) => m.ref))
  const resolvedAll = (): boolean => {
    for (const ref of unresolved) if (observations.isProcessed(ref) || observations.isDeadLettered(ref)) unresolved.delete(ref)
    return unresolved.size === 0
  }
  const runState = (): RunState => ({ producedAt, resolved: resolvedAll() })
  let progressTimer: NodeJS.Timeout | undefined
  let lastRetried = 0
  const finalMetrics: Record<string, Sample[]> = {}
  /** Exits with a non-zero code after a SIGTERM (judged at the end, once the logs are complete). */
  const uncleanStops: Array<ExitRecord & { name: string }> = []

  const retried = (): number => [...retriedByIncarnation.values()].reduce((a, b) => a + b, 0)
  const progress = (): Progress => ({
    phase,
    elapsedMs: Date.now() - started,
    produced,
    total: workload.messages.length,
    processed: observations.processed,
    expected: workload.messages.length - workload.poison,
    deadLettered: observations.deadLettered,
    redirected: observations.redirectedByReason(),
    retried: lastRetried,
    pending: observations.pending,
    storePending,
    restarts: supervisor.all.reduce((total, p) => total + Math.max(0, p.incarnations - 1), 0),
    kills: chaos?.events.length ?? 0,
    brokerKills: brokerChaos?.events.length ?? 0,
    brokerDown: brokerChaos?.brokerDown,
  })
  const sample = async (): Promise<void> => {
    const worker = system.worker
    const metrics = await system.workerMetrics()
    if (metrics) retriedByIncarnation.set(worker.incarnations, sumOf(metrics, 'detour_retry_retries_attempted_total'))
    lastRetried = retried()
    storePending = await system.storePendingIds()
  }
  const onAbort = (): void => {
    aborted = true
  }
  // Settles when production does (scenario actions may await it before it starts).
  let settleProduced: { resolve: () => void; reject: (error: unknown) => void } | undefined
  const producedPromise = new Promise<void>((resolve, reject) => (settleProduced = { resolve, reject }))
  producedPromise.catch(() => undefined) // failures are reported by the run itself
  options.signal?.addEventListener('abort', onAbort)

  const context: ScenarioContext = {
    system,
    broker,
    workload,
    observations,
    supervisor,
    progress,
    waitUntil: async (predicate, what, timeoutMs = 60_000) => {
      const deadline = Date.now() + timeoutMs
      while (!predicate(progress())) {
        if (aborted) throw new Error(`aborted while waiting for ${what}`)
        if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}; progress: ${JSON.stringify(progress())}`)
        await sleep(50)
      }
    },
    produced: producedPromise,
    restart: async (target, signal, downMs = 500) => {
      log(`${name}: ${signal} ${target.name}`)
      if (signal === 'SIGKILL') await target.kill()
      else {
        const exit = await target.stop()
        if (exit && exit.code !== 0) uncleanStops.push({ ...exit, name: target.name })
      }
      await sleep(downMs)
      target.start()
      // Generous: on the embedded broker a rejoining member can crash-loop on the mock's SyncGroup gap
      // (each crash a process restart, seconds each on a loaded machine) before it settles.
      await target.waitReady(120_000)
      log(`${name}: ${target.name} is back`)
    },
    log,
  }

  let result: ScenarioResult | undefined
  try {
    log(`${name}: broker ${broker.description}`)
    await system.provision()
    await observer.start()
    await producer.connect()
    const worker = await system.addWorker()
    for (let i = 0; i < (options.mainApps ?? 1); i++) await system.addMainApp(i)
    log(`${name}: starting the retry worker and ${system.mainApps.length} main app(s); logs in ${supervisor.logDir}`)
    worker.start()
    for (const app of system.mainApps) app.start()
    await Promise.all([worker, ...system.mainApps].map((p) => p.waitReady(60_000)))
    if (aborted) throw new Error('aborted')

    phase = 'running'
    progressTimer = setInterval(() => {
      sample().then(
        () => options.onProgress?.(progress()),
        () => undefined,
      )
    }, options.progressIntervalMs ?? 500)
    productionStarted = Date.now()
    const production = producer.produce(workload, options.produceRatePerSec, (count) => (produced = count), () => aborted).then(() => {
      producedAt = Date.now()
    })
    production.then(
      () => settleProduced?.resolve(),
      (error: unknown) => settleProduced?.reject(error),
    )
    memory.start()
    if (options.chaos) {
      chaos = new ChaosMonkey({ ...options.chaos, seed: options.chaos.seed ?? workload.seed }, () => ({ main: system.mainApps, worker }), runState)
      chaos.start()
    }
    if (options.brokerChaos) {
      const t = system.topics
      brokerChaos = new BrokerChaos(
        broker,
        kafka,
        { ...options.brokerChaos, seed: options.brokerChaos.seed ?? workload.seed, topics: [t.source, t.retry, t.redirect, t.error, t.output], log: (line) => (note(line), log(`${name}: ${line}`)) },
        runState,
      )
      brokerChaos.start()
    }
    let duringError: unknown
    let duringDone = options.during === undefined
    if (options.during) {
      options.during(context).then(
        () => (duringDone = true),
        (error: unknown) => {
          duringError = error
          duringDone = true
        },
      )
    }

    const timeoutMs = options.timeoutMs ?? 120_000
    let chaosStopped = chaos === undefined && brokerChaos === undefined
    // After failed scenario actions the run still gets a short while to finish, so its report means something.
    let graceUntil: number | undefined
    for (;;) {
      await sleep(100)
      if (aborted) break
      if (duringError !== undefined && graceUntil === undefined) {
        failures.push(`scenario actions failed: ${errorText(duringError)}`)
        graceUntil = Date.now() + 30_000
      }
      if (Date.now() - productionStarted > timeoutMs || (graceUntil !== undefined && Date.now() > graceUntil)) {
        timedOut = true
        break
      }
      if (producedAt === undefined || !duringDone) continue
      if (!chaosStopped) {
        // The schedules stop by their own rules (by default once every message is resolved).
        if (!(chaos?.finished ?? true) || !(brokerChaos?.finished ?? true)) continue
        chaosStopped = true
        // Every process up again before the end.
        for (const p of supervisor.all) if (!p.running) p.start()
        await Promise.all(supervisor.all.map((p) => p.waitReady(60_000)))
      }
      if (!resolvedAll() || observations.pending > 0) continue
      await sample()
      if (storePending !== 0 || supervisor.all.some((p) => !p.running)) continue
      break
    }
    // A send stuck in the client must not hold the run past its end (the loop stops after the current send).
    const productionEnded = await Promise.race([
      production.then(
        () => true,
        (error: unknown) => {
          failures.push(`producing the workload failed: ${String(error)}`)
          return true
        },
      ),
      sleep(producedAt === undefined ? 5000 : 0).then(() => producedAt !== undefined),
    ])
    if (!productionEnded) failures.push(`producing the workload did not finish (${produced} of ${workload.messages.length} sent)`)
    if (timedOut) {
      failures.push(
        `the run did not complete (${graceUntil !== undefined ? 'after failed scenario actions' : `within ${timeoutMs} ms`}); "lost" below counts the messages still unresolved then. Progress: ${JSON.stringify(progress())}`,
      )
    }
    if (aborted) failures.push('aborted')
    await sample().catch(() => undefined)
  } catch (error) {
    failures.push(`the run failed: ${errorText(error)}`)
  } finally {
    if (progressTimer) clearInterval(progressTimer)
    options.signal?.removeEventListener('abort', onAbort)
    phase = 'stopping'
    // Chaos ends first (it restarts what it killed); a broker it killed is started again before the apps
    // stop, since they flush and commit on their way out.
    await Promise.all([chaos?.stop(), brokerChaos?.stop()])
    for (const event of brokerChaos?.events ?? []) {
      if (event.error) failures.push(`broker chaos: broker ${event.broker} (killed at ${(event.at / 1000).toFixed(1)} s): ${event.error}`)
    }
    await memory.stop()
    await memory.sample()
    for (const app of system.mainApps) {
      const samples = await scrape(`${system.mainAppUrl(app)}/metrics`)
      if (samples) finalMetrics[app.name] = samples
    }
    const workerSamples = await system.workerMetrics().catch(() => undefined)
    if (workerSamples) finalMetrics.worker = workerSamples
    log(`${name}: stopping the apps`)
    // Logs are complete once every process stopped (stopAll closes them): judge the exits now.
    const exits = await supervisor.stopAll(20_000)
    uncleanStops.push(...exits.filter((exit) => exit.code !== 0))
    // A graceful stop while a broker is away may fail to commit on its way out and exit non-zero: Kafka's
    // doing, not Detour's (what it means for the invariants is checked from the topics). Listed, not failed.
    const stopsInOutage: string[] = []
    for (const event of chaos?.events ?? []) {
      if (event.signal !== 'SIGTERM' || !event.exit || event.exit.code === 0) continue
      const what = `${event.target} #${event.exit.incarnation} exited with code ${event.exit.code} after SIGTERM`
      if (brokerChaos?.overlapsOutage(event.time, event.exit.at)) stopsInOutage.push(`${what}, while a broker was away`)
      else uncleanStops.push({ ...event.exit, name: event.target })
    }
    const environmentCrashes: string[] = []
    const judge = (exit: ExitRecord & { name: string }, what: string, failure: boolean): void => {
      const managed = supervisor.get(exit.name)
      const gap = knownBrokerGap(broker, managed.incarnationLog(exit.incarnation))
      if (gap) environmentCrashes.push(`${what}: ${gap}`)
      else if (failure) failures.push(`${what}; see ${managed.logFile}`)
    }
    for (const exit of uncleanStops) judge(exit, `${exit.name} #${exit.incarnation} exited with code ${exit.code} (signal ${exit.signal}) after SIGTERM`, true)
    for (const stuck of supervisor.stuck) {
      failures.push(`${stuck.name} #${stuck.incarnation} (pid ${stuck.pid}) was stuck: ${stuck.reason}; the watchdog killed it. Its JavaScript stack:\n${stuck.stack}`)
    }
    for (const crash of supervisor.crashes) {
      // A stuck process's kill is reported above with its stack.
      if (supervisor.stuck.some((s) => s.name === crash.name && s.incarnation === crash.incarnation)) continue
      judge(crash, `${crash.name} #${crash.incarnation} exited unexpectedly (code ${crash.code}, signal ${crash.signal}) and was restarted`, !options.allowCrashes)
    }
    phase = 'checking'
    try {
      await observer.catchUp(30_000)
    } catch (error) {
      failures.push(String(error))
    }
    await producer.disconnect()
    await observer.stop()
    const report = checkRun(workload, observations)
    failures.push(...invariantFailures(report))
    if (report.lost > 0 && !aborted) failures.push(...(await diagnoseLost(kafka, topic, report, observations).catch((error: unknown) => [`diagnosing the lost messages failed: ${errorText(error)}`])))
    if (storePending !== undefined && storePending > 0) failures.push(`the main apps still hold ${storePending} pending id(s) in their group stores (detour_pending_ids)`)
    if (options.deleteTopics && broker.capabilities.adminApi) {
      const admin = kafka.admin()
      try {
        await admin.connect()
        const t = system.topics
        await admin.deleteTopics({ topics: [t.source, t.retry, t.redirect, t.error, t.output], timeout: 10_000 })
      } catch (error) {
        note(`deleting the run's topics failed: ${errorText(error)}`)
      } finally {
        await admin.disconnect().catch(() => undefined)
      }
    }
    phase = 'done'
    await new Promise<void>((resolve) => orchestratorLog.end(resolve))
    if (ownsBroker) await broker.stop()
    result = {
      name,
      ok: failures.length === 0,
      failures,
      report,
      produced,
      producedAt,
      retried: retried(),
      storePendingIds: storePending,
      finalMetrics,
      elapsedMs: Date.now() - started,
      timedOut,
      aborted,
      broker: broker.description,
      logDir: supervisor.logDir,
      topics: system.topics,
      groupId,
      processes: supervisor.all.map((p) => ({ name: p.name, starts: p.incarnations, exits: p.exits })),
      environmentCrashes,
      chaos: chaos?.events ?? [],
      brokerChaos: brokerChaos?.events ?? [],
      crashes: [
        ...supervisor.crashes.map((c) => `${c.name} #${c.incarnation} exited unexpectedly (code ${c.code}, signal ${c.signal}) at ${new Date(c.at).toISOString()}${brokerChaos?.overlapsOutage(c.at - 60_000, c.at) ? ', within a minute of a broker outage' : ''}`),
        ...stopsInOutage,
      ],
      memory: memory.report(),
      stuck: supervisor.stuck,
      workload,
      observations,
    }
  }
  return result
}

/**
 * Where the first lost messages went: their source coordinates (read back from the source topic) and
 * every record the run wrote for their ids.
 */
async function diagnoseLost(kafka: Kafka, topic: string, report: CheckReport, observations: Observations): Promise<string[]> {
  const admin = kafka.admin()
  await admin.connect()
  let total = 0
  try {
    for (const { high } of await admin.fetchTopicOffsets(topic)) total += Number(high)
  } finally {
    await admin.disconnect()
  }
  const refs = new Set(report.lostSamples.map((sample) => sample.split(' ')[0] ?? ''))
  const source = await collectMessages(kafka, topic, (got) => got.length >= total, 30_000)
  const lines: string[] = []
  for (const { partition, message } of source) {
    const ref = message.headers?.['x-demo-ref']?.toString()
    if (ref === undefined || !refs.has(ref)) continue
    const id = `${topic}/${partition}/${message.offset}`
    const redirect = observations.redirects.get(id)
    const retry = observations.retries.get(id)
    const deadLetters = observations.deadLetters.filter((dl) => dl.headers['detour-id'] === id)
    lines.push(
      `diagnosis: ${ref} is ${id}: redirect records ${redirect?.records ?? 0}, tombstones ${redirect?.tombstones ?? 0}; ` +
        `retry records ${retry?.records ?? 0}${retry ? ` (${retry.reason})` : ''}; error-topic records ${deadLetters.map((dl) => dl.reason).join(', ') || 'none'}`,
    )
  }
  return lines
}

/** A short multi-line description of a result for logs and assertion messages. */
export function describeResult(result: ScenarioResult): string {
  const r = result.report
  const lines = [
    `${result.name}: ${result.ok ? 'OK' : 'FAILED'} in ${(result.elapsedMs / 1000).toFixed(1)} s on ${result.broker}`,
    `  produced ${result.produced}/${r.produced}, processed ${r.processed}/${r.expected}, duplicates ${r.duplicates}, order violations ${r.firstProcessingViolations} at first processing + ${r.staleReplays} stale replays, lost ${r.lost}, pending ids ${r.pendingIds}`,
    `  redirected ${JSON.stringify(r.redirected)}, retried ${result.retried}, dead-lettered ${JSON.stringify(r.deadLettered)}, processed by ${JSON.stringify(r.processedBy)}`,
    `  processes: ${result.processes.map((p) => `${p.name}×${p.starts}`).join(', ')}${result.chaos.length > 0 ? `; chaos: ${result.chaos.length} kills` : ''}`,
    `  logs: ${result.logDir}`,
  ]
  for (const crash of result.environmentCrashes) lines.push(`  ! ${crash}`)
  for (const failure of result.failures) lines.push(`  ✗ ${failure}`)
  return lines.join('\n')
}

#!/usr/bin/env node
/**
 * `pnpm demo`: the whole Detour flow on one machine. Starts a broker (`startBroker()` of the test kit:
 * Apache Kafka run as a child process when Java is here — one node, or `--brokers 3` —, the cluster in
 * KAFKA_BROKERS, or the embedded mock with DETOUR_BROKER=embedded), a retry worker (the real `detour-retry`
 * CLI) and one main app (two with --chaos) as child processes, produces a seeded workload with transient
 * and poison messages, shows progress, then checks per-key order (first processings and stale replays),
 * loss and leftover pending ids from the topics themselves. `--chaos` kills and restarts the processes
 * (and, on 3 brokers, the brokers) the whole run long; `--duration` makes it a soak at a steady rate; the
 * summary gives the kills, the figures and each process's peak memory, and `<logDir>/summary.json` all of it.
 */
import { randomBytes } from 'node:crypto'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import yargs from 'yargs'
import { hideBin } from 'yargs/helpers'
import { kafkaCacheDir, KAFKA_VERSION, resolveBrokerMode, startBroker } from '@detour/testkit'
import { runScenario, type ScenarioOptions } from '../system/scenario.js'
import { startStallWatchdog } from '../system/stall-watchdog.js'
import { CI_PRESET, demoArguments, parseDuration, parseSecondsRange } from './demo-arguments.js'
import { ProgressView } from './progress-view.js'
import { chaosSchedule, memoryTable, summaryJson, summaryTable } from './summary-table.js'

const argv = await yargs(demoArguments(hideBin(process.argv)))
  .scriptName('pnpm demo')
  .usage(
    '$0 [options]\n\nRuns the Detour demo: ordered retries with a retry worker and main apps as separate processes.\n\n' +
      'Chaos (the whole run long): pnpm demo --chaos [--brokers 3]\nSoak: pnpm demo --chaos --brokers 3 --duration 10m\nCI preset: pnpm demo --ci (see CI_PRESET in e2e/src/demo/demo-arguments.ts)',
  )
  .parserConfiguration({ 'duplicate-arguments-array': false })
  .option('messages', { type: 'number', describe: 'Messages to produce [default: 2000; with --duration: rate × duration]' })
  .option('keys', { type: 'number', default: 100, describe: 'Distinct keys (ordering groups)' })
  .option('failure-rate', { type: 'number', default: 0.05, describe: 'Fraction of messages that fail transiently in the main app' })
  .option('worker-failure-rate', { type: 'number', default: 0.3, describe: 'Probability that such a message fails again in the retry worker, per attempt' })
  .option('poison', { type: 'number', default: 5, describe: 'Unprocessable messages (must end in the error topic)' })
  .option('seed', { type: 'number', default: 42, describe: 'Seed of the workload and of the chaos schedules (printed at the end: the same seed replays the same schedule)' })
  .option('partitions', { type: 'number', default: 4, describe: 'Partitions of every topic' })
  .option('main-apps', { type: 'number', describe: 'Main app instances (one consumer group) [default: 1; 2 with --chaos]' })
  .option('chaos', {
    type: 'boolean',
    default: false,
    describe: 'SIGKILL/SIGTERM and restart main apps and the worker at seeded moments, the whole run long; with --brokers 3 also SIGKILL and restart brokers',
  })
  .option('brokers', {
    type: 'number',
    default: 1,
    describe: 'Nodes of the Apache Kafka cluster the test kit runs; 3 gives replication factor 3, min.insync.replicas=2 and, with --chaos, broker kills',
  })
  .option('broker-chaos', { type: 'boolean', describe: 'Kill and restart brokers during the run [default: with --chaos on 3 brokers or more]' })
  .option('kill-interval', { type: 'string', default: '3-7', describe: 'Seconds between two kills of Detour processes (min-max, drawn uniformly)' })
  .option('broker-kill-interval', { type: 'string', default: '20-40', describe: 'Seconds from a restarted broker being in sync again to the next broker kill (min-max)' })
  .option('min-sigkills', { type: 'number', default: 0, describe: 'The chaos goes on until this many SIGKILLs of Detour processes, and the run fails with fewer' })
  .option('min-broker-kills', { type: 'number', default: 0, describe: 'The broker chaos goes on until this many broker kills, and the run fails with fewer' })
  .option('duration', { type: 'string', describe: 'Soak: produce at a steady --rate for this long (10m, 90s, 1h), chaos (with --chaos) all along, memory over time' })
  .option('rate', { type: 'number', describe: 'Messages produced per second [default: as fast as possible; 100/s with --chaos; 30/s with --duration]' })
  .option('timeout-ms', { type: 'number', describe: 'Give up when the workload is not resolved in this time [default: 180000; with chaos or --duration: production time + 15 min]' })
  .option('topic', { type: 'string', default: 'detour-demo', describe: 'Source topic (with KAFKA_BROKERS: created unless it exists)' })
  .option('group', { type: 'string', default: 'detour-demo-app', describe: "The main apps' consumer group" })
  .option('output-topic', { type: 'string', default: 'detour-demo.processed', describe: 'Where the handler writes processed messages' })
  .option('ci', { type: 'boolean', describe: `The CI chaos run: ${CI_PRESET.join(' ')} (later options override)` })
  .check((args) => {
    // yargs hands anything after `--` (and stray words) over as positionals: the demo takes none.
    if (args._.length > 0) throw new Error(`Unexpected argument(s): ${args._.join(' ')}. The demo takes only options, e.g. pnpm demo --chaos --messages 3000`)
    for (const flag of ['keys', 'poison', 'partitions', 'brokers', 'min-sigkills', 'min-broker-kills'] as const) {
      if (!Number.isInteger(args[flag]) || args[flag] < (flag === 'keys' || flag === 'partitions' || flag === 'brokers' ? 1 : 0)) throw new Error(`--${flag} must be a positive integer`)
    }
    for (const flag of ['messages', 'main-apps', 'timeout-ms'] as const) {
      const value = args[flag]
      if (value !== undefined && (!Number.isInteger(value) || value < (flag === 'messages' ? 0 : 1))) throw new Error(`--${flag} must be a positive integer`)
    }
    for (const flag of ['failure-rate', 'worker-failure-rate'] as const) {
      if (!(args[flag] >= 0 && args[flag] <= 1)) throw new Error(`--${flag} must be within 0..1`)
    }
    if (args.rate !== undefined && !(args.rate > 0)) throw new Error('--rate must be > 0')
    if (args.duration !== undefined) parseDuration(args.duration)
    if (args.duration !== undefined && args.messages !== undefined) throw new Error('--duration sets the number of messages (rate × duration): give --rate, not --messages')
    parseSecondsRange(args['kill-interval'])
    parseSecondsRange(args['broker-kill-interval'])
    if (args['broker-chaos'] === true && args.brokers < 3) throw new Error('--broker-chaos needs --brokers 3 or more (one broker down at a time, replication factor 3)')
    if (args['min-broker-kills'] > 0 && !(args['broker-chaos'] ?? (args.chaos && args.brokers >= 3))) throw new Error('--min-broker-kills needs broker chaos (--chaos --brokers 3)')
    if (args['min-sigkills'] > 0 && !args.chaos) throw new Error('--min-sigkills needs --chaos')
    return true
  })
  .strict()
  .help()
  .alias('help', 'h')
  .version(false)
  .parseAsync()

// A demo that hangs must say where: after 30 s without a timer run, print the stack and exit.
startStallWatchdog({ stallMs: 30_000, label: 'the demo', kill: true })

const view = new ProgressView(process.stdout)
const abort = new AbortController()
let interrupts = 0
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    interrupts++
    if (interrupts === 1) {
      view.note(`${signal}: stopping the apps and the broker… (again to exit at once)`)
      abort.abort()
    } else {
      process.exit(130)
    }
  })
}

const soakMs = argv.duration === undefined ? undefined : parseDuration(argv.duration)
const rate = argv.rate ?? (soakMs !== undefined ? 30 : argv.chaos ? 100 : undefined)
const messages = soakMs !== undefined ? Math.max(1, Math.round(((rate ?? 30) * soakMs) / 1000)) : (argv.messages ?? 2000)
const mainApps = argv['main-apps'] ?? (argv.chaos ? 2 : 1)
const brokerChaos = argv['broker-chaos'] ?? (argv.chaos && argv.brokers >= 3)
const productionMs = rate === undefined ? 0 : (messages / rate) * 1000
const timeoutMs = argv['timeout-ms'] ?? (argv.chaos || soakMs !== undefined ? Math.round(productionMs + 15 * 60_000) : 180_000)

view.note(
  `Detour demo: ${messages} messages over ${argv.keys} keys, ${argv.partitions} partitions, failure rate ${argv['failure-rate']}, ` +
    `${argv.poison} poison, seed ${argv.seed}, ${mainApps} main app(s)${rate === undefined ? '' : `, ${rate} msg/s`}` +
    `${soakMs === undefined ? '' : `, soak ${argv.duration}`}${argv.chaos ? ', chaos' : ''}${brokerChaos ? ', broker kills' : ''}`,
)
const choice = await resolveBrokerMode({ nodes: argv.brokers })
if (choice.unavailable) {
  console.error(`No broker for this run: ${choice.unavailable}`)
  process.exit(2)
}
const alternatives =
  choice.mode === 'embedded'
    ? 'KAFKA_BROKERS=host:port for an existing cluster'
    : 'DETOUR_BROKER=embedded for the in-process mock broker, KAFKA_BROKERS=host:port for an existing cluster'
view.note(`Broker: ${choice.mode} — ${choice.reason} (${alternatives})`)
let starting = 'Starting the broker'
if (choice.mode === 'kafka') {
  starting = `Starting Apache Kafka ${KAFKA_VERSION} (${argv.brokers === 1 ? 'one node, a JVM child process' : `${argv.brokers} nodes, JVM child processes`})`
  if (!existsSync(join(kafkaCacheDir(), 'libs', '.complete'))) {
    view.note(`First run: Maven downloads Apache Kafka ${KAFKA_VERSION} (about 45 MB) into ${kafkaCacheDir()}; later runs start from there.`)
  }
}
const broker = await view.during(starting, startBroker({ nodes: argv.brokers, log: (line) => view.note(line) }))
view.note(`Broker: ${broker.description}`)
const options: ScenarioOptions = {
  name: 'demo',
  broker,
  workload: {
    messages,
    keys: argv.keys,
    failureRate: argv['failure-rate'],
    poison: argv.poison,
    seed: argv.seed,
    // Reused topics (KAFKA_BROKERS) may hold earlier runs: the checker only counts this run.
    run: `demo-${argv.seed}-${randomBytes(4).toString('hex')}`,
  },
  partitions: argv.partitions,
  mainApps,
  handler: { workerFailureRate: argv['worker-failure-rate'] },
  // The handler takes milliseconds: a 3 s handler timeout lets a restarted worker take over a SIGKILLed
  // predecessor's partitions after 5 s (handlerTimeoutMs + 2 s) instead of 32 s.
  worker: { exhaustedPolicy: 'release', maxAttempts: 10, initialDelayMs: 200, maxDelayMs: 2000, ...(argv.chaos ? { handlerTimeoutMs: 3000 } : {}) },
  produceRatePerSec: rate,
  chaos: argv.chaos
    ? {
        seed: argv.seed,
        intervalMs: parseSecondsRange(argv['kill-interval']),
        downMs: [200, 1500],
        sigtermRatio: 0.25,
        // Main apps are hit twice as often as the worker: every worker SIGKILL stalls retries for its takeover.
        targets: mainApps > 1 ? ['main', 'main', 'worker'] : ['main', 'worker'],
        until: 'resolved',
        afterProducedMs: 4000,
        minSigkills: argv['min-sigkills'],
      }
    : undefined,
  brokerChaos: brokerChaos
    ? { seed: argv.seed, intervalMs: parseSecondsRange(argv['broker-kill-interval']), downMs: [3000, 12_000], until: 'resolved', afterProducedMs: 4000, minKills: argv['min-broker-kills'] }
    : undefined,
  // A broker failure can crash a kafkajs client for good (the supervisor restarts it, as an orchestrator
  // would): counted and listed, not a failure in itself; what it did to the invariants is checked.
  allowCrashes: brokerChaos,
  timeoutMs,
  names: { topic: argv.topic, groupId: argv.group, outputTopic: argv['output-topic'] },
  signal: abort.signal,
  onProgress: (progress) => view.update(progress),
  log: (line) => view.note(line),
}
const result = await runScenario(options)
view.finish()
await broker.stop()
const floors: string[] = []
const sigkills = result.chaos.filter((e) => e.signal === 'SIGKILL').length
if (sigkills < argv['min-sigkills']) floors.push(`the chaos sent ${sigkills} SIGKILL(s), fewer than --min-sigkills ${argv['min-sigkills']}`)
if (result.brokerChaos.length < argv['min-broker-kills']) floors.push(`the broker chaos killed ${result.brokerChaos.length} broker(s), fewer than --min-broker-kills ${argv['min-broker-kills']}`)
const ok = result.ok && floors.length === 0
console.log(summaryTable(result))
if (result.chaos.length > 0 || result.brokerChaos.length > 0) console.log(chaosSchedule(result, argv.seed))
if (soakMs !== undefined || argv.chaos) console.log(memoryTable(result.memory))
for (const crash of result.environmentCrashes) console.log(`note: ${crash}`)
for (const crash of result.crashes) console.log(`crash (restarted by the supervisor): ${crash}`)
const summaryFile = join(result.logDir, 'summary.json')
writeFileSync(summaryFile, `${JSON.stringify(summaryJson(result, { argv: process.argv.slice(2), seed: argv.seed, ok, floors }), null, 2)}\n`)
if (ok) {
  console.log(`✓ every invariant held (logs and ${summaryFile}: ${result.logDir})`)
  process.exit(0)
}
console.log(`✗ the run failed (logs: ${result.logDir}):`)
for (const failure of [...result.failures, ...floors]) console.log(`  - ${failure}`)
const evidenceKeys = Object.keys(result.report.evidence)
if (evidenceKeys.length > 0) console.log(`  every record of the key(s) whose order broke (${evidenceKeys.join(', ')}): "evidence" in ${summaryFile}`)
process.exit(result.aborted ? 130 : 1)

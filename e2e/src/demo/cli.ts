#!/usr/bin/env node
/**
 * `pnpm demo`: the whole Detour flow on one machine. Starts a broker (`startBroker()` of the test kit:
 * Apache Kafka run as a child process when Java is here, the cluster in KAFKA_BROKERS, or the embedded
 * mock with DETOUR_BROKER=embedded), a retry worker (the real `detour-retry` CLI) and one main app (two
 * with --chaos) as child processes, produces a seeded workload with transient and poison messages, shows
 * progress, then checks per-key order, loss and leftover pending ids from the topics themselves.
 */
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import yargs from 'yargs'
import { hideBin } from 'yargs/helpers'
import { kafkaCacheDir, KAFKA_VERSION, resolveBrokerMode, startBroker } from '@detour/testkit'
import { runScenario, type ScenarioOptions } from '../system/scenario.js'
import { startStallWatchdog } from '../system/stall-watchdog.js'
import { demoArguments } from './demo-arguments.js'
import { ProgressView } from './progress-view.js'
import { summaryTable } from './summary-table.js'

const argv = await yargs(demoArguments(hideBin(process.argv)))
  .scriptName('pnpm demo')
  .usage('$0 [options]\n\nRuns the Detour demo: ordered retries with a retry worker and main apps as separate processes.')
  .option('messages', { type: 'number', default: 2000, describe: 'Messages to produce' })
  .option('keys', { type: 'number', default: 100, describe: 'Distinct keys (ordering groups)' })
  .option('failure-rate', { type: 'number', default: 0.05, describe: 'Fraction of messages that fail transiently in the main app' })
  .option('worker-failure-rate', { type: 'number', default: 0.3, describe: 'Probability that such a message fails again in the retry worker, per attempt' })
  .option('poison', { type: 'number', default: 5, describe: 'Unprocessable messages (must end in the error topic)' })
  .option('seed', { type: 'number', default: 42, describe: 'Seed of the workload and of the chaos schedule' })
  .option('partitions', { type: 'number', default: 4, describe: 'Partitions of every topic' })
  .option('chaos', { type: 'boolean', default: false, describe: 'Two main apps; SIGKILL/SIGTERM and restart main apps and the worker at random (seeded) moments' })
  .option('rate', { type: 'number', describe: 'Messages produced per second [default: as fast as possible; with --chaos spread over ~12 s]' })
  .option('timeout-ms', { type: 'number', default: 180_000, describe: 'Give up when the workload is not resolved in this time' })
  .option('topic', { type: 'string', default: 'detour-demo', describe: 'Source topic (with KAFKA_BROKERS: created unless it exists)' })
  .option('group', { type: 'string', default: 'detour-demo-app', describe: "The main apps' consumer group" })
  .option('output-topic', { type: 'string', default: 'detour-demo.processed', describe: 'Where the handler writes processed messages' })
  .check((args) => {
    // yargs hands anything after `--` (and stray words) over as positionals: the demo takes none.
    if (args._.length > 0) throw new Error(`Unexpected argument(s): ${args._.join(' ')}. The demo takes only options, e.g. pnpm demo --chaos --messages 3000`)
    for (const flag of ['messages', 'keys', 'poison', 'partitions', 'timeout-ms'] as const) {
      if (!Number.isInteger(args[flag]) || args[flag] < (flag === 'messages' || flag === 'poison' ? 0 : 1)) throw new Error(`--${flag} must be a positive integer`)
    }
    for (const flag of ['failure-rate', 'worker-failure-rate'] as const) {
      if (!(args[flag] >= 0 && args[flag] <= 1)) throw new Error(`--${flag} must be within 0..1`)
    }
    if (args.rate !== undefined && !(args.rate > 0)) throw new Error('--rate must be > 0')
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

view.note(
  `Detour demo: ${argv.messages} messages over ${argv.keys} keys, ${argv.partitions} partitions, failure rate ${argv['failure-rate']}, ` +
    `${argv.poison} poison, seed ${argv.seed}${argv.chaos ? ', chaos' : ''}`,
)
const choice = await resolveBrokerMode()
const alternatives =
  choice.mode === 'embedded'
    ? 'KAFKA_BROKERS=host:port for an existing cluster'
    : 'DETOUR_BROKER=embedded for the in-process mock broker, KAFKA_BROKERS=host:port for an existing cluster'
view.note(`Broker: ${choice.mode} — ${choice.reason} (${alternatives})`)
let starting = 'Starting the broker'
if (choice.mode === 'kafka') {
  starting = `Starting Apache Kafka ${KAFKA_VERSION} (one node, a JVM child process)`
  if (!existsSync(join(kafkaCacheDir(), 'libs', '.complete'))) {
    view.note(`First run: Maven downloads Apache Kafka ${KAFKA_VERSION} (about 45 MB) into ${kafkaCacheDir()}; later runs start from there.`)
  }
}
const broker = await view.during(starting, startBroker({ log: (line) => view.note(line) }))
view.note(`Broker: ${broker.description}`)
const options: ScenarioOptions = {
  name: 'demo',
  broker,
  workload: {
    messages: argv.messages,
    keys: argv.keys,
    failureRate: argv['failure-rate'],
    poison: argv.poison,
    seed: argv.seed,
    // Reused topics (KAFKA_BROKERS) may hold earlier runs: the checker only counts this run.
    run: `demo-${argv.seed}-${randomBytes(4).toString('hex')}`,
  },
  partitions: argv.partitions,
  mainApps: argv.chaos ? 2 : 1,
  handler: { workerFailureRate: argv['worker-failure-rate'] },
  worker: { exhaustedPolicy: 'release', maxAttempts: 10, initialDelayMs: 200, maxDelayMs: 2000 },
  produceRatePerSec: argv.rate ?? (argv.chaos ? Math.max(50, Math.round(argv.messages / 12)) : undefined),
  chaos: argv.chaos ? { seed: argv.seed, intervalMs: [1500, 3500], downMs: [200, 1500], sigtermRatio: 0.25, afterProducedMs: 4000 } : undefined,
  timeoutMs: argv['timeout-ms'],
  names: { topic: argv.topic, groupId: argv.group, outputTopic: argv['output-topic'] },
  signal: abort.signal,
  onProgress: (progress) => view.update(progress),
  log: (line) => view.note(line),
}
const result = await runScenario(options)
view.finish()
await broker.stop()
console.log(summaryTable(result))
if (result.chaos.length > 0) {
  console.log(`chaos: ${result.chaos.map((e) => `${(e.at / 1000).toFixed(1)}s ${e.signal === 'SIGKILL' ? 'kill' : 'stop'} ${e.target}`).join(', ')}`)
}
for (const crash of result.environmentCrashes) console.log(`note: ${crash}`)
if (result.ok) {
  console.log(`✓ every invariant held (logs: ${result.logDir})`)
  process.exit(0)
}
console.log(`✗ the run failed (logs: ${result.logDir}):`)
for (const failure of result.failures) console.log(`  - ${failure}`)
process.exit(result.aborted ? 130 : 1)

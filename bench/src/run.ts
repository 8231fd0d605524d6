import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { resolveBrokerMode, startBroker, testKafka } from '@detour/testkit'
import { parseArgs, usage } from './cli/parse-args.js'
import { resultsFile, writeResults } from './report/results-file.js'
import { formatTable } from './report/table.js'
import { benchmarks } from './suite/registry.js'
import type { BenchContext, Figure } from './suite/types.js'
import { loadAverage, machineInfo } from './support/machine.js'

const benchDir = resolve(dirname(fileURLToPath(import.meta.url)), '..')

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2), benchmarks.map((b) => b.name))
  if (args.help) {
    console.log(`${usage}\nBenchmarks: ${benchmarks.map((b) => b.name).join(', ')}`)
    return 0
  }
  const selected = args.only.length > 0 ? benchmarks.filter((b) => args.only.includes(b.name)) : benchmarks
  const machine = machineInfo()
  const startedAt = new Date()
  const loadAtStart = loadAverage()
  const t0 = performance.now()
  // Apache Kafka when Java is here (DETOUR_BROKER=embedded: the mock), with the JVM's normal JIT: the
  // tests' fast-start setting (first tier only) would slow the broker down under load.
  const choice = await resolveBrokerMode()
  console.log(`Broker: ${choice.mode} (${choice.reason}); starting…`)
  const broker = await startBroker({ jit: 'full', log: (line) => console.log(line) })
  console.log(`Detour benchmarks${args.quick ? ' (--quick: smoke run, not for publishing)' : ''}`)
  console.log(`${machine.cores} cores, ${machine.cpuModel}, Node ${machine.node}; broker: ${broker.description}; load ${loadAtStart.join(' ')}`)
  const ctx: BenchContext = {
    broker,
    kafka: testKafka(broker),
    consumerConfig: broker.consumerTiming,
    quick: args.quick,
    log: (message) => console.log(message),
  }
  const results: Figure[] = []
  const failures: Array<{ benchmark: string; error: string }> = []
  try {
    for (const benchmark of selected) {
      console.log(`\n▶ ${benchmark.name}: ${benchmark.title}`)
      const started = performance.now()
      try {
        const figures = await benchmark.run(ctx)
        results.push(...figures)
        for (const f of figures) {
          console.log(`  = ${f.name}: ${f.value} ${f.unit}${f.baseline !== null ? ` vs ${f.baseline}, ratio ${f.ratio}` : ''}`)
        }
      } catch (error) {
        const message = error instanceof Error ? (error.stack ?? error.message) : String(error)
        failures.push({ benchmark: benchmark.name, error: message })
        console.error(`  ✗ ${benchmark.name} failed: ${message}`)
      }
      console.log(`  (${((performance.now() - started) / 1000).toFixed(1)} s)`)
    }
  } finally {
    await broker.stop()
  }
  const durationSeconds = Math.round((performance.now() - t0) / 100) / 10
  const out = args.out ? resolve(args.out) : resolve(benchDir, 'results.json')
  await writeResults(
    out,
    resultsFile({
      startedAt,
      machine,
      brokerMode: broker.mode,
      broker: broker.description,
      brokerReason: choice.reason,
      quick: args.quick,
      only: args.only,
      durationSeconds,
      loadAverage: { start: loadAtStart, end: loadAverage() },
      results,
      failures,
    }),
  )
  console.log(`\n${formatTable(results)}\n`)
  console.log(`${results.length} figures in ${durationSeconds} s on ${broker.description}; written to ${out} (section "${broker.mode}")`)
  if (failures.length > 0) console.error(`${failures.length} benchmark(s) failed: ${failures.map((f) => f.benchmark).join(', ')}`)
  return failures.length > 0 ? 1 : 0
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error)
    process.exit(2)
  },
)

import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { figure } from '../suite/figure.js'
import type { Benchmark, BenchContext, Figure } from '../suite/types.js'
import type { StoreMemoryRequest, StoreMemorySample } from './store-memory-child.js'

const run = promisify(execFile)
const childScript = fileURLToPath(new URL('./store-memory-child.js', import.meta.url))

async function measureInChild(request: StoreMemoryRequest): Promise<StoreMemorySample[]> {
  const { stdout } = await run(process.execPath, ['--expose-gc', childScript, JSON.stringify(request)], { maxBuffer: 1 << 20 })
  return JSON.parse(stdout) as StoreMemorySample[]
}

/**
 * Group store memory and speed, in a child process (`--expose-gc`, nothing else on its heap): heap
 * growth after adding N ids, divided by N; then hasPending and release costs.
 */
export const storeMemory: Benchmark = {
  name: 'store-memory',
  title: 'Group store: bytes per pending id, hasPending and release cost',
  async run(ctx: BenchContext) {
    const ids = ctx.quick ? 200_000 : 1_000_000
    const reps = ctx.quick ? 1 : 3
    const partitions = 8
    const shapes = [
      { name: 'distinct-groups', groups: ids, label: `${ids.toLocaleString('en-US')} ids in ${ids.toLocaleString('en-US')} groups (1 id per group)` },
      { name: '10k-groups', groups: 10_000, label: `${ids.toLocaleString('en-US')} ids in 10,000 groups (${ids / 10_000} ids per group)` },
    ]
    const figures: Figure[] = []
    for (const shape of shapes) {
      ctx.log(`  ${shape.label}`)
      const samples = await measureInChild({ ids, groups: shape.groups, partitions, reps })
      for (const s of samples) ctx.log(`    ${JSON.stringify(s)}`)
      const workload = `${shape.label}, ${partitions} partitions, group keys "customer-NNNNNNNN" (17 B), 10-digit offsets; child process (node --expose-gc)`
      figures.push(
        figure({
          name: `store-bytes-per-id/${shape.name}`,
          unit: 'B/id',
          values: samples.map((s) => s.bytesPerId),
          goal: { on: 'value', op: '<=', target: 150 },
          workload: `${workload}; heap delta after global.gc() / ids`,
        }),
        figure({
          name: `store-hasPending/${shape.name}`,
          unit: 'ns/op',
          values: samples.map((s) => s.hasPendingNs),
          workload: `${workload}; ${ids.toLocaleString('en-US')} lookups with fresh key strings, 50% hits`,
        }),
        figure({
          name: `store-release/${shape.name}`,
          unit: 'ns/op',
          values: samples.map((s) => s.releaseNs),
          workload: `${workload}; every id released oldest first`,
        }),
        figure({
          name: `store-add/${shape.name}`,
          unit: 'ns/op',
          values: samples.map((s) => s.addNs),
          workload: `${workload}; includes building the key and id strings`,
        }),
      )
    }
    return figures
  },
}

// Child process of the store-memory benchmark: run with `node --expose-gc`. Prints one JSON line.
import { GroupStore, groupKeyToStoreKey, messageId } from '@detour/core'

export interface StoreMemoryRequest {
  readonly ids: number
  readonly groups: number
  readonly partitions: number
  readonly reps: number
}

export interface StoreMemorySample {
  readonly bytesPerId: number
  readonly addNs: number
  readonly hasPendingNs: number
  readonly releaseNs: number
}

const TOPIC = 'orders.v1-production'
/** Offsets in the billions, like a long-lived topic (10-digit strings). */
const BASE_OFFSET = 3_000_000_000

function gc(): void {
  const collect = (globalThis as { gc?: () => void }).gc
  if (!collect) throw new Error('run with node --expose-gc')
  collect()
  collect()
}

function heapUsed(): number {
  gc()
  return process.memoryUsage().heapUsed
}

/** Group keys as the SDK makes them: message key bytes → latin1 string. */
function storeKey(group: number): string {
  return groupKeyToStoreKey(Buffer.from(`customer-${String(group).padStart(8, '0')}`), '')
}

/** The i-th id: partitions round-robin, offsets ascending within a partition; group = i mod groups. */
function idOf(i: number, partitions: number): string {
  const partition = i % partitions
  return messageId({ topic: TOPIC, partition, offset: String(BASE_OFFSET + Math.floor(i / partitions)) })
}

function measure(req: StoreMemoryRequest): StoreMemorySample {
  const { ids, groups, partitions } = req
  const store = new GroupStore({ maxPendingIds: ids })
  for (let p = 0; p < partitions; p++) store.resetPartition(TOPIC, p)
  // A key lives in one partition: id i is on partition i mod P and in group i mod G; with P dividing G,
  // every id of a group is on the same partition.
  if (groups % partitions !== 0) throw new Error('partitions must divide groups')
  const groupOf = (i: number): number => i % groups
  const before = heapUsed()
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < ids; i++) {
    const partition = i % partitions
    store.add(TOPIC, partition, storeKey(groupOf(i)), idOf(i, partitions))
  }
  const addNs = Number(process.hrtime.bigint() - t0) / ids
  const after = heapUsed()
  if (store.pendingCount !== ids) throw new Error(`expected ${ids} pending ids, got ${store.pendingCount}`)
  const bytesPerId = (after - before) / ids

  // hasPending: fresh key strings (as for each consumed message), half of them for groups with pending
  // ids, half for groups without.
  const probes: Array<{ partition: number; key: string }> = []
  for (let i = 0; i < ids; i++) {
    const partition = i % partitions
    const group = i % 2 === 0 ? groupOf(i) : groups + i
    probes.push({ partition, key: storeKey(group) })
  }
  let hits = 0
  const t1 = process.hrtime.bigint()
  for (const probe of probes) if (store.hasPending(TOPIC, probe.partition, probe.key)) hits++
  const hasPendingNs = Number(process.hrtime.bigint() - t1) / probes.length
  if (hits !== Math.ceil(ids / 2)) throw new Error(`expected ${Math.ceil(ids / 2)} hits, got ${hits}`)

  // release: every id, oldest first (as tombstones arrive), with fresh key and id strings.
  const releases: Array<{ partition: number; key: string; id: string }> = []
  for (let i = 0; i < ids; i++) releases.push({ partition: i % partitions, key: storeKey(groupOf(i)), id: idOf(i, partitions) })
  const t2 = process.hrtime.bigint()
  for (const r of releases) store.release(TOPIC, r.partition, r.key, r.id)
  const releaseNs = Number(process.hrtime.bigint() - t2) / releases.length
  if (store.pendingCount !== 0) throw new Error(`expected 0 pending ids after releasing, got ${store.pendingCount}`)
  return { bytesPerId, addNs, hasPendingNs, releaseNs }
}

const request = JSON.parse(process.argv[2] ?? '{}') as StoreMemoryRequest
const samples: StoreMemorySample[] = []
for (let rep = 0; rep < request.reps + 1; rep++) {
  const sample = measure(request)
  if (rep > 0) samples.push(sample) // the first round is a warm-up (JIT, heap growth)
}
process.stdout.write(`${JSON.stringify(samples)}\n`)

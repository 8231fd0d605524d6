import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { resolveBrokerMode, testKafka, type TestBroker } from '@detour/testkit'
import { describeResult } from './system/scenario.js'
import { scenario, setUpSuite } from './test-support.js'

/**
 * A broker process dies (SIGKILL, as when its machine fails) in the middle of a run and comes back with
 * its data: a 3-node Apache Kafka cluster of this file's own, run by the test kit. Detour's topics get
 * the cluster's defaults, replication factor 3 and `min.insync.replicas=2`, so writes with acks=all go on
 * while one broker is away. Needs Java (and Maven, or Kafka's jars cached); otherwise skipped, saying why,
 * and the embedded-broker version in broker-faults.e2e.test.ts runs instead.
 */
let broker: TestBroker | undefined
let unavailable: string | undefined

beforeAll(async () => {
  unavailable = (await resolveBrokerMode({ nodes: 3 })).unavailable
  if (unavailable) {
    console.log(`broker-restart: skipped, ${unavailable}`)
    return
  }
  broker = await setUpSuite({ nodes: 3 })
}, 300_000)

afterAll(async () => {
  await broker?.stop()
})

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** The broker that leads partition 0 of `topic`. */
async function leaderOf(b: TestBroker, topic: string): Promise<number> {
  const admin = testKafka(b).admin()
  await admin.connect()
  try {
    const metadata = await admin.fetchTopicMetadata({ topics: [topic] })
    const leader = metadata.topics[0]?.partitions.find((p) => p.partitionId === 0)?.leader
    if (leader === undefined || leader < 0) throw new Error(`no leader for ${topic}/0`)
    return leader
  } finally {
    await admin.disconnect()
  }
}

describe('broker crash and restart (3-node Apache Kafka cluster)', () => {
  it('keeps every invariant when a broker is SIGKILLed mid-run and restarted', async (ctx) => {
    if (!broker) {
      ctx.skip(`needs a 3-node Apache Kafka cluster run by the test kit: ${unavailable}`)
      return
    }
    const cluster = broker
    if (!cluster.killBroker || !cluster.restartBroker) throw new Error(`${cluster.description} cannot kill and restart brokers`)
    const events: string[] = []
    const whileDown = { before: 0, after: 0 }
    const result = await scenario(cluster, {
      name: 'broker-restart',
      workload: { messages: 2000, keys: 120, failureRate: 0.05, poison: 3, seed: 44 },
      worker: { initialDelayMs: 300, maxDelayMs: 2000 },
      produceRatePerSec: 150,
      timeoutMs: 180_000,
      // A member whose coordinator died may crash and be restarted, as under an orchestrator.
      allowCrashes: true,
      during: async ({ system, waitUntil, progress }) => {
        await waitUntil((p) => p.processed >= 300, '300 messages processed', 90_000)
        const victim = await leaderOf(cluster, system.topics.source)
        whileDown.before = progress().processed
        const killedAt = Date.now()
        await cluster.killBroker!(victim)
        events.push(`SIGKILL broker ${victim} (leader of ${system.topics.source}/0) at ${progress().processed} processed`)
        // Down long enough for the cluster to move leaderships (broker session 3 s) and for the clients
        // to follow (kafkajs refreshes its metadata after connection errors), while messages keep coming.
        await sleep(15_000)
        whileDown.after = progress().processed
        await cluster.restartBroker!(victim)
        events.push(`broker ${victim} back after ${((Date.now() - killedAt) / 1000).toFixed(1)} s, at ${progress().processed} processed`)
      },
    })
    console.log(`broker-restart: ${events.join('; ')}; processed while down: ${whileDown.after - whileDown.before}`)
    if (!result.ok) console.log(cluster.logTail?.(40))
    expect(result.failures, describeResult(result)).toEqual([])
    expect(result.report.firstProcessingViolations).toBe(0)
    expect(result.report.staleReplays).toBe(0)
    expect(result.report.lost).toBe(0)
    expect(result.report.pendingIds).toBe(0)
    expect(result.storePendingIds).toBe(0)
    expect(result.report.poison.deadLettered).toBe(3)
    expect(events).toHaveLength(2)
    // Processing went on with one broker of three away (RF 3, min.insync.replicas 2).
    expect(whileDown.after).toBeGreaterThan(whileDown.before)
  }, 360_000)
})

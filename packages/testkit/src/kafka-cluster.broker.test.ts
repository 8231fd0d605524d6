import { spawnSync } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigResourceTypes, type Admin, type Kafka } from 'kafkajs'
import { KafkaCluster, collectMessages, randomName, resolveBrokerMode, skippedBecause, startBroker, testKafka, waitFor, type BrokerNeed, type TestBroker } from './index.js'

/**
 * A 3-node Apache Kafka cluster of the test's own (the test kit runs it): replication defaults that survive
 * the loss of one broker, a SIGKILLed leader, the broker's return into the ISR, and no JVM left behind.
 */
const needs: BrokerNeed[] = ['broker-restart']
const choice = await resolveBrokerMode({ needs, nodes: 3 })

/** The broker JVMs (and their wrappers) of one cluster: their command line names the cluster's folder. */
function jvmsOf(dir: string): string[] {
  const found = spawnSync('pgrep', ['-af', `kafka\\.Kafka ${dir}/`], { encoding: 'utf8' })
  return found.stdout.split('\n').filter(Boolean)
}

describe.skipIf(choice.unavailable !== undefined)(skippedBecause('a 3-node Kafka cluster run by the test kit', choice.unavailable), () => {
  let broker: TestBroker
  let kafka: Kafka
  let admin: Admin

  beforeAll(async () => {
    broker = await startBroker({ needs, nodes: 3 })
    kafka = testKafka(broker, { retry: { initialRetryTime: 200, retries: 10, maxRetryTime: 2000 } })
    admin = kafka.admin()
    await admin.connect()
  })

  afterAll(async () => {
    await admin?.disconnect()
    await broker?.stop()
  })

  /** Partition 0's leader, replicas and ISR, asked until the cluster answers (a killed broker's connections fail for a moment). */
  async function partition0(topic: string): Promise<{ leader: number; replicas: number[]; isr: number[] }> {
    let found: { leader: number; replicas: number[]; isr: number[] } | undefined
    await waitFor(
      async () => {
        try {
          const metadata = await admin.fetchTopicMetadata({ topics: [topic] })
          const partition = metadata.topics[0]!.partitions.find((p) => p.partitionId === 0)!
          found = { leader: partition.leader, replicas: [...partition.replicas].sort(), isr: [...partition.isr].sort() }
          return true
        } catch {
          return false
        }
      },
      `the metadata of ${topic}`,
      30_000,
      250,
    )
    return found!
  }

  it('creates topics with replication factor 3 and min.insync.replicas=2 by default', async () => {
    expect(broker).toBeInstanceOf(KafkaCluster)
    expect(broker.brokerIds).toEqual([1, 2, 3])
    const topic = randomName('replicated')
    await broker.createTopic(topic, 2)
    expect((await partition0(topic)).replicas).toEqual([1, 2, 3])
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['min.insync.replicas'] }],
    })
    expect(described.resources[0]!.configEntries.find((e) => e.configName === 'min.insync.replicas')?.configValue).toBe('2')
  })

  it('survives a SIGKILLed leader: leadership moves, acks=all still succeeds, and the broker rejoins the ISR after a restart', async () => {
    const topic = randomName('failover')
    await broker.createTopic(topic, 1)
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    try {
      await producer.send({ topic, acks: -1, messages: [{ key: 'k', value: 'before' }] })
      const { leader } = await partition0(topic)
      await broker.killBroker!(leader)
      expect((broker as KafkaCluster).isRunning(leader)).toBe(false)
      await waitFor(async () => (await partition0(topic)).leader !== leader, `leadership to move away from broker ${leader}`, 30_000, 250)
      const moved = await partition0(topic)
      expect(moved.isr).not.toContain(leader)
      expect(moved.isr).toHaveLength(2)

      // Two in-sync replicas of three: enough for min.insync.replicas=2.
      await producer.send({ topic, acks: -1, messages: [{ key: 'k', value: 'one broker down' }] })

      await broker.restartBroker!(leader)
      await waitFor(async () => (await partition0(topic)).isr.includes(leader), `broker ${leader} back in the ISR`, 30_000, 250)
      expect((await partition0(topic)).isr).toEqual([1, 2, 3])
      await producer.send({ topic, acks: -1, messages: [{ key: 'k', value: 'after' }] })
    } finally {
      await producer.disconnect()
    }
    const messages = await collectMessages(kafka, topic, (c) => c.length >= 3, 30_000)
    expect(messages.map((m) => [m.message.offset, m.message.value?.toString()])).toEqual([
      ['0', 'before'],
      ['1', 'one broker down'],
      ['2', 'after'],
    ])
  })

  it('stop() leaves no broker JVM behind', async () => {
    const cluster = broker as KafkaCluster
    // Each node: its run-kafka.sh wrapper (and the wrapper's watcher) and the JVM.
    const javas = jvmsOf(cluster.dir).filter((line) => /^\d+ (\S*\/)?java /.test(line))
    const running = cluster.brokerIds.filter((id) => cluster.isRunning(id))
    expect(running.length).toBeGreaterThan(0)
    expect(javas).toHaveLength(running.length)
    await admin.disconnect()
    await cluster.stop()
    expect(jvmsOf(cluster.dir)).toEqual([])
  })
})

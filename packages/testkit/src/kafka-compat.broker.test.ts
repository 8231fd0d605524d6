import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigResourceTypes, type Admin, type ConsumerConfig, type Kafka, type KafkaMessage } from 'kafkajs'
import { randomName, resolveBrokerMode, skippedBecause, sleep, startBroker, testKafka, waitFor, type BrokerNeed, type TestBroker } from './index.js'

/**
 * kafkajs 2.2.4 against the run's real Kafka, for every API Detour and its tests use. Kafka 4 removed old
 * protocol versions (KIP-896): this is what says the pinned Kafka still speaks every one kafkajs needs, and
 * that the behaviours the mock cannot show (compaction, transactions, the admin API) hold.
 */
const needs: BrokerNeed[] = ['admin-api', 'transactions', 'compaction']
const choice = await resolveBrokerMode({ needs })

describe.skipIf(choice.unavailable !== undefined)(skippedBecause(`kafkajs 2.2.4 against the ${choice.mode} broker`, choice.unavailable), () => {
  let broker: TestBroker
  let kafka: Kafka
  let admin: Admin

  beforeAll(async () => {
    broker = await startBroker({ needs })
    kafka = testKafka(broker)
    admin = kafka.admin()
    await admin.connect()
  })

  afterAll(async () => {
    await admin?.disconnect()
    await broker?.stop()
  })

  /** Reads `topic` from the beginning with a fresh group until `last(message)`; returns what arrived, in order. */
  async function readUntil(topic: string, last: (message: KafkaMessage) => boolean, config: Partial<ConsumerConfig> = {}): Promise<KafkaMessage[]> {
    const consumer = kafka.consumer({ groupId: randomName('compat-reader'), ...broker.consumerTiming, ...config })
    const messages: KafkaMessage[] = []
    await consumer.connect()
    try {
      await consumer.subscribe({ topic, fromBeginning: true })
      let done = false
      await consumer.run({
        eachMessage: async ({ message }) => {
          messages.push(message)
          if (last(message)) done = true
        },
      })
      await waitFor(() => done, `the last record of ${topic} (got ${messages.length})`, 30_000)
    } finally {
      await consumer.disconnect()
    }
    return messages
  }

  /** Creates a topic through the admin API, waiting for its leaders (as the test kit and Detour do). */
  async function createTopic(partitions: number, configEntries: Array<{ name: string; value: string }> = []): Promise<string> {
    const topic = randomName('compat')
    expect(await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: partitions, configEntries }] })).toBe(true)
    await waitFor(async () => (await admin.fetchTopicOffsets(topic).catch(() => [])).length === partitions, `the leaders of ${topic}`, 30_000)
    return topic
  }

  async function topicConfig(topic: string, name: string): Promise<string | undefined> {
    const described = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: [name] }] })
    return described.resources[0]?.configEntries.find((entry) => entry.configName === name)?.configValue
  }

  it('createTopics with cleanup.policy=compact, read back with describeConfigs', async () => {
    const compacted = await createTopic(2, [{ name: 'cleanup.policy', value: 'compact' }])
    const plain = await createTopic(1)
    expect(await topicConfig(compacted, 'cleanup.policy')).toBe('compact')
    expect(await topicConfig(plain, 'cleanup.policy')).toBe('delete')
    const metadata = await admin.fetchTopicMetadata({ topics: [compacted] })
    expect(metadata.topics[0]!.partitions.map((p) => p.partitionId).sort()).toEqual([0, 1])
  })

  it('produces with headers and null-value tombstones, and an idempotent producer writes each record once, in order', async () => {
    const topic = await createTopic(1)
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    try {
      await producer.send({
        topic,
        acks: -1,
        messages: [
          { key: 'k', value: 'v1', headers: { 'detour-id': 'a/0/1', bin: Buffer.from([0xff, 0x00]) } },
          { key: 'k', value: null, headers: { 'detour-id': 'a/0/1' } },
        ],
      })
      // Many small concurrent sends on one idempotent producer: sequence numbers keep them unique and ordered.
      for (let batch = 0; batch < 5; batch++) {
        await Promise.all(Array.from({ length: 4 }, (_, i) => producer.send({ topic, acks: -1, messages: [{ key: 'seq', value: String(batch * 4 + i) }] })))
      }
      await producer.send({ topic, acks: -1, messages: [{ key: 'end', value: 'end' }] })
    } finally {
      await producer.disconnect()
    }
    const messages = await readUntil(topic, (m) => m.key?.toString() === 'end')
    expect(messages.map((m) => m.offset)).toEqual(Array.from({ length: 23 }, (_, i) => String(i)))
    expect(messages[0]!.value?.toString()).toBe('v1')
    expect(messages[0]!.headers!['detour-id']!.toString()).toBe('a/0/1')
    expect(messages[0]!.headers!.bin).toEqual(Buffer.from([0xff, 0x00]))
    expect(messages[1]!.value).toBeNull()
    expect(messages[1]!.headers!['detour-id']!.toString()).toBe('a/0/1')
    const seq = messages.filter((m) => m.key?.toString() === 'seq').map((m) => Number(m.value!.toString()))
    expect([...seq].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i))
  })

  it('transactions: sendOffsets and commit store the offsets, an aborted transaction stays invisible to read_committed', async () => {
    const topic = await createTopic(1)
    const input = await createTopic(1)
    const groupId = randomName('compat-txn-group')
    const producer = kafka.producer({ transactionalId: randomName('compat-txn'), idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    try {
      const committed = await producer.transaction()
      await committed.send({ topic, messages: [{ key: 'k', value: 'committed' }] })
      await committed.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: input, partitions: [{ partition: 0, offset: '7' }] }] })
      await committed.commit()

      const aborted = await producer.transaction()
      await aborted.send({ topic, messages: [{ key: 'k', value: 'aborted' }] })
      await aborted.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: input, partitions: [{ partition: 0, offset: '9' }] }] })
      await aborted.abort()
    } finally {
      await producer.disconnect()
    }
    const plain = kafka.producer()
    await plain.connect()
    await plain.send({ topic, messages: [{ key: 'end', value: 'end' }] })
    await plain.disconnect()

    const isEnd = (m: KafkaMessage): boolean => m.value?.toString() === 'end'
    const readCommitted = await readUntil(topic, isEnd, { readUncommitted: false })
    expect(readCommitted.map((m) => m.value?.toString())).toEqual(['committed', 'end'])
    // The aborted record is in the log (read_uncommitted sees it): read_committed filtered it out.
    const readUncommitted = await readUntil(topic, isEnd, { readUncommitted: true })
    expect(readUncommitted.map((m) => m.value?.toString())).toEqual(['committed', 'aborted', 'end'])
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [input] })
    expect(offsets!.partitions).toEqual([expect.objectContaining({ partition: 0, offset: '7' })])
  })

  it('fencing: a second producer with the same transactionalId makes the first one fail with a fenced epoch', async (ctx) => {
    const topic = await createTopic(1)
    const transactionalId = randomName('compat-fenced')
    const first = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1, retry: { retries: 1, initialRetryTime: 100 } })
    const second = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 })
    await Promise.all([first.connect(), second.connect()])
    try {
      const zombie = await first.transaction()
      await zombie.send({ topic, messages: [{ value: 'zombie-1' }] })
      // transaction() initialises the producer id (connect() does not): this bumps the epoch and fences `first`.
      const successor = await second.transaction()
      const sendError = await zombie.send({ topic, messages: [{ value: 'zombie-2' }] }).then(() => undefined, (error: unknown) => error)
      const commitError = await zombie.commit().then(() => undefined, (error: unknown) => error)
      const fenced = [sendError, commitError].filter((error) => error !== undefined).map(fenceType)
      await ctx.annotate(`the fenced producer failed with ${fenced.join(', ')}`)
      expect(fenced.length).toBeGreaterThan(0)
      for (const type of fenced) expect(['INVALID_PRODUCER_EPOCH', 'PRODUCER_FENCED']).toContain(type)
      await successor.send({ topic, messages: [{ value: 'successor' }] })
      await successor.commit()
    } finally {
      await Promise.all([first.disconnect(), second.disconnect()])
    }
    const plain = kafka.producer()
    await plain.connect()
    await plain.send({ topic, messages: [{ value: 'end' }] })
    await plain.disconnect()
    const messages = await readUntil(topic, (m) => m.value?.toString() === 'end', { readUncommitted: false })
    expect(messages.map((m) => m.value?.toString())).toEqual(['successor', 'end'])
  })

  it('describeGroups, listGroups and fetchOffsets see a consumer group and its commits', async () => {
    const topic = await createTopic(2)
    const groupId = randomName('compat-group')
    const producer = kafka.producer()
    await producer.connect()
    await producer.send({ topic, messages: [{ partition: 0, value: 'a' }, { partition: 0, value: 'b' }, { partition: 1, value: 'c' }] })
    await producer.disconnect()
    const consumer = kafka.consumer({ groupId, ...broker.consumerTiming })
    let seen = 0
    await consumer.connect()
    try {
      await consumer.subscribe({ topic, fromBeginning: true })
      await consumer.run({ autoCommit: false, eachMessage: async () => void seen++ })
      await waitFor(() => seen === 3, 'three records')
      await consumer.commitOffsets([
        { topic, partition: 0, offset: '2' },
        { topic, partition: 1, offset: '1' },
      ])
      const { groups } = await admin.describeGroups([groupId])
      expect(groups[0]).toMatchObject({ groupId, state: 'Stable', protocolType: 'consumer' })
      expect(groups[0]!.members).toHaveLength(1)
      const listed = await admin.listGroups()
      expect(listed.groups).toContainEqual(expect.objectContaining({ groupId, protocolType: 'consumer' }))
      const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] })
      expect(offsets!.partitions.map((p) => [p.partition, p.offset]).sort()).toEqual([
        [0, '2'],
        [1, '1'],
      ])
    } finally {
      await consumer.disconnect()
    }
  })

  it('fetchTopicOffsets and fetchTopicOffsetsByTimestamp', async () => {
    const topic = await createTopic(1)
    const base = Date.now() - 10_000
    const producer = kafka.producer()
    await producer.connect()
    await producer.send({ topic, messages: [0, 1, 2].map((i) => ({ value: `r${i}`, timestamp: String(base + i * 1000) })) })
    await producer.disconnect()
    expect(await admin.fetchTopicOffsets(topic)).toEqual([expect.objectContaining({ partition: 0, low: '0', high: '3', offset: '3' })])
    expect(await admin.fetchTopicOffsetsByTimestamp(topic, base + 500)).toEqual([{ partition: 0, offset: '1' }])
    expect(await admin.fetchTopicOffsetsByTimestamp(topic, base)).toEqual([{ partition: 0, offset: '0' }])
    // After the last record: the end of the partition.
    expect(await admin.fetchTopicOffsetsByTimestamp(topic, base + 5000)).toEqual([{ partition: 0, offset: '3' }])
  })

  it('createPartitions and deleteTopics', async () => {
    const topic = await createTopic(1)
    await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] })
    await waitFor(async () => (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0]!.partitions.length === 3, 'three partitions', 30_000)
    await waitFor(async () => (await admin.fetchTopicOffsets(topic).catch(() => [])).length === 3, 'leaders of the new partitions', 30_000)
    await admin.deleteTopics({ topics: [topic], timeout: 30_000 })
    await waitFor(async () => !(await admin.listTopics()).includes(topic), `${topic} to disappear`, 30_000)
  })

  it('compaction removes superseded records and released keys (value and tombstone) within seconds', async (ctx) => {
    const topic = await createTopic(1, [
      { name: 'cleanup.policy', value: 'compact' },
      { name: 'segment.ms', value: '100' },
      { name: 'min.cleanable.dirty.ratio', value: '0.01' },
      { name: 'delete.retention.ms', value: '0' },
    ])
    const producer = kafka.producer()
    await producer.connect()
    let filler = 0
    let stopFiller = false
    // New records keep rolling segments (segment.ms applies when a record arrives): only closed segments are cleaned.
    const fill = (async () => {
      while (!stopFiller) {
        await producer.send({ topic, messages: [{ key: 'filler', value: String(filler++) }] })
        await sleep(500)
      }
    })()
    try {
      await producer.send({
        topic,
        messages: [
          { key: 'kept', value: 'old' },
          { key: 'released', value: 'pending' },
          { key: 'kept', value: 'new' },
          { key: 'released', value: null },
        ],
      })
      const started = Date.now()
      let latest: KafkaMessage[] = []
      await waitFor(
        async () => {
          const mark = `mark-${filler}`
          await producer.send({ topic, messages: [{ key: 'mark', value: mark }] })
          latest = await readUntil(topic, (m) => m.value?.toString() === mark)
          const keys = latest.map((m) => `${m.key?.toString()}=${m.value?.toString() ?? 'null'}`)
          return !keys.includes('released=pending') && !keys.includes('released=null') && !keys.includes('kept=old')
        },
        'compaction to remove the superseded and released records',
        60_000,
        500,
      )
      const kept = latest.filter((m) => m.key?.toString() === 'kept')
      expect(kept.map((m) => m.value?.toString())).toEqual(['new'])
      // Offsets survive compaction: the kept record keeps its offset (2).
      expect(kept[0]!.offset).toBe('2')
      await ctx.annotate(`compaction removed the superseded and released records in ${((Date.now() - started) / 1000).toFixed(1)} s`)
    } finally {
      stopFiller = true
      await fill
      await producer.disconnect()
    }
  })
})

/** The protocol error type of a fenced producer's failure, looked up through kafkajs' error wrappers. */
function fenceType(error: unknown): string {
  type Chain = { type?: string; code?: number; name?: string; cause?: Chain; originalError?: Chain }
  const seen: string[] = []
  for (let e = error as Chain | undefined, depth = 0; e && depth < 10; e = e.cause ?? e.originalError, depth++) {
    // kafkajs 2.2.4 predates PRODUCER_FENCED (code 90): it knows only the code.
    if (e.code === 90) return 'PRODUCER_FENCED'
    if (e.type) {
      if (e.type === 'INVALID_PRODUCER_EPOCH' || e.type === 'PRODUCER_FENCED') return e.type
      seen.push(e.type)
    } else if (e.name) seen.push(e.name)
  }
  return `unexpected: ${seen.join(' <- ')} ${String((error as Error | undefined)?.message)}`
}

import { randomBytes } from 'node:crypto'
import type { Admin, ConsumerConfig, Kafka } from 'kafkajs'
import { noopLogger, someInChain, topicPartitionKey, type Logger } from '@detour/core'
import { AdminError, AdminErrorCodes } from '../errors/index.js'
import type { LogRecord, PartitionBounds, PartitionRange, RangeOutcome, TopicLog } from './topic-log.js'

export interface KafkaTopicLogOptions {
  readonly kafka: Kafka
  /**
   * Prefix of the throwaway consumer groups used to read (a random suffix is added; they never commit).
   * Set it where ACLs restrict group names. @defaultValue 'detour-admin'
   */
  readonly groupIdPrefix?: string
  /** kafkajs settings of the reading consumers (tests shorten the fetch wait and the session). */
  readonly consumerConfig?: Partial<ConsumerConfig>
  /** How long admin requests are asked again while the cluster answers with transient errors. @defaultValue 30000 */
  readonly settleTimeoutMs?: number
  /** A read that has not finished after this long fails. @defaultValue 120000 */
  readonly readTimeoutMs?: number
  /**
   * A partition that made no progress for this long while the consumer kept fetching is reported as
   * incomplete (its remaining offsets hold no readable record, e.g. compacted away). @defaultValue 10000
   */
  readonly stallMs?: number
  readonly logger?: Logger
}

/** Broker answers that settle by themselves: worth asking again. */
const TRANSIENT_TYPES = new Set([
  'COORDINATOR_NOT_AVAILABLE',
  'GROUP_COORDINATOR_NOT_AVAILABLE',
  'NOT_COORDINATOR',
  'NOT_COORDINATOR_FOR_GROUP',
  'COORDINATOR_LOAD_IN_PROGRESS',
  'GROUP_LOAD_IN_PROGRESS',
  'UNKNOWN_TOPIC_OR_PARTITION',
  'LEADER_NOT_AVAILABLE',
  'NOT_LEADER_OR_FOLLOWER',
  'NOT_LEADER_FOR_PARTITION',
  'REQUEST_TIMED_OUT',
])

function isTransient(error: unknown): boolean {
  return someInChain(error, (e) => typeof e.type === 'string' && TRANSIENT_TYPES.has(e.type))
}

/** The reading consumer joined without some of the partitions to read (metadata of a new topic lagging). */
class NotAssignedYet extends Error {
  constructor(missing: string) {
    super(`The reading consumer was not assigned ${missing} (metadata not settled yet)`)
    this.name = 'NotAssignedYet'
  }
}

interface Slot {
  readonly range: PartitionRange
  position: bigint
  done: boolean
  complete: boolean
}

/**
 * {@link TopicLog} over kafkajs. Bounds come from `fetchTopicOffsets` (kafkajs asks with read_committed
 * isolation, so `high` is the last stable offset). A read uses a consumer of its own, in a fresh group
 * that never commits (kafkajs has no manual assignment): it seeks each partition to the start of its
 * range, pauses it once the range is read, and leaves when every range is done.
 */
export class KafkaTopicLog implements TopicLog {
  private readonly logger: Logger

  constructor(private readonly options: KafkaTopicLogOptions) {
    this.logger = options.logger ?? noopLogger
  }

  /**
   * Runs `fn` with an admin client, asking again while the cluster answers with a transient error (a group
   * coordinator still loading on a fresh cluster, metadata lagging after a topic was created or a leader
   * moved), for up to `settleTimeoutMs`.
   */
  private async withAdmin<T>(fn: (admin: Admin) => Promise<T>): Promise<T> {
    const admin = this.options.kafka.admin()
    await admin.connect()
    try {
      const deadline = Date.now() + (this.options.settleTimeoutMs ?? 30_000)
      for (let attempt = 1; ; attempt++) {
        try {
          return await fn(admin)
        } catch (error) {
          if (!isTransient(error) || Date.now() > deadline) throw error
          this.logger.debug('A transient admin error; asking again', { error, attempt })
          await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 100 * 2 ** attempt)))
        }
      }
    } finally {
      await admin.disconnect()
    }
  }

  bounds(topic: string): Promise<Map<number, PartitionBounds> | undefined> {
    return this.withAdmin(async (admin) => {
      const topics = await admin.listTopics()
      if (!topics.includes(topic)) return undefined
      const offsets = await admin.fetchTopicOffsets(topic)
      return new Map(offsets.sort((a, b) => a.partition - b.partition).map(({ partition, low, high }) => [partition, { low: BigInt(low), high: BigInt(high) }]))
    })
  }

  offsetsAt(topic: string, timestampMs: number): Promise<Map<number, bigint>> {
    return this.withAdmin(async (admin) => {
      const [byTime, ends] = await Promise.all([admin.fetchTopicOffsetsByTimestamp(topic, timestampMs), admin.fetchTopicOffsets(topic)])
      const high = new Map(ends.map(({ partition, high: h }) => [partition, BigInt(h)]))
      // -1: no record at or after the time.
      return new Map(byTime.map(({ partition, offset }) => [partition, BigInt(offset) < 0n ? (high.get(partition) ?? 0n) : BigInt(offset)]))
    })
  }

  committedOffsets(groupId: string, topic: string): Promise<Map<number, bigint>> {
    return this.withAdmin(async (admin) => {
      const [result] = await admin.fetchOffsets({ groupId, topics: [topic] })
      const out = new Map<number, bigint>()
      for (const { partition, offset } of result?.partitions ?? []) if (BigInt(offset) >= 0n) out.set(partition, BigInt(offset))
      return out
    })
  }

  async read(ranges: readonly PartitionRange[], onRecord: (record: LogRecord) => void): Promise<RangeOutcome[]> {
    const slots = new Map<string, Slot>()
    for (const range of ranges) {
      const key = topicPartitionKey(range.topic, range.partition)
      if (slots.has(key)) throw new Error(`read: ${range.topic}/${range.partition} is listed twice`)
      const empty = range.from >= range.to
      slots.set(key, { range, position: range.from, done: empty, complete: true })
    }
    const open = (): Slot[] => [...slots.values()].filter((slot) => !slot.done)
    // A consumer that joined before the metadata of a new topic settled misses its partitions: a new one
    // goes on from where the first stopped.
    for (let attempt = 1; open().length > 0; attempt++) {
      try {
        await this.readOpen(slots, open, onRecord)
      } catch (error) {
        if (!(error instanceof NotAssignedYet) || attempt >= 5) throw error
        this.logger.debug('Reading again with a new consumer', { error, attempt })
        await new Promise((resolve) => setTimeout(resolve, 200 * attempt))
      }
    }
    return [...slots.values()].map(({ range, position, complete }) => ({ ...range, reached: position, complete }))
  }

  private async readOpen(slots: Map<string, Slot>, open: () => Slot[], onRecord: (record: LogRecord) => void): Promise<void> {
    const topics = [...new Set(open().map((slot) => slot.range.topic))]
    const partitionsOf = await this.withAdmin(async (admin) => {
      const metadata = await admin.fetchTopicMetadata({ topics })
      return new Map(metadata.topics.map((t) => [t.name, t.partitions.map((p) => p.partitionId)]))
    })
    const consumer = this.options.kafka.consumer({
      groupId: `${this.options.groupIdPrefix ?? 'detour-admin'}-${randomBytes(6).toString('hex')}`,
      readUncommitted: false,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 500,
      ...this.options.consumerConfig,
    })
    const stallMs = this.options.stallMs ?? 10_000
    const timeoutMs = this.options.readTimeoutMs ?? 120_000
    let lastProgress = Date.now()
    let fetchesSinceProgress = 0
    let finish!: () => void
    let fail!: (error: Error) => void
    const finished = new Promise<void>((resolve, reject) => {
      finish = resolve
      fail = reject
    })

    /** Pauses every partition of the topics that has nothing (more) to read. */
    const pauseIdle = (): void => {
      for (const [topic, partitions] of partitionsOf) {
        const idle = partitions.filter((partition) => slots.get(topicPartitionKey(topic, partition))?.done !== false)
        if (idle.length > 0) consumer.pause([{ topic, partitions: idle }])
      }
    }
    const seekOpen = (): void => {
      for (const slot of open()) consumer.seek({ topic: slot.range.topic, partition: slot.range.partition, offset: slot.position.toString() })
    }
    const advance = (topic: string, partition: number, next: bigint): void => {
      const slot = slots.get(topicPartitionKey(topic, partition))
      if (!slot || slot.done) return
      // Records past the range's end were not handed out: the position stops at the end.
      const position = next > slot.range.to ? slot.range.to : next
      if (position <= slot.position) return
      slot.position = position
      lastProgress = Date.now()
      fetchesSinceProgress = 0
      if (slot.position >= slot.range.to) {
        slot.done = true
        consumer.pause([{ topic, partitions: [partition] }])
        if (open().length === 0) finish()
      }
    }

    consumer.on(consumer.events.END_BATCH_PROCESS, (event) => {
      const { topic, partition, lastOffset } = event.payload
      advance(topic, partition, BigInt(lastOffset) + 1n)
    })
    consumer.on(consumer.events.FETCH, () => {
      fetchesSinceProgress++
    })
    // After every join (kafkajs restarts a crashed consumer with fresh state): seek again, pause again.
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      const assignment = event.payload.memberAssignment
      const missing = open().filter((slot) => !(assignment[slot.range.topic] ?? []).includes(slot.range.partition))
      if (missing.length > 0) {
        fail(new NotAssignedYet(missing.map((slot) => `${slot.range.topic}/${slot.range.partition}`).join(', ')))
        return
      }
      pauseIdle()
      seekOpen()
    })
    consumer.on(consumer.events.CRASH, (event) => {
      if (!event.payload.restart) fail(event.payload.error)
      else this.logger.warn('A reading consumer crashed; kafkajs restarts it', { error: event.payload.error })
    })
    const ticker = setInterval(() => {
      const idleFor = Date.now() - lastProgress
      if (idleFor >= stallMs && fetchesSinceProgress >= 3) {
        for (const slot of open()) {
          this.logger.warn('Stopped reading a partition early: its remaining offsets hold no readable record', {
            topic: slot.range.topic,
            partition: slot.range.partition,
            reached: slot.position.toString(),
            to: slot.range.to.toString(),
          })
          slot.done = true
          slot.complete = false
        }
        finish()
      }
    }, Math.min(500, stallMs))
    const timer = setTimeout(() => {
      const where = open()
        .map((slot) => `${slot.range.topic}/${slot.range.partition} at ${slot.position} of ${slot.range.to}`)
        .join(', ')
      fail(new AdminError(`Reading did not finish within ${timeoutMs} ms (${where})`, AdminErrorCodes.TIMEOUT, { retriable: true }))
    }, timeoutMs)
    try {
      await consumer.connect()
      await consumer.subscribe({ topics, fromBeginning: true })
      // Not awaited: run() resolves after the join; seek and pause work from the moment it is called.
      consumer
        .run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            const slot = slots.get(topicPartitionKey(batch.topic, batch.partition))
            if (!slot || slot.done) return
            for (const message of batch.messages) {
              const offset = BigInt(message.offset)
              if (offset < slot.position) continue
              if (offset >= slot.range.to) break
              onRecord({
                topic: batch.topic,
                partition: batch.partition,
                offset: message.offset,
                key: message.key,
                value: message.value,
                headers: message.headers ?? {},
                timestamp: message.timestamp,
              })
            }
            advance(batch.topic, batch.partition, BigInt(batch.lastOffset()) + 1n)
          },
        })
        .catch((error: unknown) => fail(error instanceof Error ? error : new Error(String(error))))
      pauseIdle()
      seekOpen()
      await finished
    } finally {
      clearInterval(ticker)
      clearTimeout(timer)
      await consumer.disconnect().catch((error: unknown) => this.logger.debug('Disconnecting a reading consumer failed', { error }))
    }
  }
}

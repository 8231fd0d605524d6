import type { IHeaders, Message } from 'kafkajs'
import type {
  LogRecord,
  PartitionBounds,
  PartitionRange,
  RangeOutcome,
  TopicLog,
  TopicMessages,
  TopicWriter,
  TransactionalWriter,
  WrittenRecord,
} from '../kafka/topic-log.js'

interface MemoryTopic {
  readonly partitions: LogRecord[][]
  readonly compact: boolean
  /** Offsets below this are deleted (retention). */
  readonly low: bigint[]
}

/**
 * A stand-in for Kafka in unit tests: topics as arrays of records, one offset per record, no transactions
 * in flight (a commit appends all or nothing), fencing of transactional ids. Implements both the reading and
 * the writing side of the operator surface.
 */
export class MemoryKafka implements TopicLog, TopicWriter {
  readonly topics = new Map<string, MemoryTopic>()
  readonly commits = new Map<string, Map<string, Map<number, bigint>>>()
  /** transactional id → generation; a writer of an older generation is fenced. */
  private readonly generations = new Map<string, number>()
  readonly calls: string[] = []
  /** Set to make the next commit or send fail with this error. */
  failNext: unknown
  now = (): number => Date.parse('2024-05-01T12:00:00.000Z')

  createTopicSync(topic: string, partitions: number, compact = false): void {
    if (!this.topics.has(topic)) this.topics.set(topic, { partitions: Array.from({ length: partitions }, () => []), compact, low: Array.from({ length: partitions }, () => 0n) })
  }

  append(topic: string, message: Message, timestamp = this.now()): WrittenRecord {
    const t = this.topics.get(topic)
    if (!t) throw Object.assign(new Error(`This server does not host this topic-partition: ${topic}`), { type: 'UNKNOWN_TOPIC_OR_PARTITION' })
    const partition = message.partition ?? 0
    const log = t.partitions[partition]
    if (!log) throw new Error(`${topic} has no partition ${partition}`)
    const offset = String(log.length)
    const headers: IHeaders = {}
    for (const [name, value] of Object.entries(message.headers ?? {})) {
      if (value === undefined) continue
      headers[name] = Array.isArray(value) ? value.map((v) => Buffer.from(v)) : Buffer.from(value)
    }
    log.push({
      topic,
      partition,
      offset,
      key: message.key === null || message.key === undefined ? null : Buffer.from(message.key),
      value: message.value === null || message.value === undefined ? null : Buffer.from(message.value),
      headers,
      timestamp: message.timestamp ?? String(timestamp),
    })
    return { topic, partition, offset }
  }

  records(topic: string, partition?: number): LogRecord[] {
    const t = this.topics.get(topic)
    if (!t) return []
    return partition === undefined ? t.partitions.flat() : (t.partitions[partition] ?? [])
  }

  commit(groupId: string, topic: string, partition: number, offset: bigint): void {
    const topics = this.commits.get(groupId) ?? new Map<string, Map<number, bigint>>()
    const partitions = topics.get(topic) ?? new Map<number, bigint>()
    partitions.set(partition, offset)
    topics.set(topic, partitions)
    this.commits.set(groupId, topics)
  }

  // ---- TopicLog

  async bounds(topic: string): Promise<Map<number, PartitionBounds> | undefined> {
    this.calls.push(`bounds ${topic}`)
    const t = this.topics.get(topic)
    if (!t) return undefined
    return new Map(t.partitions.map((log, partition) => [partition, { low: t.low[partition] ?? 0n, high: BigInt(log.length) }]))
  }

  async offsetsAt(topic: string, timestampMs: number): Promise<Map<number, bigint>> {
    const t = this.topics.get(topic)
    const out = new Map<number, bigint>()
    t?.partitions.forEach((log, partition) => {
      const found = log.find((record) => Number(record.timestamp) >= timestampMs)
      out.set(partition, found ? BigInt(found.offset) : BigInt(log.length))
    })
    return out
  }

  async committedOffsets(groupId: string, topic: string): Promise<Map<number, bigint>> {
    return new Map(this.commits.get(groupId)?.get(topic) ?? [])
  }

  async read(ranges: readonly PartitionRange[], onRecord: (record: LogRecord) => void): Promise<RangeOutcome[]> {
    this.calls.push(`read ${ranges.map((r) => `${r.topic}/${r.partition}[${r.from},${r.to})`).join(' ')}`)
    return ranges.map((range) => {
      const log = this.topics.get(range.topic)?.partitions[range.partition] ?? []
      for (const record of log) {
        const offset = BigInt(record.offset)
        if (offset >= range.from && offset < range.to) onRecord(record)
      }
      return { ...range, reached: range.to > range.from ? range.to : range.from, complete: true }
    })
  }

  // ---- TopicWriter

  private takeFailure(): void {
    if (this.failNext !== undefined) {
      const failure = this.failNext
      this.failNext = undefined
      // eslint-disable-next-line @typescript-eslint/only-throw-error -- brokers' errors reach us as any shape
      throw failure
    }
  }

  async send(batch: TopicMessages): Promise<WrittenRecord[]> {
    this.calls.push(`send ${batch.topic}`)
    this.takeFailure()
    return batch.messages.map((message) => this.append(batch.topic, message))
  }

  async createTopic(spec: { topic: string; partitions: number; compact: boolean }): Promise<void> {
    this.calls.push(`createTopic ${spec.topic}`)
    this.createTopicSync(spec.topic, spec.partitions, spec.compact)
  }

  async transactional(transactionalId: string): Promise<TransactionalWriter> {
    const generation = (this.generations.get(transactionalId) ?? 0) + 1
    this.generations.set(transactionalId, generation)
    this.calls.push(`claim ${transactionalId}`)
    return {
      commit: async (batches) => {
        if (this.generations.get(transactionalId) !== generation) {
          throw Object.assign(new Error('Producer attempted an operation with an old epoch'), { name: 'KafkaJSProtocolError', type: 'INVALID_PRODUCER_EPOCH' })
        }
        this.calls.push(`commit ${batches.map((b) => b.topic).join(' + ')}`)
        this.takeFailure()
        for (const batch of batches) if (!this.topics.has(batch.topic)) throw new Error(`unknown topic ${batch.topic}`)
        return batches.flatMap((batch) => batch.messages.map((message) => this.append(batch.topic, message)))
      },
      close: async () => {},
    }
  }

  async close(): Promise<void> {}
}

import { Partitioners, type Kafka, type Producer, type RecordMetadata } from 'kafkajs'
import { KafkaTopicAdmin, noopLogger, type Logger } from '@detour/core'
import type { TopicMessages, TopicWriter, TransactionalWriter, WrittenRecord } from './topic-log.js'

/**
 * Where each record of a batch landed. kafkajs answers one `baseOffset` per partition; the records of a
 * partition follow it in the order they were given.
 */
export function landedAt(batch: TopicMessages, metadata: readonly RecordMetadata[]): WrittenRecord[] {
  const next = new Map<number, bigint>()
  for (const entry of metadata) {
    if (entry.topicName === batch.topic && entry.baseOffset !== undefined) next.set(entry.partition, BigInt(entry.baseOffset))
  }
  return batch.messages.map((message) => {
    const partition = message.partition ?? metadata.find((entry) => entry.topicName === batch.topic)?.partition ?? 0
    const offset = next.get(partition) ?? -1n
    next.set(partition, offset + 1n)
    return { topic: batch.topic, partition, offset: offset.toString() }
  })
}

/** {@link TopicWriter} over kafkajs: an idempotent producer (acks=all), and transactional ones on demand. */
export class KafkaTopicWriter implements TopicWriter {
  private producer: Producer | undefined
  private connecting: Promise<Producer> | undefined
  private readonly logger: Logger

  constructor(
    private readonly kafka: Kafka,
    logger: Logger = noopLogger,
  ) {
    this.logger = logger
  }

  private connected(): Promise<Producer> {
    this.connecting ??= (async () => {
      const producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner })
      await producer.connect()
      this.producer = producer
      return producer
    })()
    return this.connecting
  }

  async send(batch: TopicMessages): Promise<WrittenRecord[]> {
    const producer = await this.connected()
    const metadata = await producer.send({ topic: batch.topic, acks: -1, messages: [...batch.messages] })
    return landedAt(batch, metadata)
  }

  async createTopic(spec: { topic: string; partitions: number; compact: boolean }): Promise<void> {
    await new KafkaTopicAdmin(this.kafka).createTopic(spec)
  }

  async transactional(transactionalId: string): Promise<TransactionalWriter> {
    const producer = this.kafka.producer({
      transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      // Every record names its partition; the choice only silences kafkajs' warning about its default.
      createPartitioner: Partitioners.DefaultPartitioner,
    })
    await producer.connect()
    try {
      // kafkajs initialises the transactional id on the first transaction(): this is the fencing step.
      const claim = await producer.transaction()
      await claim.abort()
    } catch (error) {
      await producer.disconnect().catch(() => undefined)
      throw error
    }
    return new KafkaTransactionalWriter(producer, this.logger)
  }

  async close(): Promise<void> {
    const producer = this.producer
    this.producer = undefined
    this.connecting = undefined
    await producer?.disconnect()
  }
}

class KafkaTransactionalWriter implements TransactionalWriter {
  constructor(
    private readonly producer: Producer,
    private readonly logger: Logger,
  ) {}

  async commit(batches: readonly TopicMessages[]): Promise<WrittenRecord[]> {
    const transaction = await this.producer.transaction()
    let written: WrittenRecord[]
    try {
      const metadata = await transaction.sendBatch({ acks: -1, topicMessages: batches.map((batch) => ({ topic: batch.topic, messages: [...batch.messages] })) })
      written = batches.flatMap((batch) => landedAt(batch, metadata))
    } catch (error) {
      await transaction.abort().catch((abortError: unknown) => this.logger.warn('Aborting a transaction failed', { error: abortError }))
      throw error
    }
    await transaction.commit()
    return written
  }

  async close(): Promise<void> {
    await this.producer.disconnect()
  }
}

import type { Consumer, EachMessagePayload, Kafka, KafkaMessage, Producer } from 'kafkajs'
import { buildTombstone, decodeRetryRecord, detourTopics, type DetourTopics } from '@detour/core'
import { fastConsumerConfig, randomName, type TestBroker } from '@detour/testkit'
import { createDetour, type Detour, type DetourOptions } from '../index.js'

export interface LogEntry {
  readonly by: string
  readonly topic: string
  readonly partition: number
  readonly key: string | null
  readonly value: string | null
  readonly offset: string
}

export interface AppHandle {
  readonly name: string
  readonly detour: Detour
  readonly consumer: Consumer
  stop(): Promise<void>
}

export type TestHandler = (payload: EachMessagePayload) => Promise<void>

export async function setupTopics(broker: TestBroker, partitions: number): Promise<{ topic: string; groupId: string; topics: DetourTopics }> {
  const topic = randomName('src')
  const groupId = randomName('app')
  await broker.createTopic(topic, partitions)
  return { topic, groupId, topics: detourTopics(topic, groupId) }
}

/** Starts a consumer wrapped by Detour, the way an application would. */
export async function startApp(
  broker: TestBroker,
  kafka: Kafka,
  settings: {
    name?: string
    topic: string
    groupId: string
    handler: TestHandler
    detour?: Partial<DetourOptions>
    autoCommit?: boolean
    /** Run the handler through `detour.eachBatch` instead of `detour.eachMessage`. */
    batches?: boolean
  },
): Promise<AppHandle> {
  const consumer = kafka.consumer({ groupId: settings.groupId, ...broker.consumerTiming })
  const detour = createDetour({
    kafka,
    consumer,
    groupId: settings.groupId,
    topics: [settings.topic],
    topicAdmin: broker.topicAdmin,
    followerConfig: { maxWaitTimeInMs: 100 },
    handOff: broker.capabilities.transactions ? 'transactional' : 'sequential',
    ...settings.detour,
  })
  await detour.start()
  await consumer.connect()
  await consumer.subscribe({ topic: settings.topic, fromBeginning: true })
  await consumer.run(
    settings.batches
      ? { autoCommit: settings.autoCommit ?? true, eachBatch: detour.eachBatch(settings.handler) }
      : { autoCommit: settings.autoCommit ?? true, eachMessage: detour.eachMessage(settings.handler) },
  )
  let stopped = false
  return {
    name: settings.name ?? 'app',
    detour,
    consumer,
    async stop() {
      if (stopped) return
      stopped = true
      await consumer.disconnect()
      await detour.stop()
    },
  }
}

export function entry(by: string, payload: { topic: string; partition: number; message: KafkaMessage }): LogEntry {
  return {
    by,
    topic: payload.topic,
    partition: payload.partition,
    key: payload.message.key?.toString() ?? null,
    value: payload.message.value?.toString() ?? null,
    offset: payload.message.offset,
  }
}

/**
 * Stands in for the retry worker: reads the retry topic in order, calls `handle` (which may record the
 * message), then writes the tombstone that releases the id — strictly one record at a time.
 */
export async function startFakeWorker(
  kafka: Kafka,
  topics: DetourTopics,
  handle: (payload: EachMessagePayload) => Promise<boolean> | boolean = () => true,
): Promise<{ tombstones: string[]; stop(): Promise<void> }> {
  const producer: Producer = kafka.producer()
  await producer.connect()
  const consumer = kafka.consumer({ groupId: randomName('fake-worker'), ...fastConsumerConfig })
  const tombstones: string[] = []
  await consumer.connect()
  await consumer.subscribe({ topic: topics.retry, fromBeginning: true })
  await consumer.run({
    eachMessage: async (payload) => {
      const envelope = decodeRetryRecord(payload.message)
      const ok = await handle({ ...payload, topic: envelope.source.topic, partition: envelope.source.partition })
      if (!ok) return
      await producer.send({
        topic: topics.redirect,
        messages: [buildTombstone({ partition: envelope.source.partition, id: envelope.id, groupKey: envelope.groupKey, consumerGroup: envelope.consumerGroup })],
      })
      tombstones.push(envelope.id)
    },
  })
  return {
    tombstones,
    async stop() {
      await consumer.disconnect()
      await producer.disconnect()
    },
  }
}

export async function produce(kafka: Kafka, topic: string, messages: Array<{ key: string | Buffer | null; value: string | Buffer | null; partition?: number; headers?: Record<string, string | Buffer> }>): Promise<void> {
  const producer = kafka.producer()
  await producer.connect()
  await producer.send({ topic, messages: messages.map((m) => ({ partition: 0, ...m })) })
  await producer.disconnect()
}

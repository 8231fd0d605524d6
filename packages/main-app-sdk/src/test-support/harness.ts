import type { Consumer, ConsumerConfig, EachMessagePayload, Kafka, KafkaMessage, Producer } from 'kafkajs'
import { buildTombstone, decodeRetryRecord, detourTopics, type DetourTopics } from '@detour/core'
import { embeddedBrokerGap, randomName, type TestBroker } from '@detour/testkit'
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
  /** The current instance's Detour and consumer (see `startApp`). */
  readonly detour: Detour
  readonly consumer: Consumer
  /** Why the instance was replaced, once per restart after a known gap of the embedded broker. */
  readonly restarted: readonly string[]
  stop(): Promise<void>
}

export type TestHandler = (payload: EachMessagePayload) => Promise<void>

export async function setupTopics(broker: TestBroker, partitions: number): Promise<{ topic: string; groupId: string; topics: DetourTopics }> {
  const topic = randomName('src')
  const groupId = randomName('app')
  await broker.createTopic(topic, partitions)
  return { topic, groupId, topics: detourTopics(topic, groupId) }
}

interface AppSettings {
  name?: string
  topic: string
  groupId: string
  handler: TestHandler
  detour?: Partial<DetourOptions>
  autoCommit?: boolean
  /** Run the handler through `detour.eachBatch` instead of `detour.eachMessage`. */
  batches?: boolean
  /** Consumer settings over the broker's test timing (`rebalanceTimeout`, ...). */
  consumer?: Partial<ConsumerConfig>
}

/**
 * Starts a consumer wrapped by Detour, the way an application would. On the embedded broker, an instance
 * whose consumer crashes on a known gap of that broker (see `embeddedBrokerGap`) is replaced by a fresh one,
 * as an orchestrator would restart the process (listed in `restarted`); `detour` and `consumer` then name the
 * new instance. Any other crash is left to the test.
 */
export async function startApp(broker: TestBroker, kafka: Kafka, settings: AppSettings): Promise<AppHandle> {
  const name = settings.name ?? 'app'
  let stopped = false
  let restartError: Error | undefined
  const restarted: string[] = []
  // Restarts run one after the other, each after the start it replaces.
  let restarts: Promise<void> = Promise.resolve()
  const start = async (): Promise<{ detour: Detour; consumer: Consumer }> => {
    const consumer = kafka.consumer({ groupId: settings.groupId, ...broker.consumerTiming, ...settings.consumer })
    const detour = createDetour({
      kafka,
      consumer,
      groupId: settings.groupId,
      topics: [settings.topic],
      topicAdmin: broker.topicAdmin,
      followerConfig: { maxWaitTimeInMs: 100 },
      sessionTimeoutMs: broker.consumerTiming.sessionTimeout,
      // The embedded broker's transactions are not faithful: hand-offs are sequential there.
      handOff: broker.capabilities.transactions ? 'transactional' : 'sequential',
      ...settings.detour,
    })
    consumer.on(consumer.events.CRASH, (event) => {
      const gap = embeddedBrokerGap(broker, event.payload.error)
      if (stopped || event.payload.restart || gap === undefined) return
      restarted.push(gap)
      restarts = restarts
        .then(async () => {
          await detour.stop()
          if (!stopped) current = await start()
        })
        .catch((error: unknown) => {
          restartError ??= error instanceof Error ? error : new Error(`test app ${name} could not restart`, { cause: error })
        })
    })
    await detour.start()
    await consumer.connect()
    await consumer.subscribe({ topic: settings.topic, fromBeginning: true })
    await consumer.run(
      settings.batches
        ? { autoCommit: settings.autoCommit ?? true, eachBatch: detour.eachBatch(settings.handler) }
        : { autoCommit: settings.autoCommit ?? true, eachMessage: detour.eachMessage(settings.handler) },
    )
    return { detour, consumer }
  }
  const first = start()
  restarts = first.then(
    () => undefined,
    () => undefined,
  )
  let current = await first
  return {
    name,
    restarted,
    get detour() {
      return current.detour
    },
    get consumer() {
      return current.consumer
    },
    async stop() {
      if (stopped) return
      stopped = true
      await restarts
      await current.consumer.disconnect()
      await current.detour.stop()
      if (restartError !== undefined) throw restartError
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
  broker: TestBroker,
  kafka: Kafka,
  topics: DetourTopics,
  handle: (payload: EachMessagePayload) => Promise<boolean> | boolean = () => true,
): Promise<{ tombstones: string[]; stop(): Promise<void> }> {
  const producer: Producer = kafka.producer()
  await producer.connect()
  const consumer = kafka.consumer({ groupId: randomName('fake-worker'), ...broker.consumerTiming })
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

import { randomBytes } from 'node:crypto'
import { Kafka, logLevel, type ConsumerConfig, type KafkaMessage, type KafkaConfig } from 'kafkajs'
import type { TestBroker } from './types.js'

/** A unique, valid topic or group name. */
export function randomName(prefix = 'detour-test'): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`
}

/** A kafkajs client for a test broker, quiet unless `KAFKAJS_LOG_LEVEL` says otherwise. */
export function testKafka(broker: Pick<TestBroker, 'brokers'>, config: Partial<KafkaConfig> = {}): Kafka {
  const level = process.env.KAFKAJS_LOG_LEVEL
  return new Kafka({
    clientId: randomName('client'),
    brokers: broker.brokers,
    logLevel: level ? (logLevel[level.toUpperCase() as keyof typeof logLevel] ?? logLevel.NOTHING) : logLevel.NOTHING,
    retry: { initialRetryTime: 100, retries: 8 },
    ...config,
  })
}

/**
 * Consumer settings that suit the embedded broker (and are harmless on a real one): fetch returns
 * after 100 ms (the mock never returns a fetch early), short session: the mock holds a rebalance with existing members for sessionTimeout - 1000 ms, and
 * kafkajs cannot parse the mock's LeaveGroup answer, so a departed member is noticed only at session timeout.
 */
export const fastConsumerConfig = {
  maxWaitTimeInMs: 100,
  sessionTimeout: 4000,
  rebalanceTimeout: 4000,
  heartbeatInterval: 300,
} as const satisfies Partial<ConsumerConfig>

export interface CollectedMessage {
  readonly topic: string
  readonly partition: number
  readonly message: KafkaMessage
}

/**
 * Reads a topic from the beginning with a throwaway group until `done(collected)` is true or the
 * time runs out (then rejects, listing how many arrived).
 */
export async function collectMessages(
  kafka: Kafka,
  topic: string,
  done: (collected: CollectedMessage[]) => boolean,
  timeoutMs = 20_000,
): Promise<CollectedMessage[]> {
  const consumer = kafka.consumer({ groupId: randomName('collector'), ...fastConsumerConfig })
  const collected: CollectedMessage[] = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topic, fromBeginning: true })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`collectMessages(${topic}): timed out after ${timeoutMs} ms with ${collected.length} messages`)),
        timeoutMs,
      )
      const check = (): void => {
        if (done(collected)) {
          clearTimeout(timer)
          resolve()
        }
      }
      consumer
        .run({
          eachMessage: async ({ topic: t, partition, message }) => {
            collected.push({ topic: t, partition, message })
            check()
          },
        })
        .then(check, (error: unknown) => {
          clearTimeout(timer)
          reject(error instanceof Error ? error : new Error(String(error)))
        })
    })
  } finally {
    await consumer.disconnect()
  }
  return collected
}

/** Polls `predicate` until true; rejects with `what` after `timeoutMs`. */
export async function waitFor(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000, intervalMs = 25): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await predicate()) return
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

import { randomBytes } from 'node:crypto'
import { Kafka, logLevel, type KafkaMessage, type KafkaConfig } from 'kafkajs'
import type { ConsumerTiming, TestBroker } from './types.js'

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
 * Consumer settings for tests: fetches return after 100 ms (the embedded broker never returns a fetch
 * early) and short sessions, because a rebalance waits for the session timeout of departed members (and
 * the embedded broker holds every rebalance with existing members for sessionTimeout - 1000 ms). An
 * existing cluster (`KAFKA_BROKERS`) keeps Kafka's default minimum session of 6 s; the brokers the test
 * kit runs allow 1 s. Prefer `broker.consumerTiming` where the broker is at hand.
 */
export const fastConsumerConfig: ConsumerTiming =
  process.env.KAFKA_BROKERS && !process.env.DETOUR_TEST_BROKER
    ? { maxWaitTimeInMs: 100, sessionTimeout: 6000, rebalanceTimeout: 6000, heartbeatInterval: 500 }
    : { maxWaitTimeInMs: 100, sessionTimeout: 4000, rebalanceTimeout: 4000, heartbeatInterval: 300 }

/**
 * Consumer timing for a test in which a member leaves a group and another joins it (a restart, a second
 * instance). A real broker rebalances as soon as the leaving member says so. The embedded broker notices a
 * departed member only when its session expires (kafkajs cannot parse the mock's LeaveGroup answer) and
 * holds every rebalance with existing members for sessionTimeout - 1000 ms: there, sessions are cut to 2 s.
 */
export function rejoinConsumerTiming(broker: Pick<TestBroker, 'mode' | 'consumerTiming'>): ConsumerTiming {
  if (broker.mode !== 'embedded') return broker.consumerTiming
  return { ...broker.consumerTiming, sessionTimeout: 2000, rebalanceTimeout: 2000, heartbeatInterval: 300 }
}

/**
 * Says whether a kafkajs consumer crashed because of a known gap of the embedded broker rather than because
 * of the code under test: returns what happened, or `undefined`. librdkafka's mock completes a group's sync
 * as soon as the leader's SyncGroup arrives (it carries every member's assignment) and answers a SyncGroup
 * that another member sends afterwards with INVALID_REQUEST, where Kafka returns the assignment. kafkajs
 * takes that as fatal: a member that syncs after its leader (a race, lost more often on a busy machine)
 * crashes for good. Tests restart such a member, as an orchestrator would restart its process.
 */
export function embeddedBrokerGap(broker: Pick<TestBroker, 'mode'>, error: unknown): string | undefined {
  if (broker.mode !== 'embedded') return undefined
  type Chain = { type?: unknown; stack?: unknown; cause?: Chain; originalError?: Chain }
  let e = error as Chain | undefined
  for (let depth = 0; e && depth < 10; depth++, e = e.cause ?? e.originalError) {
    if (e.type === 'INVALID_REQUEST' && typeof e.stack === 'string' && /syncGroup/i.test(e.stack)) {
      return 'the embedded broker answered a late SyncGroup with INVALID_REQUEST (Kafka returns the assignment)'
    }
  }
  return undefined
}

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

/**
 * A suite's title, with the reason it is skipped when it is: the reporter shows why (no `console.log` at
 * module level). Use with `describe.skipIf(reason !== undefined)(skippedBecause(title, reason), ...)`.
 */
export function skippedBecause(title: string, reason: string | undefined): string {
  return reason === undefined ? title : `${title} [skipped: ${reason}]`
}

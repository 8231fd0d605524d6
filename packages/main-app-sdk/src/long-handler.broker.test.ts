import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { EachMessagePayload, Kafka } from 'kafkajs'
import { resolveBrokerMode, skippedBecause, startBroker, testKafka, waitFor, type TestBroker } from '@detour/testkit'
import { entry, produce, setupTopics, startApp, type AppHandle, type LogEntry } from './test-support/harness.js'

const choice = await resolveBrokerMode({ needs: ['transactions'] })

/**
 * A handler that runs longer than the session timeout — its own write retried through a broker failover
 * takes 9 s and more — must not cost its member the partition while it runs: kafkajs heartbeats only
 * between messages, so the coordinator would evict the member and hand the partition to another one, which
 * processes later messages of the key before the slow handler's effect lands (the stale replay a chaos soak
 * on real Kafka found). Detour heartbeats for a running handler (for at most `maxPollIntervalMs`), so a
 * rebalance waits for the member to finish, up to the consumer's `rebalanceTimeout`.
 */
describe.skipIf(choice.unavailable !== undefined)(skippedBecause('a handler longer than the session timeout (real Kafka group coordinator)', choice.unavailable), () => {
  let broker: TestBroker
  let kafka: Kafka

  beforeAll(async () => {
    broker = await startBroker({ needs: ['transactions'] })
    kafka = testKafka(broker)
  })
  afterAll(async () => {
    await broker.stop()
  })

  /** Instance 1 is inside A's handler for `handlerMs`; instance 2 joins meanwhile. Returns the processing log, in order. */
  async function slowHandlerWhileAnotherJoins(maxPollIntervalMs: number, handlerMs: number): Promise<LogEntry[]> {
    const { topic, groupId } = await setupTopics(broker, 1)
    const log: LogEntry[] = []
    let aEntered = false
    const timing = { sessionTimeout: 6000, heartbeatInterval: 500, rebalanceTimeout: 30_000 }
    const first = await startApp(broker, kafka, {
      name: 'first',
      topic,
      groupId,
      consumer: timing,
      detour: { sessionTimeoutMs: timing.sessionTimeout, maxPollIntervalMs },
      handler: async (payload: EachMessagePayload) => {
        if (payload.message.value?.toString() === 'A' && !aEntered) {
          aEntered = true
          await new Promise((resolve) => setTimeout(resolve, handlerMs))
        }
        log.push(entry('first', payload))
      },
    })
    const apps: AppHandle[] = [first]
    try {
      await produce(kafka, topic, [
        { key: 'k1', value: 'A' },
        { key: 'k1', value: 'B' },
      ])
      await waitFor(() => aEntered, 'instance 1 inside A’s handler', 30_000)
      const second = await startApp(broker, kafka, { name: 'second', topic, groupId, consumer: timing, detour: { sessionTimeoutMs: timing.sessionTimeout }, handler: async (payload) => void log.push(entry('second', payload)) })
      apps.push(second)
      await waitFor(() => log.some((e) => e.value === 'B'), 'B to be processed', 60_000)
      await new Promise((resolve) => setTimeout(resolve, 1500))
      return log
    } finally {
      for (const app of apps.reverse()) await app.stop()
    }
  }

  it('keeps the partition while the handler runs past the session timeout: the rebalance waits, A is done before anyone processes B', async () => {
    const log = await slowHandlerWhileAnotherJoins(300_000, 10_000)
    const a = log.findIndex((e) => e.by === 'first' && e.value === 'A')
    expect(a, JSON.stringify(log)).toBeGreaterThanOrEqual(0)
    // Nothing was processed by anyone before the slow handler finished A: the new member got no partition mid-handler.
    expect(a, JSON.stringify(log)).toBe(0)
    const b = log.findIndex((e) => e.value === 'B')
    expect(b, JSON.stringify(log)).toBeGreaterThan(a)
  }, 120_000)

  it('stops covering a handler stuck past maxPollIntervalMs: the session expires and the partition moves on (as kafkajs alone)', async () => {
    const log = await slowHandlerWhileAnotherJoins(1000, 15_000)
    // Instance 2 processed A and B while instance 1 was still stuck in A: its late A lands last.
    const byOrder = log.map((e) => `${e.by}:${e.value}`)
    expect(byOrder.indexOf('second:B'), JSON.stringify(byOrder)).toBeGreaterThanOrEqual(0)
    expect(byOrder.indexOf('first:A') === -1 || byOrder.indexOf('first:A') > byOrder.indexOf('second:B'), JSON.stringify(byOrder)).toBe(true)
  }, 120_000)
})

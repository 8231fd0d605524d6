import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { logLevel, type Admin, type Kafka, type Producer } from 'kafkajs'
import { noopLogger } from '@detour/core'
import { ApiKeys, KafkaErrorCodes, sleep, startBroker, testKafka, waitFor, type TestBroker } from '@detour/testkit'
import { committedOffset, createScenario, recordingHandler, redirect, testWorker } from '../test-support/harness.js'
import type { RetryWorker } from './retry-worker.js'

// Heartbeat errors and delayed LeaveGroup answers are injected by the broker: a fault-injection broker of its
// own, which also keeps the per-broker entries left behind on the brokers that are not the group coordinator
// away from other suites.
describe('stopping while the consumer has crashed', () => {
  let broker: TestBroker
  let kafka: Kafka
  let producer: Producer
  let admin: Admin
  const workers: RetryWorker[] = []

  beforeAll(async () => {
    broker = await startBroker({ needs: ['fault-injection'] })
    kafka = testKafka(broker)
    producer = kafka.producer()
    admin = kafka.admin()
    await Promise.all([producer.connect(), admin.connect()])
  })

  // The tests stop their worker themselves; this only cleans up after a failed assertion.
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((worker) => worker.stop({ timeoutMs: 1000 })))
  })

  afterAll(async () => {
    await Promise.all([producer?.disconnect(), admin?.disconnect()])
    await broker?.stop()
  })

  const restartMessage = 'Retry consumer crashed; kafkajs restarts it'

  /** a0 resolved and committed, b1 running in the handler until `open()`; a worker that logs into `warnings`. */
  async function crashScenario(kafkaClient: Kafka): Promise<{
    worker: RetryWorker
    warnings: string[]
    open: () => void
    ids: string[]
    groupId: string
    retryTopic: string
    calls: () => string[]
  }> {
    const scenario = await createScenario(broker)
    const ids = await redirect(producer, scenario, [
      { offset: 0, key: 'a' },
      { offset: 1, key: 'b' },
    ])
    let open: () => void = () => {}
    const recorder = recordingHandler((call) => {
      if (call.id === ids[1]) return new Promise<void>((resolve) => (open = resolve))
    })
    // Few kafkajs retries, so that failing heartbeats soon crash the consumer.
    const consumerConfig = { ...broker.consumerTiming, retry: { retries: 2, initialRetryTime: 100 } }
    const warnings: string[] = []
    const worker = testWorker(kafkaClient, broker, scenario, {
      handler: recorder.handler,
      consumerConfig,
      logger: { ...noopLogger, warn: (message) => void warnings.push(message) },
    })
    workers.push(worker)
    await worker.start()
    await waitFor(async () => (await committedOffset(admin, worker.options.groupId, scenario.topics.retry)) === '1', 'a0 to be committed', 10_000)
    await waitFor(() => recorder.calls.length === 2, 'b1 to start', 5000)
    return { worker, warnings, open: () => open(), ids, groupId: worker.options.groupId, retryTopic: scenario.topics.retry, calls: () => recorder.calls.map((c) => c.id) }
  }

  async function crashThroughHeartbeats(crashed: () => boolean): Promise<void> {
    broker.injectErrors(ApiKeys.Heartbeat, Array.from({ length: 100 }, () => KafkaErrorCodes.REQUEST_TIMED_OUT))
    try {
      await waitFor(crashed, 'the consumer to crash', 20_000)
    } finally {
      broker.clearErrors(ApiKeys.Heartbeat)
    }
  }

  it('waits for the consumer kafkajs is restarting, commits what was resolved meanwhile, and leaves no member behind', async () => {
    const { worker, warnings, open, ids, groupId, retryTopic, calls } = await crashScenario(kafka)
    await crashThroughHeartbeats(() => warnings.includes(restartMessage))
    // kafkajs rejoins (the embedded broker waits for the old member first); b1 resolves meanwhile, and the worker stops.
    const resolved = new Promise<void>((resolve) => worker.once('resolved', () => resolve()))
    open()
    await resolved
    expect(worker.ready).toBe(false)
    const result = await worker.stop({ timeoutMs: 15_000 })
    expect(result).toEqual({ clean: true, abandoned: 0 })
    expect(await committedOffset(admin, groupId, retryTopic)).toBe('2')
    expect(calls()).toEqual(ids)
    // Nothing of the consumer comes back after the stop: no restart, no join.
    let rejoined = false
    worker.on('rebalanced', () => (rejoined = true))
    await sleep(1500)
    expect(warnings.filter((m) => m === restartMessage)).toHaveLength(1)
    expect(rejoined).toBe(false)
  })

  it('reports a stop as unclean when kafkajs dropped its final commit, and kafkajs does not restart the consumer afterwards', async () => {
    // kafkajs logs the crash before it takes the consumer down (and emits CRASH only afterwards).
    let crashing = false
    const logCreator = () => (entry: { log: { message: string } }) => {
      if (entry.log.message.startsWith('Crash: ')) crashing = true
    }
    const slowLeave = testKafka(broker, { logLevel: logLevel.ERROR, logCreator })
    const { worker, warnings, open, ids, groupId, retryTopic, calls } = await crashScenario(slowLeave)
    // Taking the consumer down ends with a LeaveGroup: delay its answer to hold kafkajs there.
    for (const id of broker.brokerIds) broker.injectBrokerErrors(id, ApiKeys.LeaveGroup, [{ code: KafkaErrorCodes.NONE, delayMs: 3000 }])
    try {
      await crashThroughHeartbeats(() => crashing)
      const resolved = new Promise<void>((resolve) => worker.once('resolved', () => resolve()))
      open()
      await resolved
      // The worker has not heard of the crash yet; kafkajs' commitOffsets() now returns without committing.
      expect(warnings).not.toContain(restartMessage)
      const result = await worker.stop({ timeoutMs: 2000 })
      const committed = await committedOffset(admin, groupId, retryTopic)
      // Either b1's offset was committed and the stop is clean, or it was not and the stop says so.
      expect({ clean: result.clean, committed }).toEqual(committed === '2' ? { clean: true, committed: '2' } : { clean: false, committed: '1' })
      expect(calls()).toEqual(ids)
      // kafkajs finishes taking the consumer down after the stop: it must not restart it.
      let rejoined = false
      worker.on('rebalanced', () => (rejoined = true))
      await sleep(1500)
      expect(warnings).not.toContain(restartMessage)
      expect(rejoined).toBe(false)
    } finally {
      broker.clearErrors(ApiKeys.LeaveGroup)
    }
  })
})

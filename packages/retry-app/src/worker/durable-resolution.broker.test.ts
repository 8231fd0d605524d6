import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { Admin, Kafka, Producer } from 'kafkajs'
import { UnprocessableMessageError } from '@detour/core'
import { sleep, startBroker, testKafka, waitFor, type TestBroker } from '@detour/testkit'
import {
  committedOffset,
  committedWithMetadata,
  createScenario,
  logStartOffset,
  metricValue,
  recordingHandler,
  redirect,
  testWorker,
  tombstone,
} from '../test-support/harness.js'
import type { RetryWorker } from './retry-worker.js'
import type { ResolvedEvent } from './types.js'

describe('durable resolution, retention and events', () => {
  let broker: TestBroker
  let kafka: Kafka
  let producer: Producer
  let admin: Admin
  const workers: RetryWorker[] = []

  beforeAll(async () => {
    broker = await startBroker()
    kafka = testKafka(broker)
    producer = kafka.producer()
    admin = kafka.admin()
    await Promise.all([producer.connect(), admin.connect()])
  })

  afterEach(async () => {
    await Promise.all(workers.splice(0).map((worker) => worker.stop({ timeoutMs: 1000 })))
  })

  afterAll(async () => {
    await Promise.all([producer?.disconnect(), admin?.disconnect()])
    await broker?.stop()
  })

  function track(worker: RetryWorker): RetryWorker {
    workers.push(worker)
    return worker
  }

  it('a restart never runs a record again that was resolved behind a held one (no stale replay)', async () => {
    const scenario = await createScenario(broker)
    // Retry offsets: h0 (held: pins the commit at 0), m1 (resolved), then m3 of m1's key.
    const [h0, m1] = await redirect(producer, scenario, [
      { offset: 0, key: 'h' },
      { offset: 1, key: 'k' },
    ])
    // What happened to key k, in order, across the worker and the main app.
    const history: string[] = []
    const failing = (id: string) => id === h0
    const first = recordingHandler((call) => {
      if (failing(call.id)) throw new Error('downstream rejects h0')
      history.push(`worker:${call.id}`)
    })
    const one = testWorker(kafka, broker, scenario, { handler: first.handler, maxAttempts: 1 })
    await one.start()
    await waitFor(() => one.heldGroups().length === 1 && history.length === 1, 'h0 held and m1 resolved', 15_000)
    // m1's tombstone released key k in the main app, which then processed m2 of key k itself.
    history.push('main-app:m2')
    await sleep(300)
    expect(await committedOffset(admin, one.options.workerGroupId, scenario.topics.retry)).toBe('0')
    expect(await one.stop()).toEqual({ clean: true, abandoned: 0 })

    // The restart reads from the held record again: h0 is attempted again, m1 must not be.
    const second = recordingHandler((call) => {
      if (failing(call.id)) throw new Error('downstream rejects h0')
      history.push(`worker:${call.id}`)
    })
    const resolved: ResolvedEvent[] = []
    const two = track(testWorker(kafka, broker, scenario, { handler: second.handler, maxAttempts: 1 }))
    two.on('resolved', (event) => resolved.push(event))
    await two.start()
    await waitFor(() => two.heldGroups().length === 1 && resolved.length === 1, 'h0 held again and m1 skipped', 15_000)
    await sleep(300)
    expect(second.calls.map((c) => c.id)).toEqual([h0])
    expect(resolved).toEqual([expect.objectContaining({ kind: 'already-resolved', id: m1, retryOffset: '1', attempts: 0 })])
    expect(history).toEqual([`worker:${m1}`, 'main-app:m2'])
    expect(await metricValue(two.registry, 'detour_retry_duplicates_skipped_total')).toBe(1)
  })

  it('skips a record whose id was released before the worker reached it (an operator, another owner)', async () => {
    const scenario = await createScenario(broker)
    const [x0, y1] = await redirect(producer, scenario, [
      { offset: 0, key: 'x' },
      { offset: 1, key: 'y' },
    ])
    await tombstone(producer, scenario, [{ offset: 0, key: 'x' }])
    const recorder = recordingHandler()
    const worker = track(testWorker(kafka, broker, scenario, { handler: recorder.handler }))
    await worker.start()
    await waitFor(() => recorder.calls.length === 1, 'y1', 15_000)
    await waitFor(async () => (await committedOffset(admin, worker.options.workerGroupId, scenario.topics.retry)) === '2', 'the commit', 5000)
    expect(recorder.calls.map((c) => c.id)).toEqual([y1])
    expect(x0).toBeDefined()
  })

  it('a listener that throws on dead-lettered neither leaves its group stuck nor pins the commit', async () => {
    const scenario = await createScenario(broker)
    const [bad, next] = await redirect(producer, scenario, [
      { offset: 1, key: 'k' },
      { offset: 2, key: 'k' },
    ])
    const recorder = recordingHandler((call) => {
      if (call.id === bad) throw new UnprocessableMessageError('bad record')
    })
    const worker = track(testWorker(kafka, broker, scenario, { handler: recorder.handler }))
    const errors: Error[] = []
    worker.on('dead-lettered', () => {
      throw new Error('bug in a dead-lettered listener')
    })
    worker.on('error', (error) => errors.push(error))
    await worker.start()
    await waitFor(() => recorder.calls.length === 2, 'the next record of the group', 15_000)
    expect(recorder.calls.map((c) => c.id)).toEqual([bad, next])
    await waitFor(async () => (await committedOffset(admin, worker.options.workerGroupId, scenario.topics.retry)) === '2', 'the commit past both', 5000)
    expect(errors.map((e) => e.message)).toContain('bug in a dead-lettered listener')
    expect(worker.stats()).toMatchObject({ buffered: 0 })
  })

  it('deletes resolved records from the retry topic after a commit (the topic has unlimited retention)', async () => {
    const scenario = await createScenario(broker)
    await redirect(producer, scenario, [
      { offset: 0, key: 'a' },
      { offset: 1, key: 'b' },
      { offset: 2, key: 'a' },
    ])
    const recorder = recordingHandler()
    const worker = track(testWorker(kafka, broker, scenario, { handler: recorder.handler, purgeIntervalMs: 0 }))
    expect(await logStartOffset(admin, scenario.topics.retry)).toBe('0')
    await worker.start()
    await waitFor(async () => (await committedOffset(admin, worker.options.workerGroupId, scenario.topics.retry)) === '3', 'the commit', 15_000)
    await waitFor(async () => (await logStartOffset(admin, scenario.topics.retry)) === '3', 'the purge up to the committed offset', 10_000)
    // The broker moves the log start before the worker has the answer (and counts the purge).
    await waitFor(async () => (await metricValue(worker.registry, 'detour_retry_purges_total')) >= 1, 'the purge to be counted', 10_000)
    // Records that arrive later are purged too, once resolved and committed.
    await redirect(producer, scenario, [{ offset: 3, key: 'b' }])
    await waitFor(async () => (await logStartOffset(admin, scenario.topics.retry)) === '4', 'the next purge', 10_000)
  })

  it('keeps every record when purging is off', async () => {
    const scenario = await createScenario(broker)
    await redirect(producer, scenario, [{ offset: 0, key: 'a' }])
    const recorder = recordingHandler()
    const worker = track(testWorker(kafka, broker, scenario, { handler: recorder.handler, purgeResolvedRecords: false }))
    await worker.start()
    await waitFor(async () => (await committedOffset(admin, worker.options.workerGroupId, scenario.topics.retry)) === '1', 'the commit', 15_000)
    await sleep(500)
    expect(await logStartOffset(admin, scenario.topics.retry)).toBe('0')
  })

  it('says so loudly when records were deleted before the worker read them', async () => {
    const scenario = await createScenario(broker)
    const [a0] = await redirect(producer, scenario, [
      { offset: 0, key: 'a' },
      { offset: 1, key: 'b' },
      { offset: 2, key: 'c' },
    ])
    // A first worker holds a0: the commit stays at 0.
    const first = recordingHandler((call) => {
      if (call.id === a0) throw new Error('a0 fails')
    })
    const one = testWorker(kafka, broker, scenario, { handler: first.handler, maxAttempts: 1 })
    await one.start()
    await waitFor(() => one.heldGroups().length === 1 && first.calls.length === 3, 'a0 held, the others resolved', 15_000)
    await one.stop()
    expect(await committedOffset(admin, one.options.workerGroupId, scenario.topics.retry)).toBe('0')
    // Someone deletes the first two records (retention changed by hand, another tool).
    await admin.deleteTopicRecords({ topic: scenario.topics.retry, partitions: [{ partition: 0, offset: '2' }] })
    const second = recordingHandler()
    const two = track(testWorker(kafka, broker, scenario, { handler: second.handler }))
    const errors: Error[] = []
    two.on('error', (error) => errors.push(error))
    await two.start()
    await waitFor(() => errors.length > 0, 'the error event', 15_000)
    expect(errors[0]!.message).toMatch(/deleted before the worker read them: .*\/0 was committed at 0 but starts at 2 \(2 records lost\)/)
    expect(await metricValue(two.registry, 'detour_retry_records_deleted_unread_total', { topic: scenario.topics.source })).toBe(2)
    // What is left was resolved already: skipped, not run again.
    await waitFor(async () => (await metricValue(two.registry, 'detour_retry_duplicates_skipped_total')) === 1, 'the last record', 10_000)
    expect(second.calls).toEqual([])
  })

  it('start() is idempotent while starting, rejects after stop(); a stop releases the partition in the commit metadata', async () => {
    const scenario = await createScenario(broker)
    await redirect(producer, scenario, [{ offset: 0, key: 'a' }])
    const recorder = recordingHandler()
    const worker = testWorker(kafka, broker, scenario, { handler: recorder.handler })
    const states: string[] = [worker.state]
    const starting = worker.start()
    states.push(worker.state)
    expect(worker.start()).toBe(starting)
    await starting
    states.push(worker.state)
    expect(worker.start()).toBe(starting)
    await waitFor(() => recorder.calls.length === 1, 'the record', 15_000)
    await waitFor(async () => (await committedOffset(admin, worker.options.workerGroupId, scenario.topics.retry)) === '1', 'the commit', 5000)
    expect(await committedWithMetadata(admin, worker.options.workerGroupId, scenario.topics.retry)).toEqual({
      offset: '1',
      metadata: `detour:owner=${worker.instanceId};state=active`,
    })
    const stopping = worker.stop()
    states.push(worker.state)
    expect(await stopping).toEqual({ clean: true, abandoned: 0 })
    states.push(worker.state)
    expect(states).toEqual(['idle', 'starting', 'running', 'running', 'stopped'])
    expect(await committedWithMetadata(admin, worker.options.workerGroupId, scenario.topics.retry)).toEqual({
      offset: '1',
      metadata: `detour:owner=${worker.instanceId};state=released`,
    })
    await expect(worker.start()).rejects.toThrow(/stopped; create a new one/)
  })
})

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { Admin, Kafka, Producer } from 'kafkajs'
import { UnprocessableMessageError, redirectKey } from '@detour/core'
import { ApiKeys, KafkaErrorCodes, sleep, startBroker, testKafka, waitFor, type TestBroker } from '@detour/testkit'
import {
  committedOffset,
  createScenario,
  header,
  metricValue,
  readRecords,
  recordingHandler,
  redirect,
  retryOnly,
  testWorker,
} from '../test-support/harness.js'
import type { RetryWorker } from './retry-worker.js'

describe('retry worker', () => {
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

  it('keeps order within a group while other groups flow during a long backoff, and never commits past an unresolved record', async () => {
    const scenario = await createScenario(broker)
    // Retry offsets 0..4: b0, a1, b2, a3, b4. a1 fails once and then backs off 1.5 s.
    const ids = await redirect(producer, scenario, [
      { offset: 10, key: 'b' },
      { offset: 11, key: 'a' },
      { offset: 12, key: 'b' },
      { offset: 13, key: 'a' },
      { offset: 14, key: 'b' },
    ])
    const [b0, a1, b2, a3, b4] = ids as [string, string, string, string, string]
    const recorder = recordingHandler((call, attempt) => {
      if (call.id === a1 && attempt === 1) throw new Error('downstream timeout')
    })
    const worker = track(testWorker(kafka, broker, scenario, { handler: recorder.handler, backoff: { type: 'constant', delayMs: 1500 } }))
    await worker.start()

    // While a1 backs off, group b completes and the commit stops at a1 (retry offset 1).
    await waitFor(() => recorder.calls.filter((c) => c.key === 'b').length === 3, 'group b to complete', 10_000)
    await waitFor(async () => (await committedOffset(admin, worker.options.workerGroupId, scenario.topics.retry)) === '1', 'commit at the backing-off record', 5000)
    expect(recorder.calls.map((c) => c.id)).toEqual([b0, a1, b2, b4])
    expect(recorder.attemptsOf(a1)).toBe(1)
    expect(worker.stats().partitions[0]).toMatchObject({ commitOffset: '1', buffered: 2 })
    await sleep(300)
    expect(await committedOffset(admin, worker.options.workerGroupId, scenario.topics.retry)).toBe('1')

    await waitFor(() => recorder.calls.length === 6, 'a1 retried and a3 run', 10_000)
    const order = recorder.calls.map((c) => c.id)
    expect(order).toEqual([b0, a1, b2, b4, a1, a3])
    const [firstA1, secondA1] = recorder.calls.filter((c) => c.id === a1)
    expect(secondA1!.at - firstA1!.at).toBeGreaterThanOrEqual(1400)
    const lastB = recorder.calls.find((c) => c.id === b4)!
    expect(lastB.at).toBeLessThan(secondA1!.at)
    await waitFor(async () => (await committedOffset(admin, worker.options.workerGroupId, scenario.topics.retry)) === '5', 'final commit', 5000)
    expect(ids).toContain(a3)
  })

  it('calls the handler with the source coordinates and the original bytes, and writes a tombstone per id in group order', async () => {
    const scenario = await createScenario(broker, 2)
    const ids = await redirect(producer, scenario, [
      { partition: 0, offset: 100, key: 'k1', value: 'v100', headers: { 'x-trace': 't100', bin: Buffer.from([0xff, 0x00]) } },
      { partition: 0, offset: 101, key: null },
      { partition: 0, offset: 102, key: 'k1' },
      { partition: 1, offset: 7, key: 'k2' },
      { partition: 1, offset: 9, key: 'k2' },
    ])
    const recorder = recordingHandler()
    const worker = track(testWorker(kafka, broker, scenario, { handler: recorder.handler }))
    await worker.start()

    const tombstones = await readRecords(kafka, scenario.topics.redirect, ids.length * 2)
    const released = tombstones.filter((t) => t.message.value === null)
    // Every id released once, on its source partition (groups run concurrently, so only per-group order is fixed).
    expect(released.map((t) => `${t.partition}:${header(t.message, 'detour-id')}`).sort()).toEqual(
      [`0:${ids[0]}`, `0:${ids[1]}`, `0:${ids[2]}`, `1:${ids[3]}`, `1:${ids[4]}`].sort(),
    )
    // Keys equal the redirect keys, so a tombstone releases exactly its pending record.
    const keyOf = (key: string | null, id: string): Buffer => redirectKey(key === null ? null : Buffer.from(key), id)
    const byId = new Map(released.map((t) => [header(t.message, 'detour-id'), t.message.key]))
    expect(byId.get(ids[0])).toEqual(keyOf('k1', ids[0]!))
    expect(byId.get(ids[1])).toEqual(keyOf(null, ids[1]!))
    expect(byId.get(ids[2])).toEqual(keyOf('k1', ids[2]!))
    expect(byId.get(ids[4])).toEqual(keyOf('k2', ids[4]!))
    // Group order: within k1 and within k2 the tombstones follow the source order.
    const ofGroup = (prefix: string): Array<string | undefined> =>
      released.filter((t) => t.message.key!.toString().startsWith(prefix)).map((t) => header(t.message, 'detour-id'))
    expect(ofGroup('k1|')).toEqual([ids[0], ids[2]])
    expect(ofGroup('k2|')).toEqual([ids[3], ids[4]])

    const first = recorder.calls.find((c) => c.id === ids[0])!
    expect(first).toMatchObject({ topic: scenario.topics.source, partition: 0, offset: '100', key: 'k1' })
    expect(first.message.value?.toString()).toBe('v100')
    expect(first.message.timestamp).toBe('1700000000000')
    expect(header(first.message, 'x-trace')).toBe('t100')
    expect(first.message.headers?.bin).toEqual(Buffer.from([0xff, 0x00]))
    expect(header(first.message, 'detour-id')).toBe(ids[0])
    expect(recorder.calls.find((c) => c.id === ids[4])).toMatchObject({ partition: 1, offset: '9' })
    expect(await metricValue(worker.registry, 'detour_retry_tombstones_written_total')).toBe(5)
    expect(await metricValue(worker.registry, 'detour_retry_retries_succeeded_total', { topic: scenario.topics.source })).toBe(5)
    // Both partitions end committed past their last record (each in its own time: commits follow resolutions).
    await waitFor(async () => (await committedOffset(admin, worker.options.workerGroupId, scenario.topics.retry, 1)) === '2', 'commit of partition 1', 5000)
    await waitFor(async () => (await committedOffset(admin, worker.options.workerGroupId, scenario.topics.retry, 0)) === '3', 'commit of partition 0', 5000)
  })

  it('handles a duplicate id once and writes its tombstone again (queued behind the first copy, or arriving later)', async () => {
    const scenario = await createScenario(broker)
    const recorder = recordingHandler(() => sleep(100))
    const worker = track(testWorker(kafka, broker, scenario, { handler: recorder.handler }))
    // Two copies of the same id in one batch: the main app crashed between its retry write and its commit,
    // and its resumed hand-off wrote the retry record again (the redirect record once).
    const [x] = await redirect(producer, scenario, [{ offset: 5, key: 'k' }])
    await retryOnly(producer, scenario, [{ offset: 5, key: 'k' }])
    await worker.start()
    await waitFor(async () => (await metricValue(worker.registry, 'detour_retry_duplicates_skipped_total')) === 1, 'the duplicate to be skipped', 10_000)
    // A third copy arriving after the id was resolved.
    await retryOnly(producer, scenario, [{ offset: 5, key: 'k' }])
    await waitFor(async () => (await metricValue(worker.registry, 'detour_retry_duplicates_skipped_total')) === 2, 'the late duplicate', 10_000)
    expect(recorder.calls.map((c) => c.id)).toEqual([x])
    const redirectTopic = await readRecords(kafka, scenario.topics.redirect, 1 + 3)
    const tombstones = redirectTopic.filter((r) => r.message.value === null)
    expect(tombstones.map((t) => header(t.message, 'detour-id'))).toEqual([x, x, x])
    await waitFor(async () => (await committedOffset(admin, worker.options.workerGroupId, scenario.topics.retry)) === '3', 'commit past the duplicates', 5000)
  })

  it('dead-letters malformed records with reason malformed and keeps processing', async () => {
    const scenario = await createScenario(broker)
    await producer.send({
      topic: scenario.topics.retry,
      messages: [
        { partition: 0, key: 'foreign', value: 'no headers at all' },
        { partition: 0, key: 'k', value: 'garbled', headers: { 'detour-id': 'not-an-id', 'detour-consumer-group': scenario.groupId } },
      ],
    })
    const [good] = await redirect(producer, scenario, [{ offset: 3, key: 'k' }])
    const recorder = recordingHandler()
    const worker = track(testWorker(kafka, broker, scenario, { handler: recorder.handler }))
    await worker.start()

    // Malformed records are independent of each other: their dead letters may be written in any order.
    const dlt = (await readRecords(kafka, scenario.topics.error, 2)).sort((x, y) =>
      header(x.message, 'detour-record-offset')!.localeCompare(header(y.message, 'detour-record-offset')!),
    )
    expect(dlt.map((r) => [header(r.message, 'detour-reason'), header(r.message, 'detour-record-topic'), header(r.message, 'detour-record-offset')])).toEqual([
      ['malformed', scenario.topics.retry, '0'],
      ['malformed', scenario.topics.retry, '1'],
    ])
    expect(header(dlt[0]!.message, 'detour-record-partition')).toBe('0')
    expect(dlt[0]!.message.value?.toString()).toBe('no headers at all')
    expect(dlt[0]!.message.key?.toString()).toBe('foreign')
    expect(header(dlt[1]!.message, 'detour-error-message')).toMatch(/not-an-id/)
    expect(header(dlt[1]!.message, 'detour-component')).toBe('retry-worker')
    await waitFor(() => recorder.calls.length === 1, 'the valid record after the malformed ones', 10_000)
    expect(recorder.calls[0]!.id).toBe(good)
    await waitFor(async () => (await committedOffset(admin, worker.options.workerGroupId, scenario.topics.retry)) === '3', 'commit past the malformed records', 5000)
    expect(await metricValue(worker.registry, 'detour_retry_dead_lettered_total', { reason: 'malformed' })).toBe(2)
  })

  it('dead-letters an unprocessable message at once, releases its group, and lets the next message of the group run', async () => {
    const scenario = await createScenario(broker)
    const [bad, next] = await redirect(producer, scenario, [
      { offset: 1, key: 'k' },
      { offset: 2, key: 'k' },
    ])
    const recorder = recordingHandler((call) => {
      if (call.id === bad) throw new UnprocessableMessageError('order 1 references a deleted customer')
    })
    const worker = track(testWorker(kafka, broker, scenario, { handler: recorder.handler, maxAttempts: 5 }))
    await worker.start()

    const [dead] = await readRecords(kafka, scenario.topics.error, 1)
    expect(header(dead!.message, 'detour-reason')).toBe('unprocessable')
    expect(header(dead!.message, 'detour-id')).toBe(bad)
    expect(header(dead!.message, 'detour-attempts')).toBe('1')
    expect(header(dead!.message, 'detour-error-message')).toBe('order 1 references a deleted customer')
    expect(header(dead!.message, 'detour-original-offset')).toBe('1')
    expect(header(dead!.message, 'x-trace')).toBe('trace-1')
    const redirectTopic = await readRecords(kafka, scenario.topics.redirect, 4)
    expect(redirectTopic.filter((r) => r.message.value === null).map((r) => header(r.message, 'detour-id'))).toEqual([bad, next])
    expect(recorder.calls.map((c) => c.id)).toEqual([bad, next])
  })

  it('uses the classifier: a deserialization verdict dead-letters with that reason', async () => {
    const scenario = await createScenario(broker)
    const [id] = await redirect(producer, scenario, [{ offset: 1, key: 'k' }])
    const recorder = recordingHandler(() => {
      throw new Error('bad avro')
    })
    const worker = track(
      testWorker(kafka, broker, scenario, {
        handler: recorder.handler,
        classify: (error) => (error instanceof Error && error.message === 'bad avro' ? 'deserialization' : undefined),
      }),
    )
    await worker.start()
    const [dead] = await readRecords(kafka, scenario.topics.error, 1)
    expect(header(dead!.message, 'detour-reason')).toBe('deserialization')
    expect(header(dead!.message, 'detour-id')).toBe(id)
    expect(recorder.calls).toHaveLength(1)
  })

  it('falls back to the default rules when the classifier throws, instead of leaving the group stuck', async () => {
    const scenario = await createScenario(broker)
    const [first, second] = await redirect(producer, scenario, [
      { offset: 1, key: 'k' },
      { offset: 2, key: 'k' },
    ])
    const recorder = recordingHandler((call, attempt) => {
      if (call.id === first && attempt === 1) throw new Error('flaky downstream')
    })
    const worker = track(
      testWorker(kafka, broker, scenario, {
        handler: recorder.handler,
        classify: () => {
          throw new TypeError('bug in the classifier')
        },
      }),
    )
    await worker.start()
    // The failure counts as transient (the default for an unknown error): retried, then the group goes on.
    await waitFor(() => recorder.calls.length === 3, 'the retry and the next message of the group', 10_000)
    expect(recorder.calls.map((c) => c.id)).toEqual([first, first, second])
    await waitFor(async () => (await committedOffset(admin, worker.options.workerGroupId, scenario.topics.retry)) === '2', 'the commit', 5000)
    const tombstones = (await readRecords(kafka, scenario.topics.redirect, 4)).filter((r) => r.message.value === null)
    expect(tombstones.map((t) => header(t.message, 'detour-id'))).toEqual([first, second])
  })

  it('bounds concurrent handlers with maxInFlight and pauses partitions when the buffer is full', async () => {
    const scenario = await createScenario(broker)
    const inputs = Array.from({ length: 30 }, (_, i) => ({ offset: i, key: `k${i % 6}` }))
    const ids = await redirect(producer, scenario, inputs)
    let running = 0
    let peak = 0
    const recorder = recordingHandler(async () => {
      running++
      peak = Math.max(peak, running)
      await sleep(15)
      running--
    })
    const worker = track(testWorker(kafka, broker, scenario, { handler: recorder.handler, maxInFlight: 2, maxBufferedMessages: 8 }))
    let pausedSeen = 0
    worker.on('resolved', () => {
      pausedSeen = Math.max(pausedSeen, worker.stats().pausedPartitions)
    })
    await worker.start()
    await waitFor(() => recorder.calls.length === 30, 'all 30 records', 20_000)
    expect(peak).toBe(2)
    expect(pausedSeen).toBe(1)
    // Per-group order holds for every group.
    for (let g = 0; g < 6; g++) {
      const expected = ids.filter((_, i) => i % 6 === g)
      expect(recorder.calls.filter((c) => c.key === `k${g}`).map((c) => c.id)).toEqual(expected)
    }
    await waitFor(async () => (await committedOffset(admin, worker.options.workerGroupId, scenario.topics.retry)) === '30', 'the final commit', 5000)
    expect(worker.stats()).toMatchObject({ buffered: 0, inFlight: 0, pausedPartitions: 0 })
    expect(await metricValue(worker.registry, 'detour_retry_buffered_messages')).toBe(0)
    expect(await metricValue(worker.registry, 'detour_retry_in_flight')).toBe(0)
  })

  it('stops within the timeout: abandons a stuck handler without committing it, commits what is resolved, and is idempotent', async () => {
    const scenario = await createScenario(broker)
    const [done, stuck] = await redirect(producer, scenario, [
      { offset: 1, key: 'a' },
      { offset: 2, key: 'b' },
      { offset: 3, key: 'b' },
    ])
    let release: () => void = () => {}
    const recorder = recordingHandler((call) => {
      if (call.id === stuck) return new Promise<void>((resolve) => (release = resolve))
    })
    const worker = testWorker(kafka, broker, scenario, { handler: recorder.handler })
    await worker.start()
    await waitFor(() => recorder.calls.length === 2, 'both groups to start', 10_000)
    await waitFor(() => worker.stats().partitions[0]?.buffered === 2, 'a to resolve', 5000)
    expect(worker.ready).toBe(true)
    const started = Date.now()
    const stopping = worker.stop({ timeoutMs: 500 })
    expect(worker.ready).toBe(false)
    const result = await stopping
    expect(Date.now() - started).toBeLessThan(5000)
    expect(result).toEqual({ clean: false, abandoned: 1 })
    expect(await worker.stop()).toBe(result)
    expect(worker.state).toBe('stopped')
    release()
    // Offset 0 (a) resolved; offset 1 (the stuck b) is where a restart begins.
    expect(await committedOffset(admin, worker.options.workerGroupId, scenario.topics.retry)).toBe('1')
    expect(recorder.calls.map((c) => c.id)).toEqual([done, stuck])
  })

  it('lets an in-flight handler finish during a graceful stop and commits it', async () => {
    const scenario = await createScenario(broker)
    const [slow] = await redirect(producer, scenario, [{ offset: 1, key: 'a' }])
    const recorder = recordingHandler(() => sleep(400))
    const worker = testWorker(kafka, broker, scenario, { handler: recorder.handler })
    await worker.start()
    await waitFor(() => recorder.calls.length === 1, 'the handler to start', 10_000)
    const result = await worker.stop({ timeoutMs: 5000 })
    expect(result).toEqual({ clean: true, abandoned: 0 })
    expect(recorder.calls.map((c) => c.id)).toEqual([slow])
    expect(await committedOffset(admin, worker.options.workerGroupId, scenario.topics.retry)).toBe('1')
    const tombstones = (await readRecords(kafka, scenario.topics.redirect, 2)).filter((r) => r.message.value === null)
    expect(tombstones.map((t) => header(t.message, 'detour-id'))).toEqual([slow])
  })
})

// Protocol-level faults exist only in the embedded broker.
describe('retry worker hand-off faults', () => {
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

  it('writes a dead letter without its value when the broker rejects it as too large', async () => {
    const scenario = await createScenario(broker)
    const [id] = await redirect(producer, scenario, [{ offset: 1, key: 'k', value: 'big payload' }])
    const recorder = recordingHandler(() => {
      throw new UnprocessableMessageError('nope')
    })
    const worker = track(testWorker(kafka, broker, scenario, { handler: recorder.handler }))
    // The worker's first produce request is its resolution barrier, the second this dead letter.
    broker.injectErrors(ApiKeys.Produce, [KafkaErrorCodes.NONE, KafkaErrorCodes.MESSAGE_TOO_LARGE])
    await worker.start()
    const [dead] = await readRecords(kafka, scenario.topics.error, 1)
    expect(header(dead!.message, 'detour-id')).toBe(id)
    expect(header(dead!.message, 'detour-reason')).toBe('unprocessable')
    expect(dead!.message.value).toBeNull()
    expect(header(dead!.message, 'x-trace')).toBeUndefined()
    await waitFor(async () => (await metricValue(worker.registry, 'detour_retry_tombstones_written_total')) === 1, 'the tombstone', 5000)
  })

  it('retries a failed tombstone write until it is acknowledged before committing', async () => {
    const scenario = await createScenario(broker)
    const [id] = await redirect(producer, scenario, [{ offset: 1, key: 'k' }])
    const recorder = recordingHandler()
    // The producer is idempotent, so kafkajs retries each send at least once: 4 errors fail 2 sends.
    const worker = track(testWorker(kafka, broker, scenario, { handler: recorder.handler, producerConfig: { retry: { retries: 1, initialRetryTime: 10 } } }))
    const errors: Error[] = []
    worker.on('error', (error) => errors.push(error))
    // The first produce request is the resolution barrier; then the tombstone's.
    broker.injectErrors(ApiKeys.Produce, [KafkaErrorCodes.NONE, ...Array.from({ length: 4 }, () => KafkaErrorCodes.NOT_ENOUGH_REPLICAS)])
    await worker.start()
    await waitFor(async () => (await committedOffset(admin, worker.options.workerGroupId, scenario.topics.retry)) === '1', 'the commit after the tombstone', 10_000)
    expect(await metricValue(worker.registry, 'detour_retry_hand_off_failures_total', { target: 'tombstone' })).toBe(2)
    expect(errors.map((e) => e.name)).toEqual(['DetourHandOffError', 'DetourHandOffError'])
    const tombstones = (await readRecords(kafka, scenario.topics.redirect, 2)).filter((r) => r.message.value === null)
    expect(tombstones.map((t) => header(t.message, 'detour-id'))).toEqual([id])
    expect(recorder.calls).toHaveLength(1)
  })
})

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { Admin, Kafka, Producer } from 'kafkajs'
import { rejoinConsumerTiming, sleep, startBroker, testKafka, waitFor, type TestBroker } from '@detour/testkit'
import { startHttpServer, type RunningHttpServer } from '../http/http-server.js'
import {
  committedOffset,
  createScenario,
  header,
  metricValue,
  readRecords,
  recordingHandler,
  redirect,
  testWorker,
} from '../test-support/harness.js'
import type { RetryWorker } from './retry-worker.js'
import type { HeldGroup } from './types.js'

describe('exhausted retries', () => {
  let broker: TestBroker
  let kafka: Kafka
  let producer: Producer
  let admin: Admin
  const cleanup: Array<() => Promise<unknown>> = []

  beforeAll(async () => {
    broker = await startBroker()
    kafka = testKafka(broker)
    producer = kafka.producer()
    admin = kafka.admin()
    await Promise.all([producer.connect(), admin.connect()])
  })

  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step()
  })

  afterAll(async () => {
    await Promise.all([producer?.disconnect(), admin?.disconnect()])
    await broker?.stop()
  })

  function track(worker: RetryWorker): RetryWorker {
    cleanup.push(() => worker.stop({ timeoutMs: 1000 }))
    return worker
  }

  async function serve(worker: RetryWorker): Promise<RunningHttpServer> {
    const http = await startHttpServer({ port: 0, host: '127.0.0.1', registry: worker.registry, worker })
    cleanup.push(() => http.close())
    return http
  }

  it('release: dead-letters with reason exhausted, writes the tombstone, and the group moves on', async () => {
    const scenario = await createScenario(broker)
    // Retry offsets: b0, a1 (always fails), a2, b3.
    const [b0, a1, a2, b3] = await redirect(producer, scenario, [
      { offset: 0, key: 'b' },
      { offset: 1, key: 'a' },
      { offset: 2, key: 'a' },
      { offset: 3, key: 'b' },
    ])
    const recorder = recordingHandler((call) => {
      if (call.id === a1) throw new Error(`still failing`)
    })
    const worker = track(testWorker(kafka, broker, scenario, { handler: recorder.handler, maxAttempts: 3, exhaustedPolicy: 'release' }))
    await worker.start()

    const [dead] = await readRecords(kafka, scenario.topics.error, 1)
    expect(header(dead!.message, 'detour-reason')).toBe('exhausted')
    expect(header(dead!.message, 'detour-id')).toBe(a1)
    expect(header(dead!.message, 'detour-attempts')).toBe('3')
    expect(header(dead!.message, 'detour-group-policy')).toBe('release')
    expect(header(dead!.message, 'detour-group-key')).toBe('a')
    expect(header(dead!.message, 'detour-error-message')).toBe('still failing')
    expect(header(dead!.message, 'detour-first-error-message')).toBe('first failure in the main app')
    expect(header(dead!.message, 'detour-record-offset')).toBe('1')
    expect(dead!.message.value?.toString()).toBe('value-1')

    await waitFor(() => recorder.calls.some((c) => c.id === a2), 'the next message of the group', 10_000)
    expect(recorder.calls.filter((c) => c.key === 'a').map((c) => c.id)).toEqual([a1, a1, a1, a2])
    const tombstones = (await readRecords(kafka, scenario.topics.redirect, 8)).filter((r) => r.message.value === null)
    const ofA = tombstones.filter((t) => t.message.key!.toString().startsWith('a|')).map((t) => header(t.message, 'detour-id'))
    expect(ofA).toEqual([a1, a2])
    expect(tombstones.map((t) => header(t.message, 'detour-id')).sort()).toEqual([b0, a1, a2, b3].sort())
    await waitFor(async () => (await committedOffset(admin, worker.options.groupId, scenario.topics.retry)) === '4', 'commit past the released group', 5000)
    expect(await metricValue(worker.registry, 'detour_retry_retries_exhausted_total')).toBe(1)
    expect(await metricValue(worker.registry, 'detour_retry_dead_lettered_total', { reason: 'exhausted' })).toBe(1)
    expect(await metricValue(worker.registry, 'detour_retry_held_groups')).toBe(0)
  })

  it('hold: dead-letters, blocks the group and the commit, lists it on /groups/held, and POST /groups/release lets it continue', async () => {
    const scenario = await createScenario(broker)
    const [b0, a1, a2, b3] = await redirect(producer, scenario, [
      { offset: 0, key: 'b' },
      { offset: 1, key: 'a' },
      { offset: 2, key: 'a' },
      { offset: 3, key: 'b' },
    ])
    const recorder = recordingHandler((call) => {
      if (call.id === a1) throw new Error('still failing')
    })
    const worker = track(testWorker(kafka, broker, scenario, { handler: recorder.handler, maxAttempts: 2 }))
    expect(worker.options.exhaustedPolicy).toBe('hold')
    const held: HeldGroup[] = []
    worker.on('held', (group) => held.push(group))
    const http = await serve(worker)
    await worker.start()

    const [dead] = await readRecords(kafka, scenario.topics.error, 1)
    expect(header(dead!.message, 'detour-reason')).toBe('exhausted')
    expect(header(dead!.message, 'detour-group-policy')).toBe('hold')
    expect(header(dead!.message, 'detour-attempts')).toBe('2')
    await waitFor(() => held.length === 1, 'the held event', 5000)
    // Group b flows; a2 waits behind the held a1; the commit stays at a1 (retry offset 1).
    await waitFor(() => recorder.calls.some((c) => c.id === b3), 'group b', 5000)
    await waitFor(async () => (await committedOffset(admin, worker.options.groupId, scenario.topics.retry)) === '1', 'commit up to the held record', 5000)
    await sleep(500)
    expect(recorder.calls.map((c) => c.id)).not.toContain(a2)
    expect(await committedOffset(admin, worker.options.groupId, scenario.topics.retry)).toBe('1')
    let redirectTopic = await readRecords(kafka, scenario.topics.redirect, 6)
    expect(redirectTopic.filter((r) => r.message.value === null).map((r) => header(r.message, 'detour-id')).sort()).toEqual([b0, b3].sort())

    const listed = (await (await fetch(`${http.url}/groups/held`)).json()) as HeldGroup[]
    expect(listed).toEqual([
      expect.objectContaining({ id: a1, topic: scenario.topics.source, partition: 0, groupKey: 'a', retryOffset: '1', attempts: 2, lastError: 'still failing' }),
    ])
    expect(Date.parse(listed[0]!.since)).not.toBeNaN()
    const metrics = await (await fetch(`${http.url}/metrics`)).text()
    expect(metrics).toMatch(/^detour_retry_held_groups 1$/m)

    const unknown = await fetch(`${http.url}/groups/release`, { method: 'POST', body: JSON.stringify({ id: 'nope/0/0' }) })
    expect(unknown.status).toBe(404)
    const badBody = await fetch(`${http.url}/groups/release`, { method: 'POST', body: 'not json' })
    expect(badBody.status).toBe(400)
    const response = await fetch(`${http.url}/groups/release`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: a1 }) })
    expect(response.status).toBe(200)
    expect(await response.json()).toMatchObject({ released: true, group: { id: a1 } })

    await waitFor(() => recorder.calls.some((c) => c.id === a2), 'the rest of the group', 5000)
    redirectTopic = await readRecords(kafka, scenario.topics.redirect, 8)
    const ofA = redirectTopic.filter((r) => r.message.value === null && r.message.key!.toString().startsWith('a|'))
    expect(ofA.map((r) => header(r.message, 'detour-id'))).toEqual([a1, a2])
    await waitFor(async () => (await committedOffset(admin, worker.options.groupId, scenario.topics.retry)) === '4', 'the final commit', 5000)
    expect(await (await fetch(`${http.url}/groups/held`)).json()).toEqual([])
    expect(await metricValue(worker.registry, 'detour_retry_held_groups')).toBe(0)
    expect(recorder.attemptsOf(a1!)).toBe(2)
  })

  it('hold: a restart attempts the held message again (its offset was never committed)', async () => {
    const scenario = await createScenario(broker)
    const [a0, a1] = await redirect(producer, scenario, [
      { offset: 0, key: 'a' },
      { offset: 1, key: 'a' },
    ])
    let healthy = false
    const first = recordingHandler((call) => {
      if (call.id === a0 && !healthy) throw new Error('downstream down')
    })
    // The embedded broker lets a new member in only after about the old member's session timeout: short there.
    const consumerConfig = rejoinConsumerTiming(broker)
    const worker = testWorker(kafka, broker, scenario, { handler: first.handler, maxAttempts: 2, consumerConfig })
    await worker.start()
    await waitFor(() => worker.heldGroups().length === 1, 'the group to be held', 10_000)
    expect(await worker.stop()).toEqual({ clean: true, abandoned: 0 })
    expect(await committedOffset(admin, worker.options.groupId, scenario.topics.retry)).toBe('0')
    expect(first.calls.map((c) => c.id)).toEqual([a0, a0])

    healthy = true
    const second = recordingHandler()
    const restarted = track(testWorker(kafka, broker, scenario, { handler: second.handler, maxAttempts: 2, consumerConfig }))
    let ready = false
    restarted.on('ready', () => (ready = true))
    await restarted.start()
    await waitFor(() => ready && restarted.ready, 'the ready event', 10_000)
    await waitFor(() => second.calls.length === 2, 'both messages after the restart', 10_000)
    expect(second.calls.map((c) => c.id)).toEqual([a0, a1])
    await waitFor(async () => (await committedOffset(admin, restarted.options.groupId, scenario.topics.retry)) === '2', 'the commit', 5000)
  })

  it('exhausts on maxRetryDurationMs before maxAttempts', async () => {
    const scenario = await createScenario(broker)
    const [a0] = await redirect(producer, scenario, [{ offset: 0, key: 'a' }])
    const recorder = recordingHandler(() => {
      throw new Error('slow failure')
    })
    const worker = track(
      testWorker(kafka, broker, scenario, {
        handler: recorder.handler,
        maxAttempts: 100,
        maxRetryDurationMs: 250,
        backoff: { type: 'constant', delayMs: 100 },
        exhaustedPolicy: 'release',
      }),
    )
    await worker.start()
    const [dead] = await readRecords(kafka, scenario.topics.error, 1)
    expect(header(dead!.message, 'detour-id')).toBe(a0)
    const attempts = Number(header(dead!.message, 'detour-attempts'))
    expect(attempts).toBeGreaterThanOrEqual(2)
    expect(attempts).toBeLessThanOrEqual(3)
    expect(recorder.calls).toHaveLength(attempts)
  })
})

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Registry } from 'prom-client'
import { DetourHeaders, headerString } from '@detour/core'
import { createRetryWorker, startHttpServer, type RetryWorker, type RunningHttpServer } from '@detour/retry-app'
import { startBroker, waitFor, type TestBroker } from '@detour/testkit'
import { brokerScenario, type BrokerScenario } from '../test-support/broker-scenario.js'
import type { AdminService } from '../service/admin-service.js'
import { WorkerClient } from './worker-client.js'

const TOKEN = 'the-workers-admin-token'

/**
 * The operator surface against the real retry worker (`@detour/retry-app`): its held groups, its admin
 * routes with a token, its dead letters, and a replay into the retry flow that its durable resolution runs.
 */
describe('detour with the real retry worker, on the broker', () => {
  let broker: TestBroker
  let s: BrokerScenario
  let worker: RetryWorker
  let http: RunningHttpServer
  let service: AdminService
  let fixed = false
  const handled: Array<{ offset: string; value: string; replayedFrom: string | undefined }> = []

  beforeAll(async () => {
    broker = await startBroker()
    s = await brokerScenario(broker, 1)
    const registry = new Registry()
    worker = createRetryWorker({
      kafka: s.kafka,
      groupId: s.consumerGroup,
      topics: [s.topics.source],
      topicAdmin: broker.topicAdmin,
      consumerConfig: broker.consumerTiming,
      followerConfig: broker.consumerTiming,
      commitIntervalMs: 100,
      backoff: { type: 'constant', delayMs: 20 },
      maxAttempts: 2,
      exhaustedPolicy: 'hold',
      registry,
      handler: async ({ message }) => {
        const value = message.value?.toString() ?? ''
        if (value.includes('poison') && !fixed) throw new Error('the payment service rejects this order')
        handled.push({ offset: message.offset, value, replayedFrom: headerString(message.headers, 'detour-replayed-from') })
      },
    })
    await worker.start()
    http = await startHttpServer({ port: 0, host: '127.0.0.1', registry, worker, adminToken: TOKEN })
    service = s.service({ worker: new WorkerClient({ url: http.url, token: TOKEN }) })
  }, 120_000)

  afterAll(async () => {
    await http?.close()
    await worker?.stop()
    await s?.close()
    await broker?.stop()
  })

  it('sees what the worker holds and why, releases it through the worker, and replays its dead letter into the retry flow', async () => {
    const source = s.topics.source
    const poison = await s.redirect(0, 1, 'customer-1', { value: 'poison order' })
    const behind = await s.redirect(0, 2, 'customer-1', { value: 'next order' })
    await waitFor(async () => (await service.held()).length === 1, 'the worker to hold the group', 60_000)

    const report = await service.inspect()
    const ids = report.topics[0]!.partitions[0]!.groups[0]!.ids
    expect(ids.map((id) => [id.id, id.state])).toEqual([
      [poison, 'held'],
      [behind, 'waiting'],
    ])
    expect(ids[0]!.held).toMatchObject({ id: poison, groupKey: 'customer-1', attempts: 2, lastError: 'the payment service rejects this order' })

    const page = await service.listDeadLetters({ reasons: ['exhausted'] })
    expect(page.deadLetters.map((dl) => [dl.id, dl.component, dl.errorMessage, headerString(dl.headers, DetourHeaders.GROUP_POLICY)])).toEqual([
      [poison, 'retry-worker', 'the payment service rejects this order', 'hold'],
    ])

    // Released through the worker (its admin route with the bearer token): the group goes on.
    await service.releaseViaWorker(poison)
    await waitFor(() => handled.some((h) => h.offset === '2'), 'the next order to be handled', 30_000)
    await waitFor(async () => (await service.inspect({ retryScan: false })).pendingIds === 0, 'nothing pending', 30_000)

    // The cause is fixed: the dead letter goes back into the retry flow under its id and is handled.
    fixed = true
    const plan = await service.planReplay({ filter: { reasons: ['exhausted'] } }, { to: 'retry' })
    expect(plan.decisions.map((d) => d.action)).toEqual(['replay'])
    const execution = await service.executeReplay(plan)
    expect(execution.replayed).toBe(1)
    await waitFor(() => handled.some((h) => h.value === 'poison order'), 'the replayed order to be handled', 30_000)
    expect(handled.find((h) => h.value === 'poison order')).toMatchObject({ offset: '1', replayedFrom: `${s.topics.error}/0/0` })
    await waitFor(async () => (await service.inspect({ retryScan: false })).pendingIds === 0, 'the replay to be resolved', 30_000)
    expect(handled.map((h) => h.value)).toEqual(['next order', 'poison order'])
    expect(source).toBe(s.topics.source)
  }, 180_000)
})

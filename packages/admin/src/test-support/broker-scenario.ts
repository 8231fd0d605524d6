// Helpers of the admin package's broker tests (excluded from the build): topics of a fresh consumer group
// on the run's broker, the main app's and the worker's writes made with core's record builders, a stand-in
// worker HTTP API, and an AdminService over the real kafkajs classes.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { IHeaders, Kafka, Producer } from 'kafkajs'
import {
  buildDeadLetterRecord,
  buildRedirectRecord,
  buildRetryRecord,
  buildTombstone,
  detourTopics,
  displayGroupKey,
  messageId,
  RETRY_TOPIC_CONFIG,
  type DeadLetterReason,
  type DetourTopics,
} from '@detour/core'
import { collectMessages, randomName, testKafka, type CollectedMessage, type TestBroker } from '@detour/testkit'
import { KafkaTopicLog } from '../kafka/kafka-topic-log.js'
import { KafkaTopicWriter } from '../kafka/kafka-topic-writer.js'
import { resolveScope } from '../model/scope.js'
import { AdminService } from '../service/admin-service.js'
import { WorkerClient, type HeldGroup } from '../worker/worker-client.js'

export interface BrokerScenario {
  readonly broker: TestBroker
  readonly kafka: Kafka
  readonly producer: Producer
  readonly consumerGroup: string
  readonly topics: DetourTopics
  /** The CLI flags that name this scenario's cluster and topics. */
  readonly flags: string[]
  /** An AdminService over kafkajs, with this broker's consumer timing. */
  service(options?: { worker?: WorkerClient; appMetricsUrls?: string[] }): AdminService
  /** The main app's hand-off of source message partition/offset. */
  redirect(partition: number, offset: number, key: string | null, options?: { withoutRetry?: boolean; at?: Date; error?: Error; value?: string }): Promise<string>
  /** A worker's tombstone. */
  tombstone(partition: number, offset: number | string, key: string | null): Promise<void>
  deadLetter(partition: number, offset: number, key: string | null, options?: { reason?: DeadLetterReason; value?: Buffer; headers?: IHeaders; error?: Error }): Promise<void>
  /** Every record of a topic, read from the beginning until `count` arrived. */
  collect(topic: string, count: number): Promise<CollectedMessage[]>
  close(): Promise<void>
}

export async function brokerScenario(broker: TestBroker, partitions = 2): Promise<BrokerScenario> {
  const source = randomName('orders')
  const consumerGroup = randomName('app')
  const topics = detourTopics(source, consumerGroup)
  // A busy broker may answer a fresh topic's metadata with "does not host this topic-partition" for a while:
  // creating is idempotent, so ask again.
  const create = async (topic: string, settings: Parameters<TestBroker['createTopic']>[2] = {}): Promise<void> => {
    const deadline = Date.now() + 30_000
    for (;;) {
      try {
        return await broker.createTopic(topic, partitions, settings)
      } catch (error) {
        const type = (error as { type?: unknown }).type
        if ((type !== 'UNKNOWN_TOPIC_OR_PARTITION' && type !== 'LEADER_NOT_AVAILABLE') || Date.now() > deadline) throw error
        await new Promise((resolve) => setTimeout(resolve, 250))
      }
    }
  }
  await create(topics.source)
  // As the worker provisions it: held records may wait for days, so time never deletes them.
  await create(topics.retry, { config: RETRY_TOPIC_CONFIG })
  await create(topics.redirect, { compact: true })
  await create(topics.error)
  const kafka = testKafka(broker)
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  const timing = broker.consumerTiming
  const keyOf = (key: string | null): Buffer | null => (key === null ? null : Buffer.from(key))
  const services: AdminService[] = []
  return {
    broker,
    kafka,
    producer,
    consumerGroup,
    topics,
    flags: ['--brokers', broker.brokers.join(','), '--group-id', consumerGroup, '--topics', source, '--max-wait-time-ms', String(timing.maxWaitTimeInMs), '--log-level', 'error'],
    service(options = {}) {
      const service = new AdminService({
        scope: resolveScope({ consumerGroup, sourceTopics: [source] }),
        log: new KafkaTopicLog({
          kafka,
          consumerConfig: { maxWaitTimeInMs: timing.maxWaitTimeInMs, sessionTimeout: timing.sessionTimeout, heartbeatInterval: timing.heartbeatInterval, rebalanceTimeout: timing.rebalanceTimeout },
        }),
        writer: new KafkaTopicWriter(kafka),
        ...(options.worker ? { worker: options.worker } : {}),
        appMetricsUrls: options.appMetricsUrls ?? [],
        clientId: 'broker-test',
      })
      services.push(service)
      return service
    },
    async redirect(partition, offset, key, options = {}) {
      const sourceCoordinates = { topic: source, partition, offset: String(offset) }
      const id = messageId(sourceCoordinates)
      const groupKey = keyOf(key)
      const now = options.at ?? new Date()
      await producer.send({ topic: topics.redirect, acks: -1, messages: [buildRedirectRecord({ source: sourceCoordinates, id, groupKey, reason: 'failure', consumerGroup, now })] })
      if (!options.withoutRetry) {
        const message = { key: groupKey, value: Buffer.from(options.value ?? `value-${offset}`), headers: { trace: `trace-${offset}` }, timestamp: String(Date.now()) }
        const retry = buildRetryRecord({ source: sourceCoordinates, message, id, groupKey, reason: 'failure', consumerGroup, error: options.error ?? new Error('payment service timed out'), now })
        await producer.send({ topic: topics.retry, acks: -1, messages: [retry] })
      }
      return id
    },
    async tombstone(partition, offset, key) {
      await producer.send({ topic: topics.redirect, acks: -1, messages: [buildTombstone({ partition, id: `${source}/${partition}/${offset}`, groupKey: keyOf(key), consumerGroup })] })
    },
    async deadLetter(partition, offset, key, options = {}) {
      const sourceCoordinates = { topic: source, partition, offset: String(offset) }
      const record = buildDeadLetterRecord({
        reason: options.reason ?? 'exhausted',
        message: { key: keyOf(key), value: options.value ?? Buffer.from(`{"order":${offset}}`), headers: options.headers ?? { trace: `trace-${offset}` }, timestamp: String(Date.now()) },
        source: sourceCoordinates,
        id: messageId(sourceCoordinates),
        groupKey: keyOf(key) ?? undefined,
        consumerGroup,
        error: options.error ?? Object.assign(new Error('payment service timed out'), { name: 'TimeoutError' }),
        component: 'retry-worker',
        attempts: 5,
      })
      await producer.send({ topic: topics.error, acks: -1, messages: [{ ...record, partition }] })
    },
    collect(topic, count) {
      return collectMessages(kafka, topic, (collected) => collected.length >= count)
    },
    async close() {
      await Promise.allSettled(services.map((service) => service.close()))
      await producer.disconnect()
    },
  }
}

export interface FakeWorker {
  readonly url: string
  held: HeldGroup[]
  readonly requests: Array<{ method: string; path: string; authorization: string | undefined; contentType: string | undefined; body: string }>
  close(): Promise<void>
}

/**
 * A stand-in for the retry worker's HTTP API (`GET /groups/held`, `POST /groups/release`), asking for a
 * bearer token as the worker's admin routes do; a release writes the tombstone, as the worker does.
 */
export async function fakeWorker(scenario: BrokerScenario, token?: string): Promise<FakeWorker> {
  const state: Omit<FakeWorker, 'close' | 'url'> = { held: [], requests: [] }
  const server: Server = createServer((request, response) => {
    let body = ''
    request.on('data', (chunk: Buffer) => (body += chunk.toString()))
    request.on('end', () => {
      const path = new URL(request.url ?? '/', 'http://worker').pathname
      state.requests.push({ method: request.method ?? '', path, authorization: request.headers.authorization, contentType: request.headers['content-type'], body })
      const reply = (status: number, value: unknown): void => {
        response.writeHead(status, { 'content-type': 'application/json' })
        response.end(JSON.stringify(value))
      }
      if (token !== undefined && request.headers.authorization !== `Bearer ${token}`) return reply(401, { error: 'unauthorised' })
      if (request.method === 'GET' && path === '/groups/held') return reply(200, state.held)
      if (request.method === 'POST' && path === '/groups/release') {
        const id = (JSON.parse(body) as { id: string }).id
        const group = state.held.find((g) => g.id === id)
        if (!group) return reply(404, { released: false, error: `no held group with id "${id}"` })
        const [, partition = '0', offset = '0'] = id.split('/').slice(-3)
        void scenario
          .tombstone(Number(partition), offset, group.groupKey === '(none)' ? null : group.groupKey)
          .then(() => {
            state.held = state.held.filter((g) => g.id !== id)
            reply(200, { released: true, group })
          })
        return
      }
      reply(404, { error: 'no route' })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const fake: FakeWorker = Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  })
  return fake
}

/** What a worker reports for a group it holds. */
export function heldGroup(scenario: BrokerScenario, partition: number, offset: number, key: string, retryOffset = '0'): HeldGroup {
  return {
    id: `${scenario.topics.source}/${partition}/${offset}`,
    topic: scenario.topics.source,
    partition,
    groupKey: displayGroupKey(Buffer.from(key)),
    retryTopic: scenario.topics.retry,
    retryPartition: partition,
    retryOffset,
    attempts: 5,
    since: new Date().toISOString(),
    lastError: 'payment service timed out',
  }
}

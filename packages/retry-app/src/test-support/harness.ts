// Test helpers shared by the retry worker's suites (excluded from the build).
import type { Admin, EachMessagePayload, IHeaders, Kafka, KafkaMessage, Message, Producer } from 'kafkajs'
import { Registry } from 'prom-client'
import {
  isBarrierRecord,
  buildRedirectRecord,
  buildRetryRecord,
  buildTombstone,
  detourTopics,
  headerString,
  messageId,
  type DetourTopics,
  type RedirectReason,
} from '@detour/core'
import { collectMessages, randomName, type CollectedMessage, type TestBroker } from '@detour/testkit'
import { createRetryWorker, type RetryWorker } from '../worker/retry-worker.js'
import type { RetryWorkerOptions } from '../worker/retry-worker-options.js'

export interface Scenario {
  /** The main app's consumer group (the worker's `groupId`). */
  readonly groupId: string
  readonly topics: DetourTopics
}

/**
 * A fresh source topic, main-app group and their Detour topics, all created on the broker as Detour would
 * create them (the worker's settings check passes): the redirect topic compacted, the retry topic with
 * unlimited retention.
 */
export async function createScenario(broker: TestBroker, partitions = 1): Promise<Scenario> {
  const source = randomName('orders')
  const groupId = randomName('app')
  const topics = detourTopics(source, groupId)
  await broker.createTopic(topics.source, partitions)
  await broker.createTopic(topics.retry, partitions, { config: { 'retention.ms': '-1', 'retention.bytes': '-1' } })
  await broker.createTopic(topics.redirect, partitions, { compact: true })
  await broker.createTopic(topics.error, 1)
  return { groupId, topics }
}

export interface RetryInput {
  /** Source partition (and retry partition). @defaultValue 0 */
  readonly partition?: number
  /** Source offset. */
  readonly offset: number | string
  /** Message key = group key; `null` for keyless. */
  readonly key: string | null
  readonly value?: string
  readonly headers?: IHeaders
  readonly reason?: RedirectReason
  readonly redirectedAt?: Date
}

/** What the main app writes for one source message: the redirect record and the retry record. */
export function mainAppRecords(scenario: Scenario, input: RetryInput): { id: string; redirect: Message; retry: Message } {
  const source = { topic: scenario.topics.source, partition: input.partition ?? 0, offset: String(input.offset) }
  const id = messageId(source)
  const groupKey = input.key === null ? null : Buffer.from(input.key)
  const reason = input.reason ?? 'failure'
  const now = input.redirectedAt ?? new Date()
  const redirect = buildRedirectRecord({ source, id, groupKey, reason, consumerGroup: scenario.groupId, now })
  const retry = buildRetryRecord({
    source,
    id,
    groupKey,
    reason,
    consumerGroup: scenario.groupId,
    now,
    error: reason === 'failure' ? new Error('first failure in the main app') : undefined,
    message: {
      key: groupKey,
      value: Buffer.from(input.value ?? `value-${String(input.offset)}`),
      headers: input.headers ?? { 'x-trace': `trace-${String(input.offset)}` },
      timestamp: '1700000000000',
    },
  })
  return { id, redirect, retry }
}

/**
 * `producer.send`, again while the broker does not know the fresh topic's partitions yet (a topic created a
 * moment ago: "This server does not host this topic-partition" until the leader is known everywhere).
 */
export async function send(producer: Producer, topic: string, messages: Message[]): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await producer.send({ topic, acks: -1, messages })
      return
    } catch (error) {
      const type = (error as { type?: unknown }).type
      const fresh = type === 'UNKNOWN_TOPIC_OR_PARTITION' || type === 'LEADER_NOT_AVAILABLE' || type === 'NOT_LEADER_OR_FOLLOWER'
      if (!fresh || attempt >= 30) throw error
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}

/** Simulates the main app: writes the redirect records, then the retry records. Returns the ids. */
export async function redirect(producer: Producer, scenario: Scenario, inputs: RetryInput[]): Promise<string[]> {
  const records = inputs.map((input) => mainAppRecords(scenario, input))
  await send(producer, scenario.topics.redirect, records.map((r) => r.redirect))
  await send(producer, scenario.topics.retry, records.map((r) => r.retry))
  return records.map((r) => r.id)
}

/** Writes only the retry records (a main app resuming a hand-off whose redirect record was acknowledged). */
export async function retryOnly(producer: Producer, scenario: Scenario, inputs: RetryInput[]): Promise<string[]> {
  const records = inputs.map((input) => mainAppRecords(scenario, input))
  await send(producer, scenario.topics.retry, records.map((r) => r.retry))
  return records.map((r) => r.id)
}

export interface HandlerCall {
  readonly id: string
  readonly topic: string
  readonly partition: number
  readonly offset: string
  readonly key: string | null
  readonly at: number
  readonly message: KafkaMessage
}

export type Behaviour = (call: HandlerCall, attempt: number) => Promise<void> | void

/** A handler that records every call (in call order) and then does what `behaviour` says. */
export function recordingHandler(behaviour: Behaviour = () => {}): {
  handler: (payload: EachMessagePayload) => Promise<void>
  calls: HandlerCall[]
  attemptsOf(id: string): number
} {
  const calls: HandlerCall[] = []
  const attempts = new Map<string, number>()
  return {
    calls,
    attemptsOf: (id) => attempts.get(id) ?? 0,
    handler: async ({ topic, partition, message }) => {
      const id = headerString(message.headers, 'detour-id') ?? '?'
      const call: HandlerCall = { id, topic, partition, offset: message.offset, key: message.key?.toString() ?? null, at: Date.now(), message }
      calls.push(call)
      const attempt = (attempts.get(id) ?? 0) + 1
      attempts.set(id, attempt)
      await behaviour(call, attempt)
    },
  }
}

/** A worker wired for the test broker: its consumer timing, fast commits, a private registry. */
export function testWorker(
  kafka: Kafka,
  broker: TestBroker,
  scenario: Scenario,
  options: Partial<RetryWorkerOptions> & Pick<RetryWorkerOptions, 'handler'>,
): RetryWorker {
  return createRetryWorker({
    kafka,
    groupId: scenario.groupId,
    topics: [scenario.topics.source],
    topicAdmin: broker.topicAdmin,
    consumerConfig: broker.consumerTiming,
    followerConfig: broker.consumerTiming,
    commitIntervalMs: 100,
    backoff: { type: 'constant', delayMs: 20 },
    handOffBackoff: () => 50,
    registry: new Registry(),
    ...options,
  })
}

/** Reads a topic from the beginning until `count` records arrived; sorted by partition, then offset. */
/**
 * Reads `count` records of a topic, in partition and offset order. The worker's barrier records (core
 * `isBarrierRecord`) on a redirect topic are left out: they carry no id and their number depends on timing.
 */
export async function readRecords(kafka: Kafka, topic: string, count: number, timeoutMs = 20_000): Promise<CollectedMessage[]> {
  const records = (c: CollectedMessage[]): CollectedMessage[] => c.filter((r) => !isBarrierRecord(r.message))
  const got = records(await collectMessages(kafka, topic, (c) => records(c).length >= count, timeoutMs))
  return got.sort((a, b) => a.partition - b.partition || compareOffsets(a.message.offset, b.message.offset))
}

/** The committed offset of the worker's group for one partition (`-1` when none). */
export async function committedOffset(admin: Admin, groupId: string, topic: string, partition = 0): Promise<string> {
  const [result] = await admin.fetchOffsets({ groupId, topics: [topic] })
  return result?.partitions.find((p) => p.partition === partition)?.offset ?? '-1'
}

/** The committed offset of the worker's group for one partition, with its owner metadata. */
export async function committedWithMetadata(admin: Admin, groupId: string, topic: string, partition = 0): Promise<{ offset: string; metadata: string | null }> {
  const [result] = await admin.fetchOffsets({ groupId, topics: [topic] })
  const found = result?.partitions.find((p) => p.partition === partition)
  return { offset: found?.offset ?? '-1', metadata: found?.metadata ?? null }
}

/** The log start offset of a partition. */
export async function logStartOffset(admin: Admin, topic: string, partition = 0): Promise<string> {
  const offsets = await admin.fetchTopicOffsets(topic)
  return offsets.find((p) => p.partition === partition)?.low ?? '0'
}

/** Writes tombstones for these ids, as the worker (or an operator) would release them. */
export async function tombstone(producer: Producer, scenario: Scenario, inputs: RetryInput[]): Promise<void> {
  const messages = inputs.map((input) => {
    const source = { topic: scenario.topics.source, partition: input.partition ?? 0, offset: String(input.offset) }
    return buildTombstone({ partition: source.partition, id: messageId(source), groupKey: input.key === null ? null : Buffer.from(input.key), consumerGroup: scenario.groupId })
  })
  await send(producer, scenario.topics.redirect, messages)
}

export function header(message: KafkaMessage, name: string): string | undefined {
  return headerString(message.headers, name)
}

/** The value of a metric sample (summed over labels matching `labels`). */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name)
  if (!metric) return 0
  const { values } = await metric.get()
  return values
    .filter((v) => (v as { metricName?: string }).metricName === undefined || (v as { metricName?: string }).metricName === name)
    .filter((v) => Object.entries(labels).every(([k, value]) => (v.labels as Record<string, unknown>)[k] === value))
    .reduce((sum, v) => sum + v.value, 0)
}

function compareOffsets(a: string, b: string): number {
  const x = BigInt(a)
  const y = BigInt(b)
  return x < y ? -1 : x > y ? 1 : 0
}

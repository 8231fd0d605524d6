// A main app assembled from its real parts (router, partition gate, hand-off, processor) over the fakes:
// the unit tier's way to run messages through Detour in milliseconds.
import type { EachBatchHandler, EachMessageHandler, EachMessagePayload, KafkaMessage } from 'kafkajs'
import { Registry } from 'prom-client'
import { GroupStore, decodeRetryRecord, detourTopicsFor, noopLogger, topicPartitionKey, type DetourTopics, type GroupKeyFn } from '@detour/core'
import type { HandOff, HandOffMode } from '../hand-off/hand-off.js'
import { SequentialHandOff } from '../hand-off/sequential-hand-off.js'
import { SharedWriter } from '../hand-off/shared-writer.js'
import { TransactionalHandOff } from '../hand-off/transactional-hand-off.js'
import { createSdkMetrics } from '../metrics/sdk-metrics.js'
import { PartitionGate } from '../partitions/partition-gate.js'
import { BatchProcessor } from '../processing/batch-processor.js'
import { HandlerHeartbeats } from '../processing/handler-heartbeats.js'
import { MessageProcessor } from '../processing/message-processor.js'
import { MessageRouter } from '../routing/message-router.js'
import { FakeBroker, FakeFollower, FakeMembership } from './fakes.js'

export const TOPIC = 'orders'
export const GROUP = 'orders-app'

export interface Rig {
  readonly name: string
  readonly broker: FakeBroker
  readonly store: GroupStore
  readonly follower: FakeFollower
  readonly membership: FakeMembership
  readonly gate: PartitionGate
  readonly handOff: HandOff
  readonly topics: DetourTopics
  readonly errors: Error[]
  readonly wrap: (handler: EachMessageHandler) => EachMessageHandler
  readonly wrapBatch: (handler: EachMessageHandler) => EachBatchHandler
  /** Assigns partitions (as kafkajs' GROUP_JOIN) and waits until they are ready or lost. */
  assign(...partitions: number[]): Promise<void>
}

export interface RigOptions {
  readonly name?: string
  readonly mode?: HandOffMode
  readonly partitions?: number
  readonly maxPendingIds?: number
  readonly inPlaceRetries?: number
  readonly groupKey?: GroupKeyFn
}

/** One main-app instance on the fake broker (several instances share one broker). */
export function createRig(broker: FakeBroker, options: RigOptions = {}): Rig {
  const name = options.name ?? 'app'
  const partitionCount = options.partitions ?? 1
  const topicsBySource = detourTopicsFor([TOPIC], GROUP)
  const topics = topicsBySource.get(TOPIC)!
  const store = new GroupStore()
  const follower = new FakeFollower(broker, topicsBySource, store, GROUP)
  const membership = new FakeMembership()
  const writer = new SharedWriter(broker.producer())
  const errors: Error[] = []
  const handOff: HandOff =
    (options.mode ?? 'transactional') === 'transactional'
      ? new TransactionalHandOff({
          createProducer: (id) => broker.producer(id),
          transactionalId: (topic, partition) => `detour-${GROUP}-${topic}-${partition}`,
          writer,
          connectShared: async () => {},
          disconnectShared: async () => {},
          logger: noopLogger,
        })
      : new SequentialHandOff(writer, async () => {}, async () => {})
  const partitionCounts = new Map([[TOPIC, partitionCount]])
  const gate = new PartitionGate({
    topics: topicsBySource,
    handOff,
    follower,
    membership,
    topicAdmin: broker.topicAdmin(new Map([[TOPIC, partitionCount], [topics.retry, partitionCount], [topics.redirect, partitionCount]])),
    partitionCounts,
    logger: noopLogger,
    onError: (error) => errors.push(error),
  })
  const metrics = createSdkMetrics(new Registry(), () => ({ pendingIds: 0, groups: 0, utilisation: 0, paused: 0, ready: true }))
  const processor = new MessageProcessor({
    topics: topicsBySource,
    consumerGroup: GROUP,
    store,
    gate,
    router: new MessageRouter({ groupKey: options.groupKey ?? ((m) => m.key ?? null), classify: undefined, inPlaceRetries: options.inPlaceRetries ?? 0, inPlaceBackoff: () => 0 }, store),
    handOff,
    metrics,
    logger: noopLogger,
    rebuildTimeoutMs: 2000,
    maxPendingIds: options.maxPendingIds ?? 100_000,
    assignedPending: () => store.pendingCount,
    isRunning: () => true,
    whenStarted: async () => {},
    stopping: () => membership.stopping,
    pausePartition: (p) => {
      p.pause()
    },
    heartbeats: new HandlerHeartbeats({ maxPollIntervalMs: 300_000, logger: noopLogger }),
  })
  return {
    name,
    broker,
    store,
    follower,
    membership,
    gate,
    handOff,
    topics,
    errors,
    wrap: (handler) => processor.wrap(handler),
    wrapBatch: (handler) => new BatchProcessor(processor).wrap(handler),
    async assign(...partitions) {
      for (const p of partitions) membership.own(TOPIC, p)
      gate.onAssignment({ [TOPIC]: partitions })
      const deadline = Date.now() + 2000
      while (gate.readiness().some((r) => r.state === 'preparing')) {
        if (Date.now() > deadline) throw new Error(`${name}: partitions not ready: ${JSON.stringify(gate.readiness())}`)
        await new Promise((resolve) => setTimeout(resolve, 1))
      }
    },
  }
}

export function payload(message: KafkaMessage, partition = 0): EachMessagePayload {
  return { topic: TOPIC, partition, message, heartbeat: async () => {}, pause: () => () => {} }
}

/**
 * Delivers messages of one partition as kafkajs does: in order; a message whose handler throws is delivered
 * again (up to `maxAttempts` times), and the offset after the last success is committed for the group.
 * Returns the errors seen.
 */
export async function deliver(rig: Rig, eachMessage: EachMessageHandler, messages: KafkaMessage[], options: { partition?: number; maxAttempts?: number } = {}): Promise<unknown[]> {
  const errors: unknown[] = []
  const partition = options.partition ?? 0
  for (const message of messages) {
    for (let attempt = 1; ; attempt++) {
      try {
        await eachMessage(payload(message, partition))
        rig.broker.committedOffsets.set(`${GROUP}/${topicPartitionKey(TOPIC, partition)}`, (BigInt(message.offset) + 1n).toString())
        break
      } catch (error) {
        errors.push(error)
        if (attempt >= (options.maxAttempts ?? 5)) throw error
      }
    }
  }
  return errors
}

/** What the retry topic holds: the ids of its records, in order. */
export function retryIds(broker: FakeBroker, topics: DetourTopics, partition = 0): string[] {
  return broker.records(topics.retry, partition).map((r) => decodeRetryRecord(r).id)
}

/** The redirect topic's records as `+id` (pending) and `-id` (tombstone). */
export function redirectLog(broker: FakeBroker, topics: DetourTopics, partition = 0): string[] {
  return broker.records(topics.redirect, partition).map((r) => `${r.value === null ? '-' : '+'}${(r.headers['detour-id'] as Buffer | string).toString()}`)
}

/**
 * Delivers messages of one partition in batches, as kafkajs does with `eachBatch`: after an error, the
 * next batch starts at the first unresolved offset; the resolved offset is committed for the group.
 */
export async function deliverBatches(rig: Rig, eachBatch: EachBatchHandler, messages: KafkaMessage[], options: { partition?: number; batchSize?: number; maxAttempts?: number } = {}): Promise<unknown[]> {
  const errors: unknown[] = []
  const partition = options.partition ?? 0
  let next = 0
  for (let attempt = 1; next < messages.length; attempt++) {
    if (attempt > (options.maxAttempts ?? 10)) throw new Error(`gave up after ${attempt - 1} batches: ${String(errors.at(-1))}`)
    const slice = messages.slice(next, next + (options.batchSize ?? messages.length))
    let resolved: string | undefined
    try {
      await eachBatch({
        batch: { topic: TOPIC, partition, highWatermark: '0', messages: slice, isEmpty: () => slice.length === 0, firstOffset: () => slice[0]?.offset ?? null, lastOffset: () => slice.at(-1)!.offset, offsetLag: () => '0', offsetLagLow: () => '0' },
        resolveOffset: (offset: string) => {
          resolved = offset
        },
        heartbeat: async () => {},
        pause: () => () => {},
        commitOffsetsIfNecessary: async () => {},
        uncommittedOffsets: () => ({ topics: [] }),
        isRunning: () => true,
        isStale: () => false,
      })
      // eachBatchAutoResolve: the last offset of a batch that returned is resolved.
      resolved = slice.at(-1)!.offset
    } catch (error) {
      errors.push(error)
    }
    if (resolved !== undefined) {
      next = messages.findIndex((m) => m.offset === resolved) + 1
      rig.broker.committedOffsets.set(`${GROUP}/${topicPartitionKey(TOPIC, partition)}`, (BigInt(resolved) + 1n).toString())
    }
  }
  return errors
}

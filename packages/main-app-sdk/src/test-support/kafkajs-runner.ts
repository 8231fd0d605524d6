// Test support: kafkajs 2.2.4's own consumer Runner and Batch (the code that calls eachMessage/eachBatch,
// resolves and commits offsets, retries and crashes), driven by a stand-in consumer group instead of a broker.
import { createRequire } from 'node:module'
import type { EachBatchHandler, EachMessageHandler, KafkaMessage } from 'kafkajs'

const require = createRequire(import.meta.url)
/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-return */
const Runner: any = require('kafkajs/src/consumer/runner.js')
const Batch: any = require('kafkajs/src/consumer/batch.js')
const InstrumentationEventEmitter: any = require('kafkajs/src/instrumentation/emitter.js')
const { createLogger, LEVELS }: any = require('kafkajs/src/loggers/index.js')

/** What kafkajs' consumer/index.js `onCrash` decides: restart the consumer, or leave it stopped for good. */
export function kafkajsWouldRestart(error: any): boolean {
  const original = (e: any): any => (e.cause ? original(e.cause) : e)
  return error.name === 'KafkaJSNumberOfRetriesExceeded' || original(error).retriable === true
}

/** A kafkajs `Batch` (the real class: control records and aborted transactions are filtered as kafkajs does). */
export function kafkajsBatch(topic: string, partition: number, messages: KafkaMessage[]): any {
  return new Batch(topic, messages[0]?.offset ?? '0', {
    partition,
    highWatermark: String(Number(messages.at(-1)?.offset ?? -1) + 1),
    abortedTransactions: [],
    messages: messages.map((m) => ({ ...m, isControlRecord: false, batchContext: { producerId: '-1', inTransaction: false } })),
  })
}

export interface RunnerRig {
  readonly runner: any
  /** Offsets resolved through kafkajs (`consumerGroup.resolveOffset`), in order. */
  readonly resolved: string[]
  /** How many times kafkajs committed the resolved offsets. */
  commits: number
  readonly crashes: any[]
  /** The offset kafkajs would commit next for the partition (last resolved + 1). */
  nextCommitted(): string | undefined
}

/**
 * kafkajs' Runner over a stand-in consumer group that hands out `batches` once each, then empty fetches.
 * `retries` is the consumer's `retry.retries` (kafkajs' default is 5).
 */
export function kafkajsRunner(options: { eachMessage?: EachMessageHandler; eachBatch?: EachBatchHandler; batches?: any[]; retries?: number }): RunnerRig {
  const batches = [...(options.batches ?? [])]
  const rig: RunnerRig = {
    runner: undefined,
    resolved: [],
    commits: 0,
    crashes: [],
    nextCommitted: () => {
      const last = rig.resolved.at(-1)
      return last === undefined ? undefined : String(Number(last) + 1)
    },
  }
  const consumerGroup = {
    groupId: 'review',
    memberId: 'member-1',
    connect: async () => {},
    joinAndSync: async () => {},
    getNodeIds: () => [1],
    fetch: async () => {
      const next = batches.shift()
      if (next) return [next]
      await new Promise((resolve) => setTimeout(resolve, 5))
      return []
    },
    resolveOffset: ({ offset }: { offset: string }) => rig.resolved.push(String(offset)),
    commitOffsets: async () => {
      rig.commits++
    },
    commitOffsetsIfNecessary: async () => {},
    uncommittedOffsets: () => ({ topics: [] }),
    heartbeat: async () => {},
    hasSeekOffset: () => false,
    isPaused: () => false,
    pause: () => {},
    resume: () => {},
    leave: async () => {},
  }
  const logger = createLogger({ level: LEVELS.NOTHING, logCreator: () => () => {} })
  ;(rig as { runner: any }).runner = new Runner({
    logger,
    consumerGroup,
    instrumentationEmitter: new InstrumentationEventEmitter(),
    eachMessage: options.eachMessage,
    eachBatch: options.eachBatch,
    heartbeatInterval: 3000,
    concurrency: 1,
    retry: { retries: options.retries ?? 5, initialRetryTime: 1, maxRetryTime: 5 },
    onCrash: (error: any) => {
      rig.crashes.push(error)
      rig.runner.running = false
    },
  })
  return rig
}

const Cluster: any = require('kafkajs/src/cluster/index.js')
const OffsetManager: any = require('kafkajs/src/consumer/offsetManager/index.js')
const { Kafka }: any = require('kafkajs')

/**
 * Two kafkajs clusters as one `Kafka` instance creates them (kafkajs/src/index.js: every client gets
 * `offsets: this[PRIVATE.OFFSETS]`, one Map per Kafka instance): the consumer's and a producer's.
 */
export function kafkajsClustersOfOneKafka(): { consumerCluster: any; producerCluster: any; sharedMapIsKafkas: boolean } {
  const kafka = new Kafka({ brokers: ['127.0.0.1:1'], logLevel: 0 })
  const offsetsSymbol = Object.getOwnPropertySymbols(kafka).find((s) => String(s).includes('offsets'))!
  const offsets = kafka[offsetsSymbol]
  const logger = createLogger({ level: LEVELS.NOTHING, logCreator: () => () => {} })
  const make = (): any => new Cluster({ logger, brokers: ['127.0.0.1:1'], socketFactory: () => undefined, offsets, retry: { retries: 0 } })
  return { consumerCluster: make(), producerCluster: make(), sharedMapIsKafkas: offsets instanceof Map }
}

/** kafkajs' OffsetManager as `consumerGroup.js` SYNC creates it for a new generation (clearAllOffsets). */
export function kafkajsOffsetManager(cluster: any, topic: string, partitions: number[], brokerOffset: string, onOffsetFetch: () => void): any {
  return new OffsetManager({
    cluster,
    coordinator: {
      isConnected: () => true,
      offsetFetch: async ({ topics }: { topics: Array<{ topic: string; partitions: Array<{ partition: number }> }> }) => {
        onOffsetFetch()
        return { responses: topics.map((t) => ({ topic: t.topic, partitions: t.partitions.map((p) => ({ partition: p.partition, offset: brokerOffset })) })) }
      },
    },
    memberAssignment: { [topic]: partitions },
    autoCommit: true,
    autoCommitInterval: 5000,
    autoCommitThreshold: null,
    topicConfigurations: { [topic]: {} },
    instrumentationEmitter: new InstrumentationEventEmitter(),
    groupId: 'review',
    generationId: 2,
    memberId: 'member-1',
  })
}

// Stand-ins for the unit tier (no broker): an in-memory broker with transactions and fencing, the producers
// Detour creates on it, a follower that applies its redirect topics, and the consumer-group membership.
import type { IHeaders, KafkaMessage, Message, Producer, Transaction } from 'kafkajs'
import {
  DetourStoppingError,
  GroupStore,
  RedirectPartitionDecoder,
  topicPartitionKey,
  type DetourTopics,
  type TopicAdmin,
} from '@detour/core'
import type { FollowerBarrier } from '../partitions/partition-gate.js'
import type { GroupMembership, Ownership } from '../partitions/consumer-watch.js'

export interface StoredRecord {
  readonly topic: string
  readonly partition: number
  readonly offset: bigint
  readonly key: Buffer | null
  readonly value: Buffer | null
  readonly headers: IHeaders
}

/** A point in a hand-off where the fake broker fails, once. */
export type FaultPoint =
  | 'connect'
  | 'init'
  | 'send'
  | 'send-too-large'
  | 'offsets'
  | 'commit-lost' /** the commit is not applied and the call fails */
  | 'commit-ack-lost' /** the commit is applied but the call fails */
  | 'abort'

class KafkaLikeError extends Error {
  constructor(
    message: string,
    readonly type: string,
  ) {
    super(message)
    this.name = 'KafkaJSProtocolError'
  }
}

interface OpenTransaction {
  readonly epoch: number
  records: StoredRecord[]
  offsets: Array<{ group: string; topic: string; partition: number; offset: string }>
}

/**
 * Topics as logs of committed records, consumer-group offsets, and transactional ids with epochs: an
 * initialisation bumps the epoch and aborts the id's open transaction (fencing), as the Kafka transaction
 * coordinator does. Faults are injected per transactional id (or `*`) and used once.
 */
export class FakeBroker {
  readonly logs = new Map<string, StoredRecord[]>()
  readonly committedOffsets = new Map<string, string>()
  private readonly epochs = new Map<string, number>()
  private readonly open = new Map<string, OpenTransaction>()
  private readonly faults: Array<{ id: string; point: FaultPoint }> = []
  /** Every call, in order (`<transactionalId> <step>`), for assertions. */
  readonly calls: string[] = []

  inject(point: FaultPoint, transactionalId = '*'): void {
    this.faults.push({ id: transactionalId, point })
  }

  takeFault(id: string, point: FaultPoint): boolean {
    const index = this.faults.findIndex((f) => f.point === point && (f.id === '*' || f.id === id))
    if (index === -1) return false
    this.faults.splice(index, 1)
    return true
  }

  records(topic: string, partition = 0): StoredRecord[] {
    return (this.logs.get(topicPartitionKey(topic, partition)) ?? []).slice()
  }

  append(topic: string, partition: number, message: Omit<Message, 'partition'>): StoredRecord {
    const key = topicPartitionKey(topic, partition)
    const log = this.logs.get(key) ?? []
    this.logs.set(key, log)
    const record: StoredRecord = {
      topic,
      partition,
      offset: BigInt(log.length),
      key: toBuffer(message.key),
      value: message.value === null || message.value === undefined ? null : toBuffer(message.value),
      headers: (message.headers ?? {}),
    }
    log.push(record)
    return record
  }

  init(id: string): number {
    this.calls.push(`${id} init`)
    if (this.takeFault(id, 'init')) throw new KafkaLikeError('coordinator not available', 'COORDINATOR_NOT_AVAILABLE')
    const epoch = (this.epochs.get(id) ?? -1) + 1
    this.epochs.set(id, epoch)
    this.open.delete(id) // the previous owner's open transaction is aborted
    return epoch
  }

  checkEpoch(id: string, epoch: number): void {
    if ((this.epochs.get(id) ?? -1) !== epoch) {
      throw new KafkaLikeError('Producer attempted an operation with an old epoch', 'INVALID_PRODUCER_EPOCH')
    }
  }

  transactionOf(id: string, epoch: number): OpenTransaction {
    let txn = this.open.get(id)
    if (!txn || txn.epoch !== epoch) {
      txn = { epoch, records: [], offsets: [] }
      this.open.set(id, txn)
    }
    return txn
  }

  commit(id: string, epoch: number): void {
    const txn = this.open.get(id)
    this.open.delete(id)
    if (!txn || txn.epoch !== epoch) return
    for (const record of txn.records) this.append(record.topic, record.partition, record)
    for (const { group, topic, partition, offset } of txn.offsets) this.committedOffsets.set(`${group}/${topicPartitionKey(topic, partition)}`, offset)
  }

  abort(id: string): void {
    this.open.delete(id)
  }

  hasOpenTransaction(id: string): boolean {
    return this.open.has(id)
  }

  producer(transactionalId?: string): Producer {
    return new FakeProducer(this, transactionalId) as unknown as Producer
  }

  topicAdmin(partitions: Map<string, number>): TopicAdmin {
    return {
      partitionCount: async (topic) => partitions.get(topic),
      createTopic: async (spec) => {
        partitions.set(spec.topic, spec.partitions)
      },
      topicConfig: async () => undefined,
    }
  }
}

function toBuffer(value: Message['key'] | Message['value']): Buffer | null {
  if (value === null || value === undefined) return null
  return Buffer.isBuffer(value) ? value : Buffer.from(value)
}

/** A kafkajs producer on the fake broker: `send`, and (with a transactional id) `transaction()`. */
class FakeProducer {
  private epoch: number | undefined

  constructor(
    private readonly broker: FakeBroker,
    private readonly id: string | undefined,
  ) {}

  async connect(): Promise<void> {
    if (this.broker.takeFault(this.id ?? '*', 'connect')) throw new KafkaLikeError('connection refused', 'NETWORK')
  }

  async disconnect(): Promise<void> {}

  async send({ topic, messages }: { topic: string; messages: Message[] }): Promise<unknown> {
    this.broker.calls.push(`${this.id ?? 'shared'} send ${topic}`)
    if (this.broker.takeFault(this.id ?? 'shared', 'send-too-large')) throw new KafkaLikeError('The request included a message larger than the max message size', 'MESSAGE_TOO_LARGE')
    if (this.broker.takeFault(this.id ?? 'shared', 'send')) throw new KafkaLikeError('Request timed out', 'REQUEST_TIMED_OUT')
    for (const message of messages) this.broker.append(topic, message.partition ?? 0, message)
    return []
  }

  async transaction(): Promise<Transaction> {
    const id = this.id
    if (id === undefined) throw new Error('not transactional')
    this.epoch ??= this.broker.init(id)
    const epoch = this.epoch
    const broker = this.broker
    let active = true
    const txn = {
      sendBatch: async ({ topicMessages }: { topicMessages: Array<{ topic: string; messages: Message[] }> }) => {
        broker.calls.push(`${id} send`)
        broker.checkEpoch(id, epoch)
        if (broker.takeFault(id, 'send-too-large')) throw new KafkaLikeError('The request included a message larger than the max message size', 'MESSAGE_TOO_LARGE')
        if (broker.takeFault(id, 'send')) throw new KafkaLikeError('Request timed out', 'REQUEST_TIMED_OUT')
        const open = broker.transactionOf(id, epoch)
        for (const { topic, messages } of topicMessages) {
          for (const m of messages) {
            open.records.push({
              topic,
              partition: m.partition ?? 0,
              offset: -1n,
              key: toBuffer(m.key),
              value: m.value === null || m.value === undefined ? null : toBuffer(m.value),
              headers: (m.headers ?? {}),
            })
          }
        }
        return []
      },
      sendOffsets: async ({ consumerGroupId, topics }: { consumerGroupId: string; topics: Array<{ topic: string; partitions: Array<{ partition: number; offset: string }> }> }) => {
        broker.calls.push(`${id} offsets`)
        broker.checkEpoch(id, epoch)
        if (broker.takeFault(id, 'offsets')) throw new KafkaLikeError('Request timed out', 'REQUEST_TIMED_OUT')
        const open = broker.transactionOf(id, epoch)
        for (const { topic, partitions } of topics) for (const p of partitions) open.offsets.push({ group: consumerGroupId, topic, partition: p.partition, offset: p.offset })
      },
      commit: async () => {
        broker.calls.push(`${id} commit`)
        active = false
        broker.checkEpoch(id, epoch)
        if (broker.takeFault(id, 'commit-lost')) throw new KafkaLikeError('Request timed out', 'REQUEST_TIMED_OUT')
        broker.commit(id, epoch)
        if (broker.takeFault(id, 'commit-ack-lost')) throw new KafkaLikeError('Request timed out', 'REQUEST_TIMED_OUT')
      },
      abort: async () => {
        broker.calls.push(`${id} abort`)
        active = false
        if (broker.takeFault(id, 'abort')) throw new KafkaLikeError('Request timed out', 'REQUEST_TIMED_OUT')
        if (broker.hasOpenTransaction(id)) {
          broker.checkEpoch(id, epoch)
          broker.abort(id)
        }
      },
      isActive: () => active,
      send: async () => {
        throw new Error('use sendBatch')
      },
    }
    return txn
  }
}

/** Applies the fake broker's redirect topics to a group store, like the real follower; `catchUp` applies all. */
export class FakeFollower implements FollowerBarrier {
  private readonly positions = new Map<string, bigint>()
  catchUps = 0
  /** When set, catchUp waits for it (a follower that lags). */
  hold: Promise<void> | undefined

  constructor(
    private readonly broker: FakeBroker,
    private readonly topics: ReadonlyMap<string, DetourTopics>,
    readonly store: GroupStore,
    private readonly consumerGroup: string,
  ) {}

  async catchUp(sourceTopic: string, partition: number): Promise<bigint> {
    this.catchUps++
    if (this.hold) await this.hold
    return this.applyAll(sourceTopic, partition)
  }

  applyAll(sourceTopic: string, partition: number): bigint {
    const redirect = this.topics.get(sourceTopic)!.redirect
    const decoder = new RedirectPartitionDecoder(sourceTopic, partition, this.consumerGroup)
    const key = topicPartitionKey(sourceTopic, partition)
    const records = this.broker.records(redirect, partition)
    for (const record of records.slice(Number(this.positions.get(key) ?? 0n))) {
      const update = decoder.decodeFast(record)
      if (!update) continue
      if (update.pending) this.store.add(sourceTopic, partition, update.storeKey, update.offset)
      else this.store.release(sourceTopic, partition, update.storeKey, update.offset)
    }
    const position = BigInt(records.length)
    this.positions.set(key, position)
    return position
  }

  position(sourceTopic: string, partition: number): bigint {
    return this.positions.get(topicPartitionKey(sourceTopic, partition)) ?? 0n
  }
}

/** The consumer-group membership, as the test says it is. */
export class FakeMembership implements GroupMembership {
  stable = true
  owned = new Set<string>()
  checks = 0
  private controller = new AbortController()

  own(topic: string, ...partitions: number[]): this {
    for (const partition of partitions) this.owned.add(topicPartitionKey(topic, partition))
    return this
  }

  disown(topic: string, partition: number): void {
    this.owned.delete(topicPartitionKey(topic, partition))
  }

  async ownership(): Promise<Ownership> {
    this.checks++
    return { stable: this.stable, owned: new Set(this.owned) }
  }

  get stopping(): AbortSignal {
    return this.controller.signal
  }

  stop(): void {
    this.controller.abort(new DetourStoppingError('Stopped waiting: the consumer stops'))
  }
}

/** A source message as kafkajs delivers it. */
export function sourceMessage(offset: number, key: string | null, value = `v${offset}`): KafkaMessage {
  return {
    key: key === null ? null : Buffer.from(key),
    value: Buffer.from(value),
    headers: {},
    timestamp: '1700000000000',
    attributes: 0,
    offset: String(offset),
    size: 0,
  } as unknown as KafkaMessage
}

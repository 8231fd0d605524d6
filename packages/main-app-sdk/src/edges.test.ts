// Order at the edges of the main-app SDK: each test reproduces a sequence that broke per-key order, lost a
// message or leaked a producer before (found by an adversarial review), driven through kafkajs' own Runner
// where kafkajs' behaviour matters. kafkajs' internals are untyped: see ./test-support/kafkajs-runner.ts.
/* eslint-disable @typescript-eslint/no-unsafe-call */
import { describe, expect, it } from 'vitest'
import { EventEmitter } from 'node:events'
import { Kafka, type Consumer, type EachMessagePayload } from 'kafkajs'
import { GroupStore, buildTombstone, detourTopicsFor, noopLogger } from '@detour/core'
import { FakeBroker, FakeFollower, FakeMembership, sourceMessage } from './test-support/fakes.js'
import { GROUP, TOPIC, createRig, deliver, deliverBatches, payload, redirectLog, retryIds } from './test-support/unit-rig.js'
import { producerWithOwnOffsetsCache } from './hand-off/own-offsets-cache.js'
import { ConsumerWatch } from './partitions/consumer-watch.js'
import { PartitionGate } from './partitions/partition-gate.js'
import { SharedWriter } from './hand-off/shared-writer.js'
import { TransactionalHandOff } from './hand-off/transactional-hand-off.js'
import { kafkajsBatch, kafkajsClustersOfOneKafka, kafkajsOffsetManager, kafkajsRunner, kafkajsWouldRestart } from './test-support/kafkajs-runner.js'

const id = (offset: number): string => `${TOPIC}/0/${offset}`
const until = async (condition: () => boolean, what: string, ms = 3000): Promise<void> => {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}

describe('eachBatch: a stop in the middle of a batch', () => {
  it('throws a retriable DetourStoppingError: kafkajs resolves nothing past the last handled offset, nothing is lost', async () => {
    const broker = new FakeBroker()
    const rig = createRig(broker)
    await rig.assign(0)
    const processed: string[] = []
    const stopper: { runner?: { running: boolean } } = {}
    const eachBatch = rig.wrapBatch(async ({ message }: EachMessagePayload) => {
      const value = message.value!.toString()
      if (value === 'A') throw new Error('database down') // transient: gathered for the batch's transaction
      processed.push(value)
      if (value === 'B') stopper.runner!.running = false // consumer.disconnect()/stop() sets runner.running = false
    })
    const k = kafkajsRunner({ eachBatch })
    stopper.runner = k.runner as { running: boolean }
    k.runner.running = true
    const batch = kafkajsBatch(TOPIC, 0, [sourceMessage(0, 'k1', 'A'), sourceMessage(1, 'k2', 'B'), sourceMessage(2, 'k3', 'C'), sourceMessage(3, 'k4', 'D')])
    // kafkajs' own code: the error skips eachBatchAutoResolve and goes to its retrier (retriable).
    await expect(k.runner.processEachBatch(batch)).rejects.toMatchObject({ name: 'DetourStoppingError', retriable: true })
    expect(processed).toEqual(['B']) // C and D did not run
    expect(retryIds(broker, rig.topics)).toEqual([]) // A (gathered) was never written
    expect(redirectLog(broker, rig.topics)).toEqual([])
    expect(rig.store.pendingCount).toBe(0)
    expect(k.resolved).toEqual([]) // A is the first unresolved offset: the next owner starts there
  })
})

describe('eachBatch: a lost commit acknowledgement replays the batch', () => {
  it('a message processed before a later pending id of its group is skipped, not redirected behind it (no stale replay)', async () => {
    const broker = new FakeBroker()
    const rig = createRig(broker)
    await rig.assign(0)
    const processed: string[] = []
    const handler = async ({ message }: EachMessagePayload): Promise<void> => {
      const value = message.value!.toString()
      if (value === 'A' || value === 'J2') throw new Error('database down')
      processed.push(value)
    }
    // A (k1) fails, J1 (k2) is processed by the main app, J2 (k2) fails: one transaction for A and J2 + offset 3.
    const messages = [sourceMessage(0, 'k1', 'A'), sourceMessage(1, 'k2', 'J1'), sourceMessage(2, 'k2', 'J2')]
    broker.inject('commit-ack-lost') // EndTxn applied, its response lost (kafkajs does not retry EndTxn)
    const errors = await deliverBatches(rig, rig.wrapBatch(handler), messages)
    expect(errors).toHaveLength(1)
    expect(processed).toEqual(['J1']) // J1 processed once, by the main app, before J2 failed
    // The batch came back from offset 0: A and J2 are resumed (their ids are pending), J1 — decided before J2 —
    // is skipped: k2's history stays J1, J2.
    expect(redirectLog(broker, rig.topics)).toEqual([`+${id(0)}`, `+${id(2)}`])
    expect(retryIds(broker, rig.topics)).toEqual([id(0), id(2), id(0), id(2)])
  })
})

describe('eachBatch: ids the follower applied from the broker are never taken back', () => {
  it('after a committed-but-unacknowledged batch transaction, the group stays behind its pending ids', async () => {
    const broker = new FakeBroker()
    const rig = createRig(broker)
    await rig.assign(0)
    // The real follower applies committed records as they appear (the EndTxn timeout is 30 s).
    const commit = broker.commit.bind(broker)
    broker.commit = (txnId: string, epoch: number): void => {
      commit(txnId, epoch)
      rig.follower.applyAll(TOPIC, 0)
    }
    let attemptsA = 0
    const processed: string[] = []
    const handler = async ({ message }: EachMessagePayload): Promise<void> => {
      const value = message.value!.toString()
      if (value === 'A' && ++attemptsA === 1) throw new Error('database down') // transient: ok the next time
      processed.push(value)
    }
    const messages = [sourceMessage(0, 'k1', 'A'), sourceMessage(1, 'k1', 'B'), sourceMessage(2, 'k2', 'C'), sourceMessage(3, 'k1', 'D')]
    broker.inject('commit-ack-lost')
    await deliverBatches(rig, rig.wrapBatch(handler), messages, { batchSize: 3 })
    // The broker: A and B pending (redirect records, retry records, no tombstone) — the worker will run them.
    // The store keeps what the follower applied: A and B stay pending, and the later D of k1 follows them.
    expect(redirectLog(broker, rig.topics)).toEqual([`+${id(0)}`, `+${id(1)}`, `+${id(3)}`])
    expect(retryIds(broker, rig.topics)).toEqual([id(0), id(1), id(0), id(1), id(3)])
    expect(rig.store.pendingIds(TOPIC, 0, 'k1')).toEqual([id(0), id(1), id(3)])
    expect(processed).toEqual(['C', 'C']) // k2's C again when the batch comes back: a duplicate, in order
  })

  it('sequential eachBatch: after a failed retry-record write, the acknowledged redirect records stay pending and are resumed', async () => {
    const broker = new FakeBroker()
    const rig = createRig(broker, { mode: 'sequential' })
    await rig.assign(0)
    // Follower caught up in real time: apply after every write of the shared producer.
    const producer = (rig.handOff as unknown as { writer: { producer: { send: (r: unknown) => Promise<unknown> } } }).writer.producer
    const send = producer.send.bind(producer)
    let retryWrites = 0
    producer.send = async (request: unknown) => {
      const { topic } = request as { topic: string }
      if (topic === rig.topics.retry && ++retryWrites === 1) throw new Error('Request timed out')
      const result = await send(request)
      rig.follower.applyAll(TOPIC, 0)
      return result
    }
    let attemptsA = 0
    const processed: string[] = []
    const handler = async ({ message }: EachMessagePayload): Promise<void> => {
      const value = message.value!.toString()
      if (value === 'A' && ++attemptsA === 1) throw new Error('database down')
      processed.push(value)
    }
    await deliverBatches(rig, rig.wrapBatch(handler), [sourceMessage(0, 'k1', 'A'), sourceMessage(1, 'k1', 'B'), sourceMessage(2, 'k1', 'D')], { batchSize: 2 })
    // A and B were made pending once; their retry records are written when the batch comes back (resumed),
    // and D of k1 follows them: nothing of k1 is processed by the main app.
    expect(redirectLog(broker, rig.topics)).toEqual([`+${id(0)}`, `+${id(1)}`, `+${id(2)}`])
    expect(retryIds(broker, rig.topics)).toEqual([id(0), id(1), id(2)])
    expect(processed).toEqual([])
  })
})

describe('sequential eachBatch: a redirect batch too large for the broker', () => {
  it('is handed off one by one: each id is made pending before its retry record, nothing is lost', async () => {
    const broker = new FakeBroker()
    const rig = createRig(broker, { mode: 'sequential' })
    await rig.assign(0)
    const processed: string[] = []
    const handler = async ({ message }: EachMessagePayload): Promise<void> => {
      if (message.value!.toString() === 'A') throw new Error('down')
      processed.push(message.value!.toString())
    }
    broker.inject('send-too-large', 'shared') // the first shared write of the batch: all redirect records at once
    const errors = await deliverBatches(rig, rig.wrapBatch(handler), [sourceMessage(0, 'k1', 'A'), sourceMessage(1, 'k1', 'B'), sourceMessage(2, 'k2', 'C')])
    expect(errors).toEqual([])
    expect(redirectLog(broker, rig.topics)).toEqual([`+${id(0)}`, `+${id(1)}`])
    expect(retryIds(broker, rig.topics)).toEqual([id(0), id(1)])
    expect(rig.store.pendingIds(TOPIC, 0, 'k1')).toEqual([id(0), id(1)])
    expect(processed).toEqual(['C'])
  })
})

describe('a partition without Detour partitions ("mismatch")', () => {
  it('throws a retriable DetourTopicError: kafkajs keeps the consumer running, the other partitions are consumed', async () => {
    const broker = new FakeBroker()
    const rig = createRig(broker, { partitions: 1 })
    await rig.assign(0, 1) // partition 1 was added to the source topic only
    expect(rig.gate.readiness().map((r) => r.state)).toEqual(['ready', 'mismatch'])
    const processed: string[] = []
    const eachMessage = rig.wrap(async ({ message }) => {
      processed.push(message.value!.toString())
    })
    const paused: number[] = []
    const error = await eachMessage({ ...payload(sourceMessage(0, 'k', 'on-1'), 1), pause: () => (paused.push(1), () => {}) }).catch((e: unknown) => e)
    expect(error).toMatchObject({ name: 'DetourTopicError', retriable: true })
    expect(kafkajsWouldRestart(error)).toBe(true) // kafkajs retries (and would restart), it does not stop the consumer
    expect(paused).toEqual([1]) // the partition is paused in kafkajs until it is ready
    await eachMessage(payload(sourceMessage(0, 'k', 'on-0'), 0))
    expect(processed).toEqual(['on-0'])
  })
})

describe('a revoked partition is never adopted again by a late message of it', () => {
  it('transactional: the old owner refuses the message (DetourFencedError) without claiming, the new owner is not fenced', async () => {
    const broker = new FakeBroker()
    const old = createRig(broker, { name: 'old' })
    await old.assign(0)
    old.membership.disown(TOPIC, 0)
    old.gate.onAssignment({ [TOPIC]: [] }) // revoked (a GROUP_JOIN during an eachMessage of another fetcher)
    const fresh = createRig(broker, { name: 'new' })
    await fresh.assign(0)
    const inits = broker.calls.filter((c) => c.endsWith(' init')).length
    // kafkajs goes on with the rest of the old batch: the next message of the revoked partition.
    await expect(old.wrap(async () => {})(payload(sourceMessage(5, 'k', 'x')))).rejects.toMatchObject({ name: 'DetourFencedError' })
    expect(broker.calls.filter((c) => c.endsWith(' init')).length).toBe(inits) // no claim by the non-owner
    const errors = await deliver(fresh, fresh.wrap(async () => Promise.reject(new Error('down'))), [sourceMessage(0, 'k', 'A')])
    expect(errors).toEqual([]) // the new owner hands off undisturbed
    expect(redirectLog(broker, fresh.topics)).toEqual([`+${id(0)}`])
    expect(old.gate.readiness()).toEqual([]) // no phantom slot: detour.ready stays true
  })

  it('sequential: the old owner neither processes nor hands off messages of a partition it knows is revoked', async () => {
    const broker = new FakeBroker()
    const old = createRig(broker, { name: 'old', mode: 'sequential' })
    await old.assign(0)
    old.gate.onAssignment({ [TOPIC]: [] })
    const processed: string[] = []
    await expect(
      old.wrap(async ({ message }) => {
        processed.push(message.value!.toString())
      })(payload(sourceMessage(5, 'k', 'x'))),
    ).rejects.toMatchObject({ name: 'DetourFencedError', retriable: true })
    expect(processed).toEqual([])
  })
})

describe('partition producers are never leaked', () => {
  function gateWithHeldClaims() {
    const broker = new FakeBroker()
    const topics = detourTopicsFor([TOPIC], GROUP)
    const store = new GroupStore()
    const membership = new FakeMembership().own(TOPIC, 0)
    let release!: () => void
    const held = new Promise<void>((resolve) => (release = resolve))
    const open = new Set<number>()
    let created = 0
    const handOff = new TransactionalHandOff({
      createProducer: (txnId) => {
        const producer = broker.producer(txnId)
        const n = ++created
        const connect = producer.connect.bind(producer)
        const disconnect = producer.disconnect.bind(producer)
        const transaction = producer.transaction.bind(producer)
        producer.connect = async () => {
          await connect()
          open.add(n)
        }
        producer.disconnect = async () => {
          open.delete(n)
          await disconnect()
        }
        producer.transaction = async () => {
          await held // InitProducerId is slow (CONCURRENT_TRANSACTIONS retries, a coordinator moving)
          return transaction()
        }
        return producer
      },
      transactionalId: (topic, partition) => `detour-${GROUP}-${topic}-${partition}`,
      writer: new SharedWriter(broker.producer()),
      connectShared: async () => {},
      disconnectShared: async () => {},
      logger: noopLogger,
    })
    const gate = new PartitionGate({
      topics,
      handOff,
      follower: new FakeFollower(broker, topics, store, GROUP),
      membership,
      topicAdmin: broker.topicAdmin(new Map([[TOPIC, 1]])),
      partitionCounts: new Map([[TOPIC, 1]]),
      logger: noopLogger,
      onError: () => {},
    })
    return { gate, handOff, open, release, created: () => created }
  }

  it('a claim that completes after its partition was revoked disconnects its producer', async () => {
    const { gate, handOff, open, release } = gateWithHeldClaims()
    gate.onAssignment({ [TOPIC]: [0] })
    await until(() => open.size === 1, 'the claim to start')
    gate.onAssignment({ [TOPIC]: [] }) // revoked while InitProducerId is in flight
    release()
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(gate.assignedPartitions()).toEqual([])
    expect(handOff.isClaimed(TOPIC, 0)).toBe(false)
    expect(open.size).toBe(0)
  })

  it('two claims of one partition in flight (two assignments in a row): the superseded one disconnects, stop() the other', async () => {
    const { gate, handOff, open, release, created } = gateWithHeldClaims()
    gate.onAssignment({ [TOPIC]: [0] })
    await until(() => open.size === 1, 'the first claim')
    gate.onAssignment({ [TOPIC]: [0] }) // the next generation keeps the partition: claimed again, concurrently
    await until(() => open.size === 2, 'the second claim')
    release()
    await until(() => gate.isReady(TOPIC, 0), 'ready')
    await handOff.stop()
    expect(created()).toBe(2)
    expect(open.size).toBe(0)
  })
})

describe('a claim in flight when Detour stops', () => {
  it('completes after handOff.stop() and disconnects its producer (no sockets keep the process alive)', async () => {
    const broker = new FakeBroker()
    const topics = detourTopicsFor([TOPIC], GROUP)
    let release!: () => void
    const held = new Promise<void>((resolve) => (release = resolve))
    let open = 0
    const handOff = new TransactionalHandOff({
      createProducer: (txnId) => {
        const producer = broker.producer(txnId)
        const connect = producer.connect.bind(producer)
        const transaction = producer.transaction.bind(producer)
        producer.connect = async () => {
          await connect()
          open++
        }
        producer.disconnect = async () => {
          open--
        }
        producer.transaction = async () => {
          await held
          return transaction()
        }
        return producer
      },
      transactionalId: (topic, partition) => `detour-${GROUP}-${topic}-${partition}`,
      writer: new SharedWriter(broker.producer()),
      connectShared: async () => {},
      disconnectShared: async () => {},
      logger: noopLogger,
    })
    const gate = new PartitionGate({
      topics,
      handOff,
      follower: new FakeFollower(broker, topics, new GroupStore(), GROUP),
      membership: new FakeMembership().own(TOPIC, 0),
      topicAdmin: broker.topicAdmin(new Map([[TOPIC, 1]])),
      partitionCounts: new Map([[TOPIC, 1]]),
      logger: noopLogger,
      onError: () => {},
    })
    gate.onAssignment({ [TOPIC]: [0] })
    await until(() => open === 1, 'the claim')
    gate.stop() // Detour.stop(): gate.stop(), then disconnectAll()
    await handOff.stop()
    release()
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(open).toBe(0)
    expect(handOff.isClaimed(TOPIC, 0)).toBe(false)
  })
})

describe('a partition Detour paused for a mismatch, fixed before its re-check', () => {
  it('is resumed in kafkajs when a later assignment finds it ready', async () => {
    const broker = new FakeBroker()
    const topics = detourTopicsFor([TOPIC], GROUP)
    const t = topics.get(TOPIC)!
    const counts = new Map([[TOPIC, 2], [t.retry, 1], [t.redirect, 1]])
    const store = new GroupStore()
    const gate = new PartitionGate({
      topics,
      handOff: new TransactionalHandOff({
        createProducer: (txnId) => broker.producer(txnId),
        transactionalId: (topic, partition) => `detour-${GROUP}-${topic}-${partition}`,
        writer: new SharedWriter(broker.producer()),
        connectShared: async () => {},
        disconnectShared: async () => {},
        logger: noopLogger,
      }),
      follower: new FakeFollower(broker, topics, store, GROUP),
      membership: new FakeMembership().own(TOPIC, 0, 1),
      topicAdmin: broker.topicAdmin(counts),
      partitionCounts: new Map([[TOPIC, 1]]),
      logger: noopLogger,
      onError: () => {},
      mismatchRecheckMs: 50,
    })
    const resumed: number[] = []
    gate.onResumed = ({ partition }) => resumed.push(partition)
    gate.onAssignment({ [TOPIC]: [0, 1] })
    await until(() => gate.readiness().find((r) => r.partition === 1)?.state === 'mismatch', 'mismatch')
    // A message of partition 1 arrives: MessageProcessor.waitReady pauses it in kafkajs and tells the gate.
    gate.pausedByDetour(TOPIC, 1)
    counts.set(t.retry, 2).set(t.redirect, 2) // the operator runs the documented kafka-topics --alter
    gate.onAssignment({ [TOPIC]: [0, 1] }) // any rebalance before the re-check (another instance deploys)
    await until(() => gate.isReady(TOPIC, 1), 'partition 1 ready')
    await new Promise((resolve) => setTimeout(resolve, 120)) // well past the re-check delay
    expect(resumed).toEqual([1]) // consumer.resume() once: kafkajs fetches partition 1 again
  })
})

describe('a message waiting for room in the store', () => {
  it('sequential: is not handed off when its partition was revoked meanwhile (DetourFencedError, kafkajs delivers it again)', async () => {
    const broker = new FakeBroker()
    const rig = createRig(broker, { mode: 'sequential', maxPendingIds: 1 })
    await rig.assign(0)
    rig.store.add(TOPIC, 0, 'other', `${TOPIC}/0/99`) // the store is full
    const write = rig.wrap(async () => Promise.reject(new Error('down')))(payload(sourceMessage(5, 'k', 'x')))
    await new Promise((resolve) => setTimeout(resolve, 50)) // waiting for room (heartbeats succeed: the rebalance is over)
    rig.gate.onAssignment({ [TOPIC]: [] }) // revoked
    rig.store.release(TOPIC, 0, 'other', `${TOPIC}/0/99`) // room again
    await expect(write).rejects.toMatchObject({ name: 'DetourFencedError', retriable: true })
    expect(redirectLog(broker, rig.topics)).toEqual([])
  })
})

describe('kafkajs shares its committed-offset cache between the consumer and Detour\'s transactional producers', () => {
  it('(kafkajs) an aborted hand-off whose sendOffsets landed after a new generation\'s SyncGroup would make the consumer skip its message', async () => {
    const { consumerCluster, producerCluster, sharedMapIsKafkas } = kafkajsClustersOfOneKafka()
    expect(sharedMapIsKafkas).toBe(true)
    // A GROUP_JOIN while another fetcher's batch is still being processed (kafkajs recoverFromFetch → joinAndSync):
    // SYNC builds a new OffsetManager, which clears the (shared) committed offsets of the group.
    let offsetFetches = 0
    const offsets = kafkajsOffsetManager(consumerCluster, TOPIC, [0], '5', () => offsetFetches++)
    // The hand-off of message 5, in flight on the old producer: its sendOffsets returns now, then it aborts.
    producerCluster.markOffsetAsCommitted({ groupId: 'review', topic: TOPIC, partition: 0, offset: '6' })
    await offsets.resolveOffsets()
    expect(offsetFetches).toBe(0) // partition 0 looks resolved: OffsetFetch is not sent for it
    expect(String(offsets.nextOffset(TOPIC, 0))).toBe('6') // message 5 would never come again
  })

  it('so the hand-off producers get a committed-offset cache of their own (the consumer\'s is never touched)', () => {
    const kafka = new Kafka({ brokers: ['127.0.0.1:1'], logLevel: 0 })
    const symbol = Object.getOwnPropertySymbols(kafka).find((s) => s.description === 'private:Kafka:offsets')!
    const target = kafka as unknown as Record<symbol, unknown>
    const shared = target[symbol]
    let seenByProducer: unknown
    const create = kafka.producer.bind(kafka)
    kafka.producer = (config) => {
      seenByProducer = target[symbol]
      return create(config)
    }
    const { isolated } = producerWithOwnOffsetsCache(kafka, { transactionalId: 'detour-g-orders-0', idempotent: true, maxInFlightRequests: 1 })
    expect(isolated).toBe(true)
    expect(seenByProducer).toBeInstanceOf(Map)
    expect(seenByProducer).not.toBe(shared) // the producer's cluster marks its sendOffsets there
    expect(target[symbol]).toBe(shared) // the consumer's (and every later client's) map is back in place
  })
})

describe('an instance whose membership lease lapsed (no heartbeat for most of the session: maybe evicted)', () => {
  it('starts no handler until the coordinator confirms; evicted, every partition is lost at once (no stale replay by a zombie)', async () => {
    for (const mode of ['transactional', 'sequential'] as const) {
      const broker = new FakeBroker()
      const rig = createRig(broker, { mode, partitions: 2 })
      await rig.assign(0, 1)
      const processed: string[] = []
      const eachMessage = rig.wrap(async ({ message }) => {
        processed.push(message.value!.toString())
      })
      rig.gate.leaseLapsed()
      expect(rig.gate.isReady(TOPIC, 0)).toBe(false)
      // The coordinator evicted this member: the other partition is lost too, without a message of its own.
      rig.membership.disown(TOPIC, 0)
      rig.membership.disown(TOPIC, 1)
      await expect(eachMessage(payload(sourceMessage(5, 'k', 'late'), 0))).rejects.toMatchObject({ name: 'DetourFencedError' })
      expect(rig.gate.readiness().map((r) => r.state)).toEqual(['lost', 'lost'])
      await expect(eachMessage(payload(sourceMessage(9, 'k', 'late-1'), 1))).rejects.toMatchObject({ name: 'DetourFencedError' })
      expect(processed).toEqual([])
    }
  })

  it('goes on once the coordinator confirms the partitions are still this member\'s', async () => {
    const broker = new FakeBroker()
    const rig = createRig(broker)
    await rig.assign(0)
    const processed: string[] = []
    const eachMessage = rig.wrap(async ({ message }) => {
      processed.push(message.value!.toString())
    })
    rig.gate.leaseLapsed()
    const checks = rig.membership.checks
    await eachMessage(payload(sourceMessage(5, 'k', 'x')))
    expect(processed).toEqual(['x'])
    expect(rig.membership.checks).toBeGreaterThan(checks)
    expect(rig.gate.isReady(TOPIC, 0)).toBe(true)
  })
})

describe('ConsumerWatch: the membership lease', () => {
  class FakeConsumer extends EventEmitter {
    readonly events = { GROUP_JOIN: 'join', HEARTBEAT: 'heartbeat', CRASH: 'crash', STOP: 'stop', CONNECT: 'connect' }
    override on(event: string, listener: (...args: unknown[]) => void): this & (() => void) {
      super.on(event, listener)
      return Object.assign(() => this.off(event, listener), this)
    }
    async disconnect(): Promise<void> {}
    async stop(): Promise<void> {}
  }

  it('runs out when no heartbeat succeeded for leaseMs, and each heartbeat renews it', async () => {
    const consumer = new FakeConsumer()
    const watch = new ConsumerWatch(consumer as unknown as Consumer, 60)
    let lapses = 0
    watch.onLapse = () => lapses++
    consumer.emit('join', { payload: { memberId: 'm1' } })
    for (let i = 0; i < 4; i++) {
      await new Promise((resolve) => setTimeout(resolve, 30))
      consumer.emit('heartbeat', {})
    }
    expect(lapses).toBe(0)
    await new Promise((resolve) => setTimeout(resolve, 120))
    expect(lapses).toBe(1)
    consumer.emit('heartbeat', {})
    consumer.emit('stop', {}) // a stopped consumer has no lease to run out
    await new Promise((resolve) => setTimeout(resolve, 120))
    expect(lapses).toBe(1)
    watch.detach()
  })
})

describe('a hand-off retried and released before its commit returned (a stalled main app)', () => {
  /** The fake broker, with `sendBatch` answering where the redirect records land, as Kafka does. */
  function withBaseOffsets(broker: FakeBroker, redirectTopic: string): void {
    const producer = broker.producer.bind(broker)
    broker.producer = (transactionalId?: string) => {
      const p = producer(transactionalId)
      if (transactionalId === undefined) return p
      const transaction = p.transaction.bind(p)
      p.transaction = async () => {
        const txn = await transaction()
        const send = txn.sendBatch.bind(txn)
        txn.sendBatch = async (request) => {
          const base = broker.records(redirectTopic, 0).length
          await send(request)
          return [{ topicName: redirectTopic, partition: 0, errorCode: 0, baseOffset: String(base) }]
        }
        return txn
      }
      return p
    }
  }

  for (const api of ['eachMessage', 'eachBatch'] as const) {
    it(`${api}: the id is not recorded once the follower applied its record and tombstone (no zombie id)`, async () => {
      const broker = new FakeBroker()
      withBaseOffsets(broker, detourTopicsFor([TOPIC], GROUP).get(TOPIC)!.redirect)
      const rig = createRig(broker)
      await rig.assign(0)
      // The commit lands; before the main app gets its answer, the worker retries the record and releases
      // the id, and the follower applies both.
      const commit = broker.commit.bind(broker)
      broker.commit = (txnId: string, epoch: number): void => {
        commit(txnId, epoch)
        broker.append(rig.topics.redirect, 0, buildTombstone({ partition: 0, id: id(3), groupKey: Buffer.from('k'), consumerGroup: GROUP }))
        rig.follower.applyAll(TOPIC, 0)
      }
      const failing = async (): Promise<void> => Promise.reject(new Error('down'))
      if (api === 'eachMessage') await deliver(rig, rig.wrap(failing), [sourceMessage(3, 'k', 'A')])
      else await deliverBatches(rig, rig.wrapBatch(failing), [sourceMessage(3, 'k', 'A')])
      expect(redirectLog(broker, rig.topics)).toEqual([`+${id(3)}`, `-${id(3)}`])
      expect(rig.store.pendingCount).toBe(0)
    })
  }
})

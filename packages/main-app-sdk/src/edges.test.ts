// Adversarial review of the main-app SDK: each test demonstrates one finding (it passes when the flaw is there).
// kafkajs' internals (Runner, OffsetManager, Cluster) are untyped: see ./kafkajs-runner.ts.
/* eslint-disable @typescript-eslint/no-unsafe-call */
import { describe, expect, it } from 'vitest'
import type { EachMessagePayload } from 'kafkajs'
import { GroupStore, detourTopicsFor, noopLogger, topicPartitionKey } from '@detour/core'
import { FakeBroker, FakeFollower, FakeMembership, sourceMessage } from '../test-support/fakes.js'
import { GROUP, TOPIC, createRig, deliver, deliverBatches, payload, redirectLog, retryIds } from '../test-support/unit-rig.js'
import { PartitionGate } from '../partitions/partition-gate.js'
import { SharedWriter } from '../hand-off/shared-writer.js'
import { TransactionalHandOff } from '../hand-off/transactional-hand-off.js'
import { kafkajsBatch, kafkajsClustersOfOneKafka, kafkajsOffsetManager, kafkajsRunner, kafkajsWouldRestart } from './kafkajs-runner.js'

const id = (offset: number): string => `${TOPIC}/0/${offset}`
const until = async (condition: () => boolean, what: string, ms = 3000): Promise<void> => {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}

describe('F1 eachBatch: a stop (or seek) in the middle of a batch loses the rest of the batch', () => {
  it('BatchProcessor returns normally on !isRunning(); kafkajs then auto-resolves and commits the whole batch', async () => {
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
    await k.runner.processEachBatch(batch) // kafkajs' own code: no error, so eachBatchAutoResolve resolves batch.lastOffset()
    expect(processed).toEqual(['B']) // C and D never ran
    expect(retryIds(broker, rig.topics)).toEqual([]) // A (gathered) was taken back, never written
    expect(redirectLog(broker, rig.topics)).toEqual([])
    expect(k.resolved.at(-1)).toBe('3') // ...yet the whole batch is resolved: the next commit is offset 4
    expect(k.nextCommitted()).toBe('4') // A, C and D are lost
  })
})

describe('F2 eachBatch: a lost commit acknowledgement replays the batch and re-routes messages already processed', () => {
  it('a message processed directly is redirected behind a LATER id of its group (stale replay)', async () => {
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
    // The batch came back from offset 0: J1's group now has J2 pending, so J1 is redirected BEHIND J2.
    expect(redirectLog(broker, rig.topics)).toEqual([`+${id(0)}`, `+${id(2)}`, `+${id(1)}`])
    expect(retryIds(broker, rig.topics)).toEqual([id(0), id(2), id(0), id(1), id(2)])
    // The worker runs k2's records in order: J2, then J1 (pending), then J2's duplicate (released: skipped).
    // History of k2: J1 (main app), J2 (worker), J1 (worker) — J1 again after the later J2, J2 not again.
  })
})

describe('F3 eachBatch: takeBack() releases ids the follower already applied from the broker', () => {
  it('after a committed-but-unacknowledged batch transaction, the store forgets pending ids: the group flows past them', async () => {
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
    expect(redirectLog(broker, rig.topics)).toEqual([`+${id(0)}`, `+${id(1)}`])
    expect(retryIds(broker, rig.topics)).toEqual([id(0), id(1)])
    // The store: nothing pending for k1 (the follower's entries were taken back, and it never re-applies).
    expect(rig.store.pendingIds(TOPIC, 0, 'k1')).toEqual([])
    // So the main app processed A, B and the later D of k1 directly; the worker will run A and B after D.
    expect(processed).toEqual(['C', 'A', 'B', 'C', 'D'])
  })

  it('sequential eachBatch: a failed retry-record write after acknowledged redirect records has the same effect', async () => {
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
    // A and B are pending on the broker forever (no retry record was ever written for them: zombie ids)...
    expect(redirectLog(broker, rig.topics)).toEqual([`+${id(0)}`, `+${id(1)}`])
    expect(retryIds(broker, rig.topics)).toEqual([])
    // ...while this instance forgot them and processed A, B, D directly.
    expect(rig.store.pendingIds(TOPIC, 0, 'k1')).toEqual([])
    expect(processed).toEqual(['A', 'B', 'D'])
  })
})

describe('F4 sequential eachBatch: redirect batch too large is reported as "redirect written"', () => {
  it('retry records are written without their redirect records: the worker skips them (not pending) — lost', async () => {
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
    expect(redirectLog(broker, rig.topics)).toEqual([]) // no id was ever made pending on the broker
    expect(retryIds(broker, rig.topics)).toEqual([id(0), id(1)]) // yet their retry records were written ("resumed")
    expect(rig.store.pendingIds(TOPIC, 0, 'k1')).toEqual([id(0), id(1)]) // and this instance believes they are pending
    expect(broker.records(rig.topics.error)).toEqual([]) // nothing dead-lettered; offsets resolved: A and B are lost
  })
})

describe('F5 a partition kept in "mismatch" kills the whole consumer (kafkajs does not restart it)', () => {
  it('waitReady throws a non-retriable DetourTopicError out of eachMessage: kafkajs crashes with restart = false', async () => {
    const broker = new FakeBroker()
    const rig = createRig(broker, { partitions: 1 })
    await rig.assign(0, 1) // partition 1 was added to the source topic only
    expect(rig.gate.readiness().map((r) => r.state)).toEqual(['ready', 'mismatch'])
    const processed: string[] = []
    const eachMessage = rig.wrap(async ({ message }) => {
      processed.push(message.value!.toString())
    })
    const k = kafkajsRunner({
      eachMessage,
      batches: [kafkajsBatch(TOPIC, 1, [sourceMessage(0, 'k', 'on-1')]), kafkajsBatch(TOPIC, 0, [sourceMessage(0, 'k', 'on-0')])],
    })
    await k.runner.start()
    await until(() => k.crashes.length > 0, 'the crash')
    const crash = k.crashes[0] as { name: string; cause: { name: string; retriable: boolean } }
    expect(crash.name).toBe('KafkaJSNonRetriableError')
    expect(crash.cause.name).toBe('DetourTopicError')
    expect(kafkajsWouldRestart(crash)).toBe(false) // consumer/index.js onCrash: disconnect, no restart
    expect(processed).toEqual([]) // partition 0's message behind it is never consumed
  })
})

describe('F6 a revoked partition is re-adopted by waitReady ("not announced by an assignment")', () => {
  it('transactional: the old owner claims the revoked partition again, fencing the new owner', async () => {
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
    expect(broker.calls.filter((c) => c.endsWith(' init')).length).toBe(inits + 1) // a claim by the non-owner
    // The new owner's producer is fenced: its next hand-off fails and the message goes back to kafkajs.
    const errors = await deliver(fresh, fresh.wrap(async () => Promise.reject(new Error('down'))), [sourceMessage(0, 'k', 'A')])
    expect(errors.map((e) => (e as Error).name)).toEqual(['DetourFencedError'])
    expect(old.gate.readiness().map((r) => r.state)).toEqual(['lost']) // and a phantom slot stays: detour.ready is false
  })

  it('sequential: the old owner processes (and hands off) messages of a partition it knows is revoked', async () => {
    const broker = new FakeBroker()
    const old = createRig(broker, { name: 'old', mode: 'sequential' })
    await old.assign(0)
    old.gate.onAssignment({ [TOPIC]: [] })
    const processed: string[] = []
    await old.wrap(async ({ message }) => {
      processed.push(message.value!.toString())
    })(payload(sourceMessage(5, 'k', 'x')))
    expect(processed).toEqual(['x'])
  })
})

describe('F7 partition producers leak', () => {
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

  it('a claim that completes after its partition was revoked leaves a connected producer for it', async () => {
    const { gate, handOff, open, release } = gateWithHeldClaims()
    gate.onAssignment({ [TOPIC]: [0] })
    await until(() => open.size === 1, 'the claim to start')
    gate.onAssignment({ [TOPIC]: [] }) // revoked while InitProducerId is in flight
    release()
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(gate.assignedPartitions()).toEqual([])
    expect(handOff.isClaimed(TOPIC, 0)).toBe(true) // holds the transactional id (and its connections) until stop()
    expect(open.size).toBe(1)
  })

  it('two claims of one partition in flight (two assignments in a row): one producer is never disconnected, even by stop()', async () => {
    const { gate, handOff, open, release, created } = gateWithHeldClaims()
    gate.onAssignment({ [TOPIC]: [0] })
    await until(() => open.size === 1, 'the first claim')
    gate.onAssignment({ [TOPIC]: [0] }) // the next generation keeps the partition: claimed again, concurrently
    await until(() => open.size === 2, 'the second claim')
    release()
    await until(() => gate.isReady(TOPIC, 0), 'ready')
    await handOff.stop()
    expect(created()).toBe(2)
    expect(open.size).toBe(1) // leaked: overwritten in the writers map without a disconnect
  })
})

describe('F7 (shutdown) a claim in flight when Detour stops', () => {
  it('completes after handOff.stop() and leaves a connected producer (its sockets keep the process alive)', async () => {
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
    expect(open).toBe(1)
    expect(handOff.isClaimed(TOPIC, 0)).toBe(true)
  })
})

describe('F8 a mismatched partition fixed before its 30 s re-check stays paused in kafkajs forever after a rebalance', () => {
  it('the re-check timer is dropped by the new generation, and only the re-check resumes the kafkajs partition', async () => {
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
    // (A message of partition 1 arrives: MessageProcessor.waitReady calls payload.pause() — kafkajs pauses it.)
    counts.set(t.retry, 2).set(t.redirect, 2) // the operator runs the documented kafka-topics --alter
    gate.onAssignment({ [TOPIC]: [0, 1] }) // any rebalance before the re-check (another instance deploys)
    await until(() => gate.isReady(TOPIC, 1), 'partition 1 ready')
    await new Promise((resolve) => setTimeout(resolve, 120)) // well past the re-check delay
    expect(resumed).toEqual([]) // nobody calls consumer.resume(): kafkajs never fetches partition 1 again
  })
})

describe('F9 a message waiting for room in the store is not re-checked against its partition before the write', () => {
  it('sequential: the partition is revoked during waitForRoom, the hand-off is still written by the non-owner', async () => {
    const broker = new FakeBroker()
    const rig = createRig(broker, { mode: 'sequential', maxPendingIds: 1 })
    await rig.assign(0)
    rig.store.add(TOPIC, 0, 'other', `${TOPIC}/0/99`) // the store is full
    const write = rig.wrap(async () => Promise.reject(new Error('down')))(payload(sourceMessage(5, 'k', 'x')))
    await new Promise((resolve) => setTimeout(resolve, 50)) // waiting for room (heartbeats succeed: the rebalance is over)
    rig.gate.onAssignment({ [TOPIC]: [] }) // revoked
    rig.store.release(TOPIC, 0, 'other', `${TOPIC}/0/99`) // room again
    await write
    expect(redirectLog(broker, rig.topics)).toEqual([`+${TOPIC}/0/5`]) // written for a partition it no longer owns
  })
})

describe('F10 kafkajs shares its committed-offset cache between the consumer and Detour\'s transactional producers', () => {
  it('an in-flight hand-off whose sendOffsets lands after a new generation\'s SyncGroup, then aborts, makes the consumer skip its message', async () => {
    const { consumerCluster, producerCluster, sharedMapIsKafkas } = kafkajsClustersOfOneKafka()
    expect(sharedMapIsKafkas).toBe(true)
    // A GROUP_JOIN while another fetcher's batch is still being processed (kafkajs recoverFromFetch → joinAndSync):
    // SYNC builds a new OffsetManager, which clears the (shared) committed offsets of the group.
    let offsetFetches = 0
    const offsets = kafkajsOffsetManager(consumerCluster, TOPIC, [0], '5', () => offsetFetches++)
    // The hand-off of message 5, in flight on the old producer: its sendOffsets returns now (producer/index.js:190-203).
    producerCluster.markOffsetAsCommitted({ groupId: 'review', topic: TOPIC, partition: 0, offset: '6' })
    // ...and its transaction is then aborted (Detour's own re-claim after the GROUP_JOIN retires the producer and
    // InitProducerId aborts the open transaction): the broker's committed offset stays 5.
    await offsets.resolveOffsets() // the first fetch of the new generation (consumerGroup.seekOffsets)
    expect(offsetFetches).toBe(0) // partition 0 looks resolved: OffsetFetch is not sent for it
    expect(String(offsets.nextOffset(TOPIC, 0))).toBe('6') // the consumer fetches from 6: message 5 is never delivered again
  })
})

describe('F10b after a hand-off transaction, kafkajs never commits that offset itself (shared cache says "committed")', () => {
  it('so a regular commit of a lower offset appended after the TxnOffsetCommit (it wins on the broker) is never repaired', async () => {
    const { consumerCluster, producerCluster } = kafkajsClustersOfOneKafka()
    const offsets = kafkajsOffsetManager(consumerCluster, TOPIC, [0], '2', () => {})
    await offsets.resolveOffsets() // committed 2 (from the broker)
    // eachBatch: messages 2..5, 2 and 4 gathered; the batch's transaction carries offset 6 (sendOffsets marks it).
    producerCluster.markOffsetAsCommitted({ groupId: 'review', topic: TOPIC, partition: 0, offset: '6' })
    offsets.resolveOffset({ topic: TOPIC, partition: 0, offset: '5' }) // flush(): resolveOffset(lastOffset)
    expect(offsets.uncommittedOffsets().topics).toEqual([]) // nothing left for the consumer to commit
  })
})

describe('context: what the store looks like for the ids the tests use', () => {
  it('keys', () => {
    expect(topicPartitionKey(TOPIC, 0)).toContain(TOPIC)
  })
})

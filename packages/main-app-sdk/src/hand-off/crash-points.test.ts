import { describe, expect, it } from 'vitest'
import type { EachMessagePayload } from 'kafkajs'
import { FakeBroker, sourceMessage, type FaultPoint } from '../test-support/fakes.js'
import { GROUP, TOPIC, createRig, deliver, redirectLog, retryIds } from '../test-support/unit-rig.js'

/**
 * The crash-point table of docs/ARCHITECTURE.md, against the real router, gate, processor and hand-off on
 * an in-memory broker with transactions and fencing (the broker tier proves the same on Kafka).
 *
 * Workload: A (k1) fails in the handler, B (k1) must follow A, C (k2) is independent.
 * After every fault: A and B are in the retry topic in that order and pending, C was processed, nothing
 * is pending twice, and the source offset is past C.
 */
const messages = [sourceMessage(0, 'k1', 'A'), sourceMessage(1, 'k1', 'B'), sourceMessage(2, 'k2', 'C')]
const A = `${TOPIC}/0/0`
const B = `${TOPIC}/0/1`

/** A fails every time in the main app (it needs the retry worker); everything else succeeds. */
function handler(processed: string[]) {
  return async ({ message }: EachMessagePayload): Promise<void> => {
    const value = message.value!.toString()
    if (value === 'A') throw new Error('database down')
    processed.push(value)
  }
}

async function run(mode: 'transactional' | 'sequential', fault?: FaultPoint) {
  const broker = new FakeBroker()
  const rig = createRig(broker, { mode })
  await rig.assign(0)
  if (fault) broker.inject(fault, mode === 'transactional' ? `detour-${GROUP}-${TOPIC}-0` : 'shared')
  const processed: string[] = []
  const errors = await deliver(rig, rig.wrap(handler(processed)), messages)
  return { broker, rig, processed, errors }
}

describe('crash points of a transactional hand-off', () => {
  it('without a fault: A (failure) and B (ordering) are handed off in one transaction each, C is processed', async () => {
    const { broker, rig, processed, errors } = await run('transactional')
    expect(errors).toEqual([])
    expect(processed).toEqual(['C'])
    expect(retryIds(broker, rig.topics)).toEqual([A, B])
    expect(redirectLog(broker, rig.topics)).toEqual([`+${A}`, `+${B}`])
    // The source offset is committed inside each transaction.
    expect(broker.calls.filter((c) => c.endsWith('commit'))).toHaveLength(2)
    expect(broker.committedOffsets.get(`${GROUP}/${TOPIC}\u00000`)).toBe('3')
  })

  for (const fault of ['send', 'offsets', 'commit-lost'] as const) {
    it(`${fault}: the transaction is aborted, the partition syncs again, A is handed off once`, async () => {
      const { broker, rig, processed, errors } = await run('transactional', fault)
      expect(errors).toHaveLength(1)
      expect((errors[0] as Error).name).toBe('DetourHandOffError')
      expect(processed).toEqual(['C'])
      expect(retryIds(broker, rig.topics)).toEqual([A, B])
      expect(redirectLog(broker, rig.topics)).toEqual([`+${A}`, `+${B}`])
      expect(rig.store.pendingIds(TOPIC, 0, 'k1')).toEqual([A, B])
    })
  }

  it('commit applied but its acknowledgement lost: the next claim settles it, A is resumed (a duplicate retry record, never a second pending id)', async () => {
    const { broker, rig, processed, errors } = await run('transactional', 'commit-ack-lost')
    expect(errors).toHaveLength(1)
    expect(processed).toEqual(['C'])
    // A's transaction did commit: after the claim and the sync, A's own id is pending → its retry record again.
    expect(retryIds(broker, rig.topics)).toEqual([A, A, B])
    expect(redirectLog(broker, rig.topics)).toEqual([`+${A}`, `+${B}`])
    expect(rig.store.pendingIds(TOPIC, 0, 'k1')).toEqual([A, B])
  })

  it('a record too large for the retry topic: aborted and dead-lettered (the value is dropped only if the error topic refuses it too), nothing pending', async () => {
    const { broker, rig, processed, errors } = await run('transactional', 'send-too-large')
    expect(errors).toEqual([])
    // A can never be written to the retry topic: dead-lettered, and its group is not held by it.
    expect(processed).toEqual(['B', 'C'])
    const dead = broker.records(rig.topics.error)
    expect(dead.map((r) => [r.headers['detour-reason']?.toString(), r.headers['detour-id']?.toString()])).toEqual([['record-too-large', A]])
    expect(redirectLog(broker, rig.topics)).toEqual([])
  })
})

describe('crash points of a sequential hand-off', () => {
  it('without a fault: redirect record, then retry record, for A and B', async () => {
    const { broker, rig, processed, errors } = await run('sequential')
    expect(errors).toEqual([])
    expect(processed).toEqual(['C'])
    expect(retryIds(broker, rig.topics)).toEqual([A, B])
    expect(redirectLog(broker, rig.topics)).toEqual([`+${A}`, `+${B}`])
  })

  it('the redirect write fails: nothing written, A is handed off on its next delivery', async () => {
    const { broker, rig, errors } = await run('sequential', 'send')
    expect(errors).toHaveLength(1)
    expect(retryIds(broker, rig.topics)).toEqual([A, B])
    expect(redirectLog(broker, rig.topics)).toEqual([`+${A}`, `+${B}`])
  })
})

describe('fencing', () => {
  it('an evicted owner that finishes its hand-off after the new owner claimed the partition is fenced and writes nothing', async () => {
    const broker = new FakeBroker()
    const old = createRig(broker, { name: 'old' })
    await old.assign(0)
    // The new owner claims the partition (fencing the old one's transactional id) and syncs.
    const fresh = createRig(broker, { name: 'new' })
    old.membership.disown(TOPIC, 0)
    await fresh.assign(0)
    // The old owner, still inside eachMessage, now fails A and tries to hand it off.
    const processedOld: string[] = []
    const eachMessageOld = old.wrap(handler(processedOld))
    await expect(eachMessageOld({ topic: TOPIC, partition: 0, message: messages[0]!, heartbeat: async () => {}, pause: () => () => {} })).rejects.toMatchObject({
      name: 'DetourFencedError',
    })
    expect(redirectLog(broker, fresh.topics)).toEqual([])
    // Its next message: ownership is checked before anything is claimed again — it is not the owner: no new claim.
    const inits = broker.calls.filter((c) => c.endsWith('init')).length
    await expect(eachMessageOld({ topic: TOPIC, partition: 0, message: messages[1]!, heartbeat: async () => {}, pause: () => () => {} })).rejects.toMatchObject({
      name: 'DetourFencedError',
    })
    expect(broker.calls.filter((c) => c.endsWith('init')).length).toBe(inits)
    // The new owner handles everything, in order.
    const processed: string[] = []
    await deliver(fresh, fresh.wrap(handler(processed)), messages)
    expect(processed).toEqual(['C'])
    expect(retryIds(broker, fresh.topics)).toEqual([A, B])
  })

  it('claiming a partition aborts the previous owner’s open transaction', async () => {
    const broker = new FakeBroker()
    const old = createRig(broker, { name: 'old' })
    await old.assign(0)
    const id = `detour-${GROUP}-${TOPIC}-0`
    const producer = broker.producer(id)
    await producer.connect()
    const txn = await producer.transaction()
    await txn.sendBatch({ topicMessages: [{ topic: old.topics.redirect, messages: [{ key: 'x', value: 'y' }] }] })
    expect(broker.hasOpenTransaction(id)).toBe(true)
    const fresh = createRig(broker, { name: 'new' })
    await fresh.assign(0)
    expect(broker.hasOpenTransaction(id)).toBe(false)
    await expect(txn.commit()).rejects.toMatchObject({ type: 'INVALID_PRODUCER_EPOCH' })
    expect(redirectLog(broker, fresh.topics)).toEqual([])
  })
})

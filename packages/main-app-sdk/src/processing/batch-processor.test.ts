import { describe, expect, it } from 'vitest'
import type { EachMessagePayload } from 'kafkajs'
import { FakeBroker, sourceMessage } from '../test-support/fakes.js'
import { GROUP, TOPIC, createRig, deliverBatches, redirectLog, retryIds } from '../test-support/unit-rig.js'

/** k1's first message fails; the rest of k1 must follow it; k2 flows. */
const messages = [
  sourceMessage(0, 'k1', 'A'),
  sourceMessage(1, 'k1', 'B'),
  sourceMessage(2, 'k2', 'C'),
  sourceMessage(3, 'k1', 'D'),
  sourceMessage(4, 'k2', 'E'),
  sourceMessage(5, 'k1', 'F'),
]
const k1 = [0, 1, 3, 5].map((o) => `${TOPIC}/0/${o}`)

function handler(processed: string[]) {
  return async ({ message }: EachMessagePayload): Promise<void> => {
    if (message.value!.toString() === 'A') throw new Error('down')
    processed.push(message.value!.toString())
  }
}

describe('eachBatch: the hand-offs of a batch share one write', () => {
  it('transactional: one transaction for the whole batch; the order and the outcome are those of eachMessage', async () => {
    const broker = new FakeBroker()
    const rig = createRig(broker)
    await rig.assign(0)
    const processed: string[] = []
    const errors = await deliverBatches(rig, rig.wrapBatch(handler(processed)), messages)
    expect(errors).toEqual([])
    expect(processed).toEqual(['C', 'E'])
    expect(retryIds(broker, rig.topics)).toEqual(k1)
    expect(redirectLog(broker, rig.topics)).toEqual(k1.map((id) => `+${id}`))
    expect(broker.calls.filter((c) => c.endsWith(' commit'))).toHaveLength(1)
    expect(broker.committedOffsets.get(`${GROUP}/${TOPIC}\u00000`)).toBe('6')
  })

  it('a failed transaction takes the ids back; the batch is delivered again and handed off once', async () => {
    const broker = new FakeBroker()
    const rig = createRig(broker)
    await rig.assign(0)
    broker.inject('commit-lost')
    const processed: string[] = []
    const errors = await deliverBatches(rig, rig.wrapBatch(handler(processed)), messages)
    expect(errors).toHaveLength(1)
    // C and E were processed before the failed write, and again on the second delivery: duplicates, in order.
    expect(processed).toEqual(['C', 'E', 'C', 'E'])
    expect(retryIds(broker, rig.topics)).toEqual(k1)
    expect(rig.store.pendingIds(TOPIC, 0, 'k1')).toEqual(k1)
  })

  it('a batch too large for one transaction falls back to one hand-off per message', async () => {
    const broker = new FakeBroker()
    const rig = createRig(broker)
    await rig.assign(0)
    broker.inject('send-too-large')
    const processed: string[] = []
    await deliverBatches(rig, rig.wrapBatch(handler(processed)), messages)
    expect(retryIds(broker, rig.topics)).toEqual(k1)
    expect(redirectLog(broker, rig.topics)).toEqual(k1.map((id) => `+${id}`))
  })

  it('sequential: all redirect records in one request before all retry records in one request', async () => {
    const broker = new FakeBroker()
    const rig = createRig(broker, { mode: 'sequential' })
    await rig.assign(0)
    const processed: string[] = []
    await deliverBatches(rig, rig.wrapBatch(handler(processed)), messages)
    expect(processed).toEqual(['C', 'E'])
    expect(broker.calls.filter((c) => c.startsWith('shared send'))).toEqual([`shared send ${rig.topics.redirect}`, `shared send ${rig.topics.retry}`])
    expect(retryIds(broker, rig.topics)).toEqual(k1)
  })

  it('splits hand-offs across transactions when the store fills up, instead of waiting for room its own writes hold', async () => {
    const broker = new FakeBroker()
    const rig = createRig(broker, { maxPendingIds: 2 })
    await rig.assign(0)
    const processed: string[] = []
    const eachBatch = rig.wrapBatch(handler(processed))
    // The worker releases what is written, as it would.
    const release = setInterval(() => {
      for (const id of retryIds(broker, rig.topics)) {
        const offset = id.split('/')[2]!
        rig.store.release(TOPIC, 0, 'k1', offset)
      }
    }, 5)
    try {
      await deliverBatches(rig, eachBatch, messages)
    } finally {
      clearInterval(release)
    }
    expect(retryIds(broker, rig.topics)).toEqual(k1)
    expect(broker.calls.filter((c) => c.endsWith(' commit')).length).toBeGreaterThan(1)
  })
})

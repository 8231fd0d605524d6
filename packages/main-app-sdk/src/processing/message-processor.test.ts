import { describe, expect, it } from 'vitest'
import type { EachMessagePayload } from 'kafkajs'
import { topicPartitionKey } from '@detour/core'
import { FakeBroker, sourceMessage } from '../test-support/fakes.js'
import { TOPIC, createRig, deliver, payload, redirectLog, retryIds } from '../test-support/unit-rig.js'

class RebalanceInProgress extends Error {
  readonly type = 'REBALANCE_IN_PROGRESS'
  constructor() {
    super('The group is rebalancing, so a rejoin is needed')
    this.name = 'KafkaJSProtocolError'
  }
}

describe('message processing', () => {
  it('hands a rebalance error from the handler (payload.heartbeat() during a rebalance) back to kafkajs instead of redirecting', async () => {
    const rig = createRig(new FakeBroker())
    await rig.assign(0)
    const eachMessage = rig.wrap(async () => {
      throw new RebalanceInProgress()
    })
    await expect(eachMessage(payload(sourceMessage(0, 'k1')))).rejects.toBeInstanceOf(RebalanceInProgress)
    expect(retryIds(rig.broker, rig.topics)).toEqual([])
    expect(rig.store.pendingCount).toBe(0)
  })

  it('dead-letters a message whose group-key function returns something that is not a key, and goes on', async () => {
    const broker = new FakeBroker()
    const rig = createRig(broker, { groupKey: (m) => (m.offset === '0' ? ({ not: 'a key' } as unknown as string) : m.key) })
    await rig.assign(0)
    // A partition with a pending id computes group keys.
    rig.store.add(TOPIC, 0, 'other', `${TOPIC}/0/99`)
    const processed: string[] = []
    const wrapped = rig.wrap(async ({ message }) => {
      processed.push(message.value!.toString())
    })
    // The group-key function returns an object for offset 0: refused with a typed error.
    await deliver(rig, wrapped, [sourceMessage(0, 'k1'), sourceMessage(1, 'k2')])
    const dead = broker.records(rig.topics.error)
    expect(dead.map((r) => [r.headers['detour-reason']?.toString(), r.headers['detour-error-name']?.toString()])).toEqual([['unprocessable', 'DetourConfigError']])
    expect(processed).toEqual(['v1'])
  })

  it('ends the wait for room in the group store with a retriable DetourStoppingError once the consumer stops', async () => {
    const rig = createRig(new FakeBroker(), { maxPendingIds: 1 })
    await rig.assign(0)
    rig.store.add(TOPIC, 0, 'k0', `${TOPIC}/0/50`)
    const wrapped = rig.wrap(async () => {
      throw new Error('transient')
    })
    const waiting = wrapped(payload(sourceMessage(0, 'k1')))
    await new Promise((resolve) => setTimeout(resolve, 50))
    rig.membership.stop()
    await expect(waiting).rejects.toMatchObject({ name: 'DetourStoppingError', retriable: true })
    expect(retryIds(rig.broker, rig.topics)).toEqual([])
  })

  it('ends the wait for a partition that is not ready with a DetourStoppingError once the consumer stops', async () => {
    const rig = createRig(new FakeBroker())
    let release!: () => void
    rig.follower.hold = new Promise((resolve) => (release = resolve))
    rig.membership.own(TOPIC, 0)
    rig.gate.onAssignment({ [TOPIC]: [0] })
    const waiting = rig.wrap(async () => {})(payload(sourceMessage(0, 'k1')))
    await new Promise((resolve) => setTimeout(resolve, 30))
    rig.membership.stop()
    await expect(waiting).rejects.toMatchObject({ name: 'DetourStoppingError' })
    release()
  })

  it('a message of a partition this member does not own (the group is stable) goes back to kafkajs with DetourFencedError', async () => {
    const rig = createRig(new FakeBroker())
    rig.gate.onAssignment({ [TOPIC]: [0] }) // assigned by kafkajs, but the coordinator says otherwise
    await new Promise((resolve) => setTimeout(resolve, 30))
    await expect(rig.wrap(async () => {})(payload(sourceMessage(0, 'k1')))).rejects.toMatchObject({ name: 'DetourFencedError' })
  })

  it('pauses a source partition added at runtime until the retry and redirect topics have it too', async () => {
    const broker = new FakeBroker()
    const rig = createRig(broker, { partitions: 1 })
    rig.membership.own(TOPIC, 0, 1)
    rig.gate.onAssignment({ [TOPIC]: [0, 1] })
    await new Promise((resolve) => setTimeout(resolve, 30))
    const states = Object.fromEntries(rig.gate.readiness().map((r) => [r.partition, r.state]))
    expect(states).toEqual({ 0: 'ready', 1: 'mismatch' })
    let paused = false
    const p: EachMessagePayload = {
      ...payload(sourceMessage(0, 'k1'), 1),
      pause: () => {
        paused = true
        return () => {}
      },
    }
    await expect(rig.wrap(async () => {})(p)).rejects.toMatchObject({ name: 'DetourTopicError', message: expect.stringContaining('kafka-topics --alter') as string })
    expect(paused).toBe(true)
    expect(rig.errors.map((e) => e.name)).toContain('DetourTopicError')
  })

  it('follows a group across the partition’s pending ids: B waits behind A, C of another key does not', async () => {
    const broker = new FakeBroker()
    const rig = createRig(broker)
    await rig.assign(0)
    const processed: string[] = []
    await deliver(
      rig,
      rig.wrap(async ({ message }) => {
        if (message.value!.toString() === 'A') throw new Error('down')
        processed.push(message.value!.toString())
      }),
      [sourceMessage(0, 'k1', 'A'), sourceMessage(1, 'k2', 'C'), sourceMessage(2, 'k1', 'B')],
    )
    expect(processed).toEqual(['C'])
    expect(redirectLog(broker, rig.topics)).toEqual([`+${TOPIC}/0/0`, `+${TOPIC}/0/2`])
    expect(rig.store.partitionGroups(TOPIC, 0)).toBe(1)
    expect(topicPartitionKey(TOPIC, 0)).toBe(`${TOPIC}\u00000`)
  })
})

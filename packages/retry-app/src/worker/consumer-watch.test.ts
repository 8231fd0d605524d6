import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import type { IMemberAssignment } from 'kafkajs'
import { noopLogger } from '@detour/core'
import { ConsumerWatch, type WatchedConsumer } from './consumer-watch.js'

const events = {
  GROUP_JOIN: 'consumer.group_join',
  REBALANCING: 'consumer.rebalancing',
  CRASH: 'consumer.crash',
  HEARTBEAT: 'consumer.heartbeat',
} as const

/** A kafkajs consumer stand-in: the test emits its instrumentation events. */
class FakeConsumer {
  readonly emitter = new EventEmitter()
  readonly events = events
  on(event: string, listener: (event: { payload: unknown }) => void): () => void {
    this.emitter.on(event, listener)
    return () => this.emitter.off(event, listener)
  }
  join(assignment: IMemberAssignment = { t: [0] }): void {
    this.emitter.emit(events.GROUP_JOIN, { payload: { memberAssignment: assignment } })
  }
  rebalancing(): void {
    this.emitter.emit(events.REBALANCING, { payload: {} })
  }
  crash(restart: boolean): void {
    this.emitter.emit(events.CRASH, { payload: { error: new Error('boom'), restart } })
  }
}

function setup(): { consumer: FakeConsumer; watch: ConsumerWatch; log: string[] } {
  const consumer = new FakeConsumer()
  const log: string[] = []
  const watch = new ConsumerWatch(
    consumer as unknown as WatchedConsumer,
    { onJoin: (a) => log.push(`join ${JSON.stringify(a)}`), onCrash: (_e, restart) => log.push(`crash ${restart}`) },
    noopLogger,
  )
  return { consumer, watch, log }
}

describe('ConsumerWatch', () => {
  it('is stable from a join until REBALANCING, and again after the next join', async () => {
    const { consumer, watch, log } = setup()
    expect(watch.stable).toBe(false)
    consumer.join()
    expect(watch.stable).toBe(true)
    consumer.rebalancing()
    expect(watch.stable).toBe(false)
    expect(watch.rebalancing).toBe(true)
    const order: string[] = []
    const waiting = watch.whenStable(new AbortController().signal).then(() => order.push('woken'))
    await Promise.resolve()
    expect(order).toEqual([])
    consumer.join({ t: [1] })
    await waiting
    // The worker saw the new assignment (revocations) before a waiting attempt was woken.
    expect(log).toEqual(['join {"t":[0]}', 'join {"t":[1]}'])
    expect(order).toEqual(['woken'])
  })

  it('ends a wait on abort', async () => {
    const { watch } = setup()
    const controller = new AbortController()
    const waiting = watch.whenStable(controller.signal)
    controller.abort()
    await expect(waiting).rejects.toThrow('Aborted')
  })

  it('is not stable while kafkajs restarts a crashed consumer; awaitRestart waits for the join', async () => {
    const { consumer, watch, log } = setup()
    consumer.join()
    consumer.crash(true)
    expect(watch.stable).toBe(false)
    expect(watch.restarting).toBe(true)
    const settled = watch.awaitRestart(5000)
    setTimeout(() => consumer.join(), 10)
    expect(await settled).toBe(true)
    expect(watch.restarting).toBe(false)
    consumer.crash(true)
    expect(await watch.awaitRestart(20)).toBe(false)
    consumer.crash(false)
    expect(watch.restarting).toBe(false)
    expect(log.filter((l) => l.startsWith('crash'))).toEqual(['crash true', 'crash true', 'crash false'])
  })

  it('refuses kafkajs restarts once closing, and tracks heartbeats', async () => {
    const { consumer, watch } = setup()
    const restart = watch.restartOnFailure(async () => true)
    expect(await restart(new Error('x'))).toBe(true)
    watch.closing = true
    expect(await restart(new Error('x'))).toBe(false)
    expect(watch.lastHeartbeat).toBeUndefined()
    consumer.emitter.emit(events.HEARTBEAT, { payload: {} })
    expect(watch.lastHeartbeat).toBeInstanceOf(Date)
    watch.detach()
    expect(consumer.emitter.listenerCount(events.GROUP_JOIN)).toBe(0)
  })
})

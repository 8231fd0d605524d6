import { EventEmitter } from 'node:events'
import type { IMemberAssignment } from 'kafkajs'

/** The instrumentation events of a kafkajs 2.2.4 consumer that the worker listens to. */
export const consumerEvents = {
  GROUP_JOIN: 'consumer.group_join',
  REBALANCING: 'consumer.rebalancing',
  CRASH: 'consumer.crash',
  HEARTBEAT: 'consumer.heartbeat',
  FETCH_START: 'consumer.fetch_start',
} as const

/** A kafkajs consumer stand-in: the test emits its instrumentation events (payloads as kafkajs 2.2.4 builds them). */
export class FakeConsumer {
  readonly emitter = new EventEmitter()
  readonly events = consumerEvents
  on(event: string, listener: (event: { payload: unknown }) => void): () => void {
    this.emitter.on(event, listener)
    return () => this.emitter.off(event, listener)
  }
  join(memberAssignment: IMemberAssignment = { t: [0] }, memberId = 'member-1'): void {
    this.emitter.emit(consumerEvents.GROUP_JOIN, { payload: { memberId, memberAssignment } })
  }
  heartbeat(): void {
    this.emitter.emit(consumerEvents.HEARTBEAT, { payload: {} })
  }
  rebalancing(): void {
    this.emitter.emit(consumerEvents.REBALANCING, { payload: {} })
  }
  fetchStart(): void {
    this.emitter.emit(consumerEvents.FETCH_START, { payload: {} })
  }
  crash(restart: boolean, error = new Error('KafkaJSNumberOfRetriesExceeded')): void {
    this.emitter.emit(consumerEvents.CRASH, { payload: { error, restart } })
  }
}

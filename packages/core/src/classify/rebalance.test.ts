import { KafkaJSAggregateError, KafkaJSError, KafkaJSNumberOfRetriesExceeded, KafkaJSProtocolError } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { isRebalanceError } from './rebalance.js'

function protocolError(type: string, code: number): KafkaJSProtocolError {
  return new KafkaJSProtocolError(Object.assign(new Error(`broker says ${type}`), { type, code, retriable: false }))
}

describe('isRebalanceError', () => {
  it.each<[string, number]>([
    ['REBALANCE_IN_PROGRESS', 27],
    ['ILLEGAL_GENERATION', 22],
    ['UNKNOWN_MEMBER_ID', 25],
    ['FENCED_INSTANCE_ID', 82],
    ['NOT_COORDINATOR_FOR_GROUP', 16],
    ['NOT_COORDINATOR', 16],
    ['COORDINATOR_NOT_AVAILABLE', 15],
    ['COORDINATOR_LOAD_IN_PROGRESS', 14],
  ])('is true for a kafkajs %s', (type, code) => {
    expect(isRebalanceError(protocolError(type, code))).toBe(true)
  })

  it('recognises an error named KafkaJSRebalanceInProgress', () => {
    expect(isRebalanceError(Object.assign(new Error('rebalancing'), { name: 'KafkaJSRebalanceInProgress' }))).toBe(true)
  })

  it('looks through originalError, cause and aggregated errors', () => {
    const rebalance = protocolError('REBALANCE_IN_PROGRESS', 27)
    expect(isRebalanceError({ originalError: rebalance })).toBe(true)
    expect(isRebalanceError(new KafkaJSNumberOfRetriesExceeded(rebalance, { retryCount: 5, retryTime: 300 }))).toBe(true)
    expect(isRebalanceError(Object.assign(new KafkaJSError('commit failed'), { cause: rebalance }))).toBe(true)
    expect(isRebalanceError(new Error('heartbeat', { cause: { originalError: rebalance } }))).toBe(true)
    expect(isRebalanceError(new KafkaJSAggregateError('several brokers', [protocolError('LEADER_NOT_AVAILABLE', 5), rebalance]))).toBe(true)
  })

  it('is false for other broker errors, plain errors and non-errors', () => {
    for (const error of [
      protocolError('LEADER_NOT_AVAILABLE', 5),
      protocolError('MESSAGE_TOO_LARGE', 10),
      protocolError('INVALID_PRODUCER_EPOCH', 47),
      new KafkaJSError('Connection closed'),
      new Error('REBALANCE_IN_PROGRESS'),
      { code: 27 },
      { type: 'rebalance_in_progress' },
      new KafkaJSAggregateError('several brokers', [new Error('a'), 'REBALANCE_IN_PROGRESS']),
      null,
      undefined,
      'REBALANCE_IN_PROGRESS',
    ]) {
      expect(isRebalanceError(error)).toBe(false)
    }
  })
})

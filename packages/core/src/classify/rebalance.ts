import { someInChain } from './error-chain.js'

/**
 * kafkajs error types that mean "the consumer group is rebalancing, or this member left it": the message
 * must go back to kafkajs, which rejoins and hands the partition to its (possibly new) owner. Retrying it
 * elsewhere, or redirecting it, would decide for a partition this instance may no longer own.
 */
const REBALANCE_TYPES = new Set([
  'REBALANCE_IN_PROGRESS',
  'ILLEGAL_GENERATION',
  'UNKNOWN_MEMBER_ID',
  'FENCED_INSTANCE_ID',
  'NOT_COORDINATOR_FOR_GROUP',
  'NOT_COORDINATOR',
  'COORDINATOR_NOT_AVAILABLE',
  'COORDINATOR_LOAD_IN_PROGRESS',
])

/**
 * True when the error comes from the consumer group protocol (a `payload.heartbeat()` during a rebalance,
 * a commit from a member that left): it is handed back to kafkajs instead of being classified. Looks
 * through kafkajs' wrappers (`cause`, `originalError`, aggregated `errors`).
 */
export function isRebalanceError(error: unknown): boolean {
  return someInChain(error, (e) => (typeof e.type === 'string' && REBALANCE_TYPES.has(e.type)) || e.name === 'KafkaJSRebalanceInProgress')
}

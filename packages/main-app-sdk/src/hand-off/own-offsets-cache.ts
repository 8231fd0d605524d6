import type { Kafka, Producer, ProducerConfig } from 'kafkajs'

/**
 * Creates a producer whose cluster has its own committed-offset cache.
 *
 * kafkajs (2.x) gives every client of one `Kafka` instance the same cache of committed offsets (its
 * private `offsets` map), and a transaction's `sendOffsets` marks the offset as committed there as soon as
 * the TxnOffsetCommit returns — before the transaction's outcome is known. The consumer reads that cache:
 * after a rebalance that keeps the partition here, it would start *past* a message whose hand-off
 * transaction then aborted (the message lost), and it never commits an offset the cache already holds.
 * The hand-off producers must not share it. kafkajs reads the map when it creates a client's cluster, so
 * the instance's map is swapped for a fresh one for that moment. `isolated` is false when this kafkajs has
 * no such map (then there is nothing shared to avoid).
 */
export function producerWithOwnOffsetsCache(kafka: Kafka, config: ProducerConfig): { producer: Producer; isolated: boolean } {
  const target = kafka as unknown as Record<symbol, unknown>
  const symbol = Object.getOwnPropertySymbols(kafka).find((s) => s.description === 'private:Kafka:offsets')
  if (symbol === undefined || !(target[symbol] instanceof Map)) return { producer: kafka.producer(config), isolated: false }
  const shared = target[symbol]
  target[symbol] = new Map()
  try {
    return { producer: kafka.producer(config), isolated: true }
  } finally {
    target[symbol] = shared
  }
}

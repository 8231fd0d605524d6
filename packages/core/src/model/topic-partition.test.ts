import { describe, expect, it } from 'vitest'
import { parseTopicPartitionKey, topicPartitionKey } from './topic-partition.js'

describe('topicPartitionKey', () => {
  it('round-trips topics and partitions', () => {
    for (const [topic, partition] of [
      ['orders', 0],
      ['orders.v1', 12],
      ['a-1', 1],
      ['_x', 2147483647],
    ] as const) {
      const key = topicPartitionKey(topic, partition)
      expect(parseTopicPartitionKey(key)).toEqual({ topic, partition })
    }
  })

  it('never mixes up topics whose names end in digits with partitions', () => {
    const keys = [topicPartitionKey('a1', 1), topicPartitionKey('a', 11), topicPartitionKey('a-1', 1), topicPartitionKey('a', 1)]
    expect(new Set(keys).size).toBe(4)
    expect(topicPartitionKey('a1', 1)).toBe('a1\u00001')
  })
})

/**
 * One string key per (topic, partition), for maps that cannot nest. Topic names never contain U+0000,
 * so the key is unambiguous. Every package builds these keys here, and nowhere else.
 */
export function topicPartitionKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`
}

/** The inverse of {@link topicPartitionKey}. */
export function parseTopicPartitionKey(key: string): { topic: string; partition: number } {
  const at = key.lastIndexOf('\u0000')
  return { topic: key.slice(0, at), partition: Number(key.slice(at + 1)) }
}

/** A topic and one of its partitions. */
export interface TopicPartition {
  readonly topic: string
  readonly partition: number
}

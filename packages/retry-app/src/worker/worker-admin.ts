import type { Admin } from 'kafkajs'

/** A committed offset of the worker's group, with its metadata. */
export interface CommittedOffset {
  /** `-1` when the group never committed the partition. */
  readonly offset: string
  readonly metadata: string | null
}

/** What the worker asks the cluster besides consuming and producing (a stand-in in unit tests). */
export interface WorkerAdmin {
  /** The worker group's committed offsets (and metadata) of a retry topic, by partition. */
  committedOffsets(topic: string): Promise<Map<number, CommittedOffset>>
  /** The log start offsets of a retry topic, by partition. */
  logStartOffsets(topic: string): Promise<Map<number, bigint>>
  /** Deletes the records of a partition below `offset`. */
  deleteRecords(topic: string, partition: number, offset: string): Promise<void>
}

/** {@link WorkerAdmin} over a connected kafkajs `Admin`. */
export function kafkaWorkerAdmin(admin: Admin, workerGroupId: string): WorkerAdmin {
  return {
    async committedOffsets(topic) {
      const [result] = await admin.fetchOffsets({ groupId: workerGroupId, topics: [topic] })
      return new Map((result?.partitions ?? []).map(({ partition, offset, metadata }) => [partition, { offset, metadata }]))
    },
    async logStartOffsets(topic) {
      const offsets = await admin.fetchTopicOffsets(topic)
      return new Map(offsets.map(({ partition, low }) => [partition, BigInt(low)]))
    },
    async deleteRecords(topic, partition, offset) {
      await admin.deleteTopicRecords({ topic, partitions: [{ partition, offset }] })
    },
  }
}

import { DetourTopicError } from '../errors/index.js'
import type { Logger } from '../logging/logger.js'
import { noopLogger } from '../logging/logger.js'
import type { DetourTopics } from '../model/topic-names.js'
import type { TopicAdmin } from './topic-admin.js'

export interface ProvisionOptions {
  readonly admin: TopicAdmin
  readonly topics: DetourTopics
  /** Create missing retry/redirect/error topics. @defaultValue true */
  readonly create?: boolean
  readonly replicationFactor?: number
  /**
   * Fail when the redirect topic's cleanup policy is readable and is not `compact`.
   * @defaultValue true
   */
  readonly requireCompactedRedirect?: boolean
  readonly logger?: Logger
}

export interface ProvisionResult {
  /** Partitions of the source topic (and of the retry and redirect topics). */
  readonly partitions: number
  readonly created: string[]
}

/**
 * Makes sure the Detour topics of one source topic exist and are co-partitioned with it: the retry and
 * redirect topics must have the source's partition count, because the records written for a source
 * message go to that message's partition. The redirect topic is created compacted and checked.
 * Fails with a {@link DetourTopicError} that says how to fix the cluster.
 */
export async function provisionTopics(options: ProvisionOptions): Promise<ProvisionResult> {
  const { admin, topics } = options
  const logger = options.logger ?? noopLogger
  const create = options.create ?? true
  const partitions = await admin.partitionCount(topics.source)
  if (partitions === undefined) {
    throw new DetourTopicError(topics.source, `Source topic "${topics.source}" does not exist; create it before starting Detour`)
  }
  const created: string[] = []
  const roles = [
    { role: 'retry', topic: topics.retry, compact: false, copartitioned: true },
    { role: 'redirect', topic: topics.redirect, compact: true, copartitioned: true },
    { role: 'error', topic: topics.error, compact: false, copartitioned: false },
  ] as const
  for (const { role, topic, compact, copartitioned } of roles) {
    let count = await admin.partitionCount(topic)
    if (count === undefined) {
      if (!create) {
        throw new DetourTopicError(
          topic,
          `The ${role} topic "${topic}" does not exist. Create it with ${partitions} partitions` +
            `${compact ? ' and cleanup.policy=compact' : ''}, or enable topic creation.`,
        )
      }
      await admin.createTopic({ topic, partitions, compact, replicationFactor: options.replicationFactor })
      logger.info('Created Detour topic', { role, topic, partitions, compact })
      created.push(topic)
      count = partitions
    }
    if (copartitioned && count !== partitions) {
      throw new DetourTopicError(
        topic,
        `The ${role} topic "${topic}" has ${count} partitions but the source topic "${topics.source}" has ${partitions}. ` +
          `Detour writes the records of source partition N to partition N of the ${role} topic, so both must match: ` +
          (count < partitions
            ? `add partitions to "${topic}" (kafka-topics --alter --topic ${topic} --partitions ${partitions}) while it is empty, `
            : `recreate "${topic}" with ${partitions} partitions once it holds no pending records, `) +
          'or point Detour at a topic with the right count.',
      )
    }
  }
  if (options.requireCompactedRedirect ?? true) {
    const policy = await readPolicy(admin, topics.redirect, logger)
    if (policy !== undefined && !policy.split(',').map((p) => p.trim()).includes('compact')) {
      throw new DetourTopicError(
        topics.redirect,
        `The redirect topic "${topics.redirect}" has cleanup.policy=${policy}; it must be compacted so released ids ` +
          `disappear and restarts stay fast: kafka-configs --alter --entity-type topics --entity-name ${topics.redirect} ` +
          '--add-config cleanup.policy=compact',
      )
    }
  }
  return { partitions, created }
}

async function readPolicy(admin: TopicAdmin, topic: string, logger: Logger): Promise<string | undefined> {
  try {
    const policy = await admin.cleanupPolicy(topic)
    if (policy === undefined) logger.warn('Cannot read the redirect topic cleanup.policy; not checked', { topic })
    return policy
  } catch (error) {
    logger.warn('Cannot read the redirect topic cleanup.policy; not checked', { topic, error })
    return undefined
  }
}

import { DetourTopicError } from '../errors/index.js'
import type { Logger } from '../logging/logger.js'
import { noopLogger } from '../logging/logger.js'
import type { DetourTopics } from '../model/topic-names.js'
import type { TopicAdmin } from './topic-admin.js'

/** Settings the retry topic is created with: records may wait there (held) for days, so time never deletes them. */
export const RETRY_TOPIC_CONFIG = { 'retention.ms': '-1', 'retention.bytes': '-1', 'cleanup.policy': 'delete' } as const

export interface ProvisionOptions {
  readonly admin: TopicAdmin
  readonly topics: DetourTopics
  /** Create missing retry/redirect/error topics. @defaultValue true */
  readonly create?: boolean
  readonly replicationFactor?: number
  /**
   * Check the settings that keep pending state safe, when the cluster lets them be read: the redirect
   * topic's `cleanup.policy` must be exactly `compact` (with `delete` too, time would remove pending ids),
   * and the retry topic must keep records without a time or size limit (`retention.ms=-1`,
   * `retention.bytes=-1`; the retry worker deletes what it resolved). A mismatch fails with the fix.
   * `false` only logs the mismatch.
   * @defaultValue true
   */
  readonly checkTopicSettings?: boolean
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
 * message go to that message's partition. The redirect topic is created compacted, the retry topic with
 * unlimited retention, and both are checked. Fails with a {@link DetourTopicError} that says how to fix
 * the cluster.
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
    { role: 'retry', topic: topics.retry, compact: false, config: RETRY_TOPIC_CONFIG, copartitioned: true },
    { role: 'redirect', topic: topics.redirect, compact: true, config: undefined, copartitioned: true },
    { role: 'error', topic: topics.error, compact: false, config: undefined, copartitioned: false },
  ] as const
  for (const { role, topic, compact, config, copartitioned } of roles) {
    let count = await admin.partitionCount(topic)
    if (count === undefined) {
      if (!create) {
        throw new DetourTopicError(
          topic,
          `The ${role} topic "${topic}" does not exist. Create it with ${partitions} partitions` +
            `${compact ? ' and cleanup.policy=compact' : ''}${config ? ' and retention.ms=-1 retention.bytes=-1' : ''}, or enable topic creation.`,
        )
      }
      await admin.createTopic({ topic, partitions, compact, config, replicationFactor: options.replicationFactor })
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
            ? `add partitions to "${topic}" (kafka-topics --alter --topic ${topic} --partitions ${partitions}), `
            : `recreate "${topic}" with ${partitions} partitions once it holds no pending records, `) +
          'or point Detour at a topic with the right count.',
      )
    }
  }
  await checkSettings(options, logger)
  return { partitions, created }
}

async function readConfig(admin: TopicAdmin, topic: string, names: readonly string[], logger: Logger): Promise<Readonly<Record<string, string | undefined>> | undefined> {
  try {
    const config = await admin.topicConfig(topic, names)
    if (config === undefined) logger.warn('Cannot read the topic settings; not checked', { topic, settings: names })
    return config
  } catch (error) {
    logger.warn('Cannot read the topic settings; not checked', { topic, settings: names, error })
    return undefined
  }
}

async function checkSettings(options: ProvisionOptions, logger: Logger): Promise<void> {
  const { admin, topics } = options
  const strict = options.checkTopicSettings ?? true
  const problems: DetourTopicError[] = []
  const redirect = await readConfig(admin, topics.redirect, ['cleanup.policy'], logger)
  const policy = redirect?.['cleanup.policy']
  if (policy !== undefined && policy.replaceAll(' ', '') !== 'compact') {
    problems.push(
      new DetourTopicError(
        topics.redirect,
        `The redirect topic "${topics.redirect}" has cleanup.policy=${policy}; it must be exactly "compact": ` +
          (policy.includes('delete') ? 'with "delete", retention would remove ids that are still pending; ' : 'released ids must disappear and pending ones stay; ') +
          `kafka-configs --alter --entity-type topics --entity-name ${topics.redirect} --add-config cleanup.policy=compact`,
      ),
    )
  }
  const retry = await readConfig(admin, topics.retry, ['retention.ms', 'retention.bytes'], logger)
  if (retry !== undefined) {
    const limits = (['retention.ms', 'retention.bytes'] as const).filter((name) => retry[name] !== undefined && retry[name] !== '-1')
    if (limits.length > 0) {
      problems.push(
        new DetourTopicError(
          topics.retry,
          `The retry topic "${topics.retry}" has ${limits.map((name) => `${name}=${retry[name]}`).join(', ')}: records waiting there ` +
            '(a held group can wait for days) would be deleted before the retry worker resolves them. The worker deletes what it ' +
            `resolved itself: kafka-configs --alter --entity-type topics --entity-name ${topics.retry} --add-config retention.ms=-1,retention.bytes=-1`,
        ),
      )
    }
  }
  const [first] = problems
  if (first === undefined) return
  if (strict) throw first
  for (const problem of problems) logger.warn(`${problem.message} (checkTopicSettings is off: going on)`, { topic: problem.topic })
}

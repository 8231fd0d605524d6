import { DetourConfigError } from '../errors/index.js'
import { isValidTopicName } from './message-id.js'

/** The three Detour topics that serve one (consumer group, source topic) pair. */
export interface DetourTopics {
  /** The source topic the main app consumes. */
  readonly source: string
  /** Messages waiting for the retry worker (same partitions as the source). */
  readonly retry: string
  /** Pending ids and their tombstones (same partitions as the source; compacted). */
  readonly redirect: string
  /** Dead letters: unprocessable messages and exhausted retries. */
  readonly error: string
}

/**
 * How topic names are derived. Each template may use `{topic}` and `{groupId}`.
 * @defaultValue `{topic}-{groupId}-retry`, `{topic}-{groupId}-redirect`, `{topic}-{groupId}-dlt`
 */
export interface TopicNaming {
  retry?: string
  redirect?: string
  error?: string
  /**
   * The retry and redirect templates must contain `{groupId}`: two consumer groups reading the same topic
   * must never share them (one group's tombstones would release, and compaction would delete, the other's
   * pending ids). Set this only when the names are fixed and exactly one consumer group uses them.
   * @defaultValue false
   */
  allowWithoutGroupId?: boolean
}

export const defaultTopicNaming = {
  retry: '{topic}-{groupId}-retry',
  redirect: '{topic}-{groupId}-redirect',
  error: '{topic}-{groupId}-dlt',
} as const satisfies Required<Omit<TopicNaming, 'allowWithoutGroupId'>>

function render(template: string, topic: string, groupId: string): string {
  return template.replaceAll('{topic}', topic).replaceAll('{groupId}', groupId)
}

function templates(naming: TopicNaming): { retry: string; redirect: string; error: string } {
  return {
    retry: naming.retry ?? defaultTopicNaming.retry,
    redirect: naming.redirect ?? defaultTopicNaming.redirect,
    error: naming.error ?? defaultTopicNaming.error,
  }
}

/**
 * Derives the Detour topics of a source topic for a consumer group. The defaults embed the group id,
 * so two consumer groups reading the same topic never share retry, redirect or error topics.
 * Use {@link detourTopicsFor} for a set of source topics: it also refuses names that collide.
 */
export function detourTopics(sourceTopic: string, groupId: string, naming: TopicNaming = {}): DetourTopics {
  const t = templates(naming)
  if (!naming.allowWithoutGroupId) {
    for (const role of ['retry', 'redirect'] as const) {
      if (!t[role].includes('{groupId}')) {
        throw new DetourConfigError(
          `topicNaming.${role}`,
          `"${t[role]}" has no {groupId}: two consumer groups of "${sourceTopic}" would share the ${role} topic, and one group's ` +
            `tombstones would release the other's pending ids. Add {groupId} to the template, or set topicNaming.allowWithoutGroupId ` +
            'if exactly one consumer group uses these names.',
        )
      }
    }
  }
  const topics: DetourTopics = {
    source: sourceTopic,
    retry: render(t.retry, sourceTopic, groupId),
    redirect: render(t.redirect, sourceTopic, groupId),
    error: render(t.error, sourceTopic, groupId),
  }
  for (const role of ['retry', 'redirect', 'error'] as const) {
    const name = topics[role]
    if (!isValidTopicName(name)) {
      throw new DetourConfigError(
        `topicNaming.${role}`,
        `"${name}" is not a valid Kafka topic name (only [a-zA-Z0-9._-], at most 249 characters); ` +
          'choose a shorter group id or set the topic name template explicitly',
      )
    }
  }
  const names = [topics.source, topics.retry, topics.redirect]
  if (new Set(names).size !== names.length) {
    throw new DetourConfigError('topicNaming', `retry, redirect and source topics must be distinct: ${names.join(', ')}`)
  }
  if (topics.error === topics.source || topics.error === topics.redirect || topics.error === topics.retry) {
    throw new DetourConfigError('topicNaming.error', `the error topic "${topics.error}" must differ from the other topics`)
  }
  return topics
}

/**
 * The Detour topics of every source topic of a consumer group, refusing names that collide: a retry or
 * redirect topic serves exactly one source topic and is no other topic's source, retry, redirect or error
 * topic (two source topics sharing a redirect topic would mix their ids). Error topics may be shared by
 * the source topics of one group. Throws {@link DetourConfigError} naming the collision.
 */
export function detourTopicsFor(sourceTopics: readonly string[], groupId: string, naming: TopicNaming = {}): Map<string, DetourTopics> {
  const bySource = new Map<string, DetourTopics>()
  for (const source of sourceTopics) {
    if (bySource.has(source)) throw new DetourConfigError('topics', `lists "${source}" twice`)
    bySource.set(source, detourTopics(source, groupId, naming))
  }
  const owner = new Map<string, string>()
  const claim = (name: string, what: string): void => {
    const previous = owner.get(name)
    if (previous !== undefined) {
      throw new DetourConfigError(
        'topicNaming',
        `"${name}" would be both the ${previous} and the ${what}; include {topic} in the templates so that every source topic gets its own retry and redirect topics`,
      )
    }
    owner.set(name, what)
  }
  for (const source of bySource.keys()) claim(source, `source topic "${source}"`)
  for (const topics of bySource.values()) {
    claim(topics.retry, `retry topic of "${topics.source}"`)
    claim(topics.redirect, `redirect topic of "${topics.source}"`)
  }
  for (const topics of bySource.values()) {
    const previous = owner.get(topics.error)
    if (previous !== undefined && !previous.startsWith('error topic of ')) {
      throw new DetourConfigError('topicNaming.error', `"${topics.error}" would be both the ${previous} and the error topic of "${topics.source}"`)
    }
    if (previous === undefined) owner.set(topics.error, `error topic of "${topics.source}"`)
  }
  return bySource
}

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
}

export const defaultTopicNaming = {
  retry: '{topic}-{groupId}-retry',
  redirect: '{topic}-{groupId}-redirect',
  error: '{topic}-{groupId}-dlt',
} as const satisfies Required<TopicNaming>

function render(template: string, topic: string, groupId: string): string {
  return template.replaceAll('{topic}', topic).replaceAll('{groupId}', groupId)
}

/**
 * Derives the Detour topics of a source topic for a consumer group. The defaults embed the group id,
 * so two consumer groups reading the same topic never share retry, redirect or error topics.
 */
export function detourTopics(sourceTopic: string, groupId: string, naming: TopicNaming = {}): DetourTopics {
  const templates = {
    retry: naming.retry ?? defaultTopicNaming.retry,
    redirect: naming.redirect ?? defaultTopicNaming.redirect,
    error: naming.error ?? defaultTopicNaming.error,
  }
  const topics: DetourTopics = {
    source: sourceTopic,
    retry: render(templates.retry, sourceTopic, groupId),
    redirect: render(templates.redirect, sourceTopic, groupId),
    error: render(templates.error, sourceTopic, groupId),
  }
  for (const role of ['retry', 'redirect', 'error'] as const) {
    const name = topics[role]
    if (!isValidTopicName(name)) {
      throw new DetourConfigError(
        `topics.${role}`,
        `"${name}" is not a valid Kafka topic name (only [a-zA-Z0-9._-], at most 249 characters); ` +
          'choose a shorter group id or set the topic name template explicitly',
      )
    }
  }
  const names = [topics.source, topics.retry, topics.redirect]
  if (new Set(names).size !== names.length) {
    throw new DetourConfigError('topics', `retry, redirect and source topics must be distinct: ${names.join(', ')}`)
  }
  if (topics.error === topics.source || topics.error === topics.redirect || topics.error === topics.retry) {
    throw new DetourConfigError('topics.error', `the error topic "${topics.error}" must differ from the other topics`)
  }
  return topics
}

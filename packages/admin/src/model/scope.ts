import { detourTopicsFor, isDetourError, type DetourTopics, type TopicNaming } from '@detour/core'
import { AdminUsageError } from '../errors/index.js'

/**
 * The Detour topics an operator works on: those of one main app's consumer group and its source topics,
 * named exactly as the main app and the worker name them.
 */
export interface AdminScope {
  /** The main app's consumer group (`--consumer-group`, as for `detour-retry run`). */
  readonly consumerGroup: string
  /** Detour topics by source topic. */
  readonly topics: ReadonlyMap<string, DetourTopics>
  /** The retry worker's own consumer group (its committed offsets tell what it has resolved). */
  readonly workerGroupId: string
}

export interface ScopeInput {
  readonly consumerGroup: string
  readonly sourceTopics: readonly string[]
  readonly naming?: TopicNaming
  /** @defaultValue `${consumerGroup}-detour-retry` (the worker's default) */
  readonly workerGroupId?: string
}

/** Derives the scope with core's `detourTopicsFor`; a naming problem is a usage error that says what to change. */
export function resolveScope(input: ScopeInput): AdminScope {
  if (input.consumerGroup.length === 0) throw new AdminUsageError('--consumer-group must not be empty')
  if (input.sourceTopics.length === 0) throw new AdminUsageError('--topics must list at least one source topic')
  let topics: Map<string, DetourTopics>
  try {
    topics = detourTopicsFor(input.sourceTopics, input.consumerGroup, input.naming ?? {})
  } catch (error) {
    if (isDetourError(error)) throw new AdminUsageError((error as Error).message)
    throw error
  }
  return { consumerGroup: input.consumerGroup, topics, workerGroupId: input.workerGroupId ?? `${input.consumerGroup}-detour-retry` }
}

/** The distinct error topics of a scope (source topics of one group may share one), with their source topics. */
export function errorTopicsOf(scope: AdminScope): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const topics of scope.topics.values()) {
    const sources = out.get(topics.error) ?? []
    sources.push(topics.source)
    out.set(topics.error, sources)
  }
  return out
}

/** The Detour topics of a source topic in the scope, or a usage error naming the topics that are. */
export function topicsOf(scope: AdminScope, sourceTopic: string): DetourTopics {
  const topics = scope.topics.get(sourceTopic)
  if (!topics) {
    throw new AdminUsageError(`"${sourceTopic}" is not one of --topics (${[...scope.topics.keys()].join(', ')}); add it to --topics`)
  }
  return topics
}

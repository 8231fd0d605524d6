import { DetourConfigError } from '../errors/detour-error.js'

/**
 * The two consumer groups of a deployment, in the vocabulary shared by the SDK, the retry worker and the
 * operator tool: `groupId` is the **main app's** group (it names the retry, redirect and error topics),
 * `workerGroupId` the retry worker's own group (default `<groupId>-detour-retry`).
 */
export interface ResolvedGroupIds {
  readonly groupId: string
  readonly workerGroupId: string
  /** What to write instead of the deprecated spelling, when it was used. */
  readonly deprecation: string | undefined
}

/** The group settings as given: library options (`groupId`, `workerGroupId`, deprecated `consumerGroup`). */
export interface GroupIdInput {
  readonly groupId?: unknown
  readonly workerGroupId?: unknown
  /**
   * @deprecated The old name of the main app's group. While it is set, `groupId` keeps its old meaning:
   * the worker's own group.
   */
  readonly consumerGroup?: unknown
}

/** The group flags of `detour-retry run` and `detour`, as yargs parses them. */
export interface GroupIdFlags {
  readonly 'group-id'?: string | undefined
  readonly 'worker-group-id'?: string | undefined
  readonly 'consumer-group'?: string | undefined
}

/** How a message names the three settings: as options (`groupId`) or as flags (`--group-id`). */
type Style = 'options' | 'flags'

const NAMES = {
  options: { groupId: 'groupId', workerGroupId: 'workerGroupId', consumerGroup: 'consumerGroup' },
  flags: { groupId: '--group-id', workerGroupId: '--worker-group-id', consumerGroup: '--consumer-group' },
} as const

export const DEFAULT_WORKER_GROUP_SUFFIX = '-detour-retry'

function optionalString(option: string, value: unknown): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value.trim().length === 0) {
    throw new DetourConfigError(option, `must be a non-empty string, got ${JSON.stringify(value)}`)
  }
  return value
}

function deprecation(style: Style, legacy: string, oldWorker: string | undefined): string {
  if (style === 'flags') {
    return (
      `--consumer-group (DETOUR_CONSUMER_GROUP) is deprecated: use --group-id ${legacy}` +
      (oldWorker !== undefined ? ` --worker-group-id ${oldWorker}` : '') +
      ". While it is set, --group-id keeps its old meaning (the worker's own group)."
    )
  }
  return (
    `The option consumerGroup is deprecated: set groupId to the main app's group ("${legacy}")` +
    (oldWorker !== undefined ? ` and workerGroupId to the worker's own group ("${oldWorker}")` : '') +
    ". While consumerGroup is set, groupId keeps its old meaning (the worker's own group)."
  )
}

function resolve(input: GroupIdInput, style: Style): ResolvedGroupIds {
  const n = NAMES[style]
  const legacy = optionalString(n.consumerGroup, input.consumerGroup)
  const explicitWorker = optionalString(n.workerGroupId, input.workerGroupId)
  if (legacy === undefined) {
    const groupId = optionalString(n.groupId, input.groupId)
    if (groupId === undefined) throw new DetourConfigError(n.groupId, "must be a non-empty string (the main app's consumer group, as the SDK's groupId), got undefined")
    const workerGroupId = explicitWorker ?? `${groupId}${DEFAULT_WORKER_GROUP_SUFFIX}`
    if (workerGroupId === groupId) {
      throw new DetourConfigError(
        n.workerGroupId,
        style === 'flags'
          ? "must differ from --group-id (the worker must not join the main app's group)"
          : `must differ from groupId "${groupId}": the worker would join the main app's group; leave it unset to use "${groupId}${DEFAULT_WORKER_GROUP_SUFFIX}"`,
      )
    }
    return { groupId, workerGroupId, deprecation: undefined }
  }
  const oldWorker = optionalString(n.groupId, input.groupId)
  if (oldWorker !== undefined && explicitWorker !== undefined && oldWorker !== explicitWorker) {
    throw new DetourConfigError(
      n.consumerGroup,
      style === 'flags'
        ? "is deprecated and cannot be combined with both --group-id and --worker-group-id: drop --consumer-group and set --group-id to the main app's group"
        : `is deprecated and cannot be combined with groupId "${oldWorker}" and workerGroupId "${explicitWorker}": ` +
            "set groupId to the main app's group and workerGroupId to the worker's group, without consumerGroup",
    )
  }
  const workerGroupId = explicitWorker ?? oldWorker ?? `${legacy}${DEFAULT_WORKER_GROUP_SUFFIX}`
  if (workerGroupId === legacy) {
    throw new DetourConfigError(
      oldWorker !== undefined ? n.groupId : n.workerGroupId,
      style === 'flags'
        ? "must differ from --consumer-group (while the deprecated --consumer-group is set, --group-id is the worker's own group)"
        : `must differ from consumerGroup "${legacy}": the worker would join the main app's group; leave it unset to use "${legacy}${DEFAULT_WORKER_GROUP_SUFFIX}"`,
    )
  }
  return { groupId: legacy, workerGroupId, deprecation: deprecation(style, legacy, oldWorker) }
}

/**
 * The one rule for the group settings of the library options: `groupId` (required) and `workerGroupId`
 * (default `<groupId>-detour-retry`, must differ), or the deprecated `consumerGroup` (the main app's group;
 * `groupId` is then the worker's own group). Throws a `DetourConfigError` naming the option.
 */
export function resolveGroupIds(input: GroupIdInput): ResolvedGroupIds {
  return resolve(input, 'options')
}

/**
 * The same rule for the command-line flags `--group-id`, `--worker-group-id` and the deprecated
 * `--consumer-group` (messages name the flags). Expects {@link legacyGroupArguments} to have run, so a
 * `--group-id` equal to `--consumer-group` is the copy it made, not the worker's group.
 */
export function resolveGroupIdFlags(args: GroupIdFlags): ResolvedGroupIds {
  const legacy = args['consumer-group']
  const groupId = args['group-id']
  return resolve({ consumerGroup: legacy, groupId: legacy !== undefined && groupId === legacy ? undefined : groupId, workerGroupId: args['worker-group-id'] }, 'flags')
}

/**
 * A yargs middleware (run before validation): the deprecated `--consumer-group` stands for the required
 * `--group-id`, which then keeps its old meaning (the worker's own group).
 */
export function legacyGroupArguments(argv: Record<string, unknown>): void {
  const legacy = argv['consumer-group']
  if (typeof legacy !== 'string' || argv['group-id'] !== undefined) return
  argv['group-id'] = legacy
  argv.groupId = legacy
}

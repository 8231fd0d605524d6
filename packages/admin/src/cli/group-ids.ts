/**
 * The main app's group and the worker's own, from the flags in the vocabulary shared with the SDK and the
 * worker (`--group-id`, `--worker-group-id`) or from the deprecated spelling (`--consumer-group` = the main
 * app's group, `--group-id` = the worker's own group). The same rules as `detour-retry run`
 * (`packages/retry-app/src/cli/run-options.ts`, `groupIds`): both belong in core. `deprecation` says what
 * to change.
 */
export function groupIds(args: { 'group-id': string; 'worker-group-id'?: string | undefined; 'consumer-group'?: string | undefined }): {
  groupId: string
  workerGroupId: string
  deprecation: string | undefined
} {
  const legacy = args['consumer-group']
  if (legacy === undefined) {
    return { groupId: args['group-id'], workerGroupId: args['worker-group-id'] ?? `${args['group-id']}-detour-retry`, deprecation: undefined }
  }
  const oldWorker = args['group-id'] === legacy ? undefined : args['group-id']
  if (oldWorker !== undefined && args['worker-group-id'] !== undefined && oldWorker !== args['worker-group-id']) {
    throw new Error("--consumer-group is deprecated and cannot be combined with both --group-id and --worker-group-id: drop --consumer-group and set --group-id to the main app's group")
  }
  return {
    groupId: legacy,
    workerGroupId: args['worker-group-id'] ?? oldWorker ?? `${legacy}-detour-retry`,
    deprecation:
      `--consumer-group (DETOUR_CONSUMER_GROUP) is deprecated: use --group-id ${legacy}` +
      (oldWorker !== undefined ? ` --worker-group-id ${oldWorker}` : '') +
      ". While it is set, --group-id keeps its old meaning (the worker's own group).",
  }
}

/** Before validation: the deprecated `--consumer-group` stands for the required `--group-id`. */
export function legacyGroupMiddleware(argv: Record<string, unknown>): void {
  const legacy = argv['consumer-group']
  if (typeof legacy !== 'string' || argv['group-id'] !== undefined) return
  argv['group-id'] = legacy
  argv.groupId = legacy
}

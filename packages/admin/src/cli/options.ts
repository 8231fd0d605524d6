import type { Argv } from 'yargs'
import { DetourConfigError, SASL_MECHANISMS, checkConnectionSettings, defaultTopicNaming, legacyGroupArguments, resolveGroupIdFlags, type KafkaConnectionSettings, type LogLevel } from '@detour/core'
import type { DeadLetterFilter } from '../dlt/dead-letter-filter.js'
import { parseTime } from '../dlt/dead-letter-filter.js'

/** Splits `a,b c` style lists (flags may repeat; environment variables hold one string). */
export function list(values: unknown): string[] {
  const raw = Array.isArray(values) ? (values as unknown[]) : [values]
  return raw
    .flatMap((value) => (typeof value === 'string' || typeof value === 'number' ? String(value).split(/[\s,]+/) : []))
    .map((value) => value.trim())
    .filter((value) => value.length > 0)
}

export const GROUPS = {
  kafka: 'Kafka connection (as for detour-retry run):',
  scope: 'Which topics (as for detour-retry run):',
  worker: 'Retry worker:',
  filter: 'Filters:',
  output: 'Output:',
} as const

/** The connection flags of `detour-retry run`, with the same names, meanings and environment variables. */
export function connectionOptions<T>(y: Argv<T>) {
  return y
    .option('brokers', {
      type: 'string',
      demandOption: 'set --brokers or DETOUR_BROKERS',
      describe: 'Kafka bootstrap servers, comma-separated host:port list',
      coerce: list,
      group: GROUPS.kafka,
    })
    .option('client-id', { type: 'string', default: 'detour-admin', describe: 'kafkajs client id (also recorded in the replay ledger)', group: GROUPS.kafka })
    .option('ssl', { type: 'boolean', default: false, describe: 'Connect with TLS', group: GROUPS.kafka })
    .option('ssl-ca-file', { type: 'string', describe: 'PEM file with the CA certificates to trust (enables TLS)', group: GROUPS.kafka })
    .option('sasl-mechanism', {
      choices: SASL_MECHANISMS,
      describe: 'SASL mechanism (needs --sasl-username and --sasl-password)',
      group: GROUPS.kafka,
    })
    .option('sasl-username', { type: 'string', describe: 'SASL user name', group: GROUPS.kafka })
    .option('sasl-password', {
      type: 'string',
      describe: 'SASL password (prefer DETOUR_SASL_PASSWORD: flags are visible in the process list; never printed)',
      group: GROUPS.kafka,
    })
    .option('reader-group-prefix', {
      type: 'string',
      default: 'detour-admin',
      describe: 'Prefix of the throwaway consumer groups that read topics (they never commit; for ACLs on group names)',
      group: GROUPS.kafka,
    })
    .option('max-wait-time-ms', { type: 'number', default: 500, describe: 'Longest wait of a fetch for new records while reading', group: GROUPS.kafka })
    .option('read-timeout-ms', { type: 'number', default: 120_000, describe: 'A read of a topic that takes longer fails', group: GROUPS.kafka })
    .option('log-level', {
      choices: ['debug', 'info', 'warn', 'error', 'silent'] as const,
      default: 'warn' as const,
      describe: 'Log level of the JSON log lines on stderr',
      group: GROUPS.output,
    })
    .check((argv) => {
      // core's rules, shared with detour-retry run.
      flagErrors(() => checkConnectionSettings(toConnection(argv)))
      for (const flag of ['max-wait-time-ms', 'read-timeout-ms'] as const) {
        if (!Number.isInteger(argv[flag]) || argv[flag] < 1) throw new Error(`--${flag} must be a positive integer, got ${argv[flag]}`)
      }
      return true
    })
}

/** The main app's consumer group and source topics, and the topic name templates, as the worker takes them. */
export function scopeOptions<T>(y: Argv<T>) {
  return y
    .middleware(legacyGroupArguments as unknown as (args: object) => void, true)
    .option('group-id', {
      type: 'string',
      demandOption: 'set --group-id or DETOUR_GROUP_ID',
      describe:
        "The main app's consumer group, as the SDK's groupId and the worker's --group-id (names the retry, redirect and error topics). " +
        "With the deprecated --consumer-group it keeps its old meaning: the worker's own group",
      group: GROUPS.scope,
    })
    .option('consumer-group', {
      type: 'string',
      deprecated: "use --group-id for the main app's group and --worker-group-id for the worker's",
      describe: "Old name of the main app's consumer group (while it is set, --group-id names the worker's own group)",
      group: GROUPS.scope,
    })
    .option('topics', {
      // A string (repeatable, comma- or space-separated), not an array: an array flag would swallow positionals.
      type: 'string',
      demandOption: 'set --topics or DETOUR_TOPICS',
      describe: "The main app's source topics (space- or comma-separated)",
      coerce: list,
      group: GROUPS.scope,
    })
    .option('retry-topic-template', { type: 'string', default: defaultTopicNaming.retry, describe: 'Retry topic name template', group: GROUPS.scope })
    .option('redirect-topic-template', { type: 'string', default: defaultTopicNaming.redirect, describe: 'Redirect topic name template', group: GROUPS.scope })
    .option('error-topic-template', { type: 'string', default: defaultTopicNaming.error, describe: 'Error (dead-letter) topic name template', group: GROUPS.scope })
    .option('worker-group-id', {
      type: 'string',
      describe: "The retry worker's own consumer group, as its --worker-group-id (its commits tell what it resolved) [default: <group-id>-detour-retry]",
      group: GROUPS.scope,
    })
    .check((argv) => {
      if (argv.topics.length === 0) throw new Error('--topics must list at least one source topic')
      groupIds(argv)
      return true
    })
}

/** How to reach a running worker's held-group API. */
export function workerOptions<T>(y: Argv<T>) {
  return y
    .option('worker-url', {
      type: 'string',
      describe: "Base URL of a running worker's HTTP server (its --metrics-host/--metrics-port), e.g. http://127.0.0.1:9464",
      group: GROUPS.worker,
    })
    .option('admin-token', {
      type: 'string',
      describe: "The worker's admin token, sent as a bearer token (prefer DETOUR_ADMIN_TOKEN; needed whenever the worker has one)",
      group: GROUPS.worker,
    })
}

export function jsonOption<T>(y: Argv<T>) {
  return y.option('json', { type: 'boolean', default: false, describe: 'Print JSON instead of a table', group: GROUPS.output })
}

/** The dead-letter filters of `dlt list` and `dlt replay`. */
export function filterOptions<T>(y: Argv<T>) {
  return y
    .option('reason', {
      type: 'string',
      coerce: list,
      describe: 'detour-reason: unprocessable, deserialization, exhausted, malformed, record-too-large (several allowed)',
      group: GROUPS.filter,
    })
    .option('error-name', { type: 'string', coerce: list, describe: 'detour-error-name, the error class (several allowed)', group: GROUPS.filter })
    .option('key', { type: 'string', coerce: (value: unknown) => (Array.isArray(value) ? value : [value]).map(String), describe: 'The record key: UTF-8 text, or base64:<bytes> (several allowed)', group: GROUPS.filter })
    .option('since', { type: 'string', describe: 'Failed at or after: ISO-8601, epoch ms, or a duration ago (15m, 2h, 7d)', group: GROUPS.filter })
    .option('until', { type: 'string', describe: 'Failed before: ISO-8601, epoch ms, or a duration ago', group: GROUPS.filter })
    .option('source-partition', { type: 'number', describe: 'The source partition of the original message', group: GROUPS.filter })
    .option('source-offset', { type: 'string', describe: 'The source offset of the original message', group: GROUPS.filter })
    .check((argv) => {
      if (argv['source-partition'] !== undefined && (!Number.isInteger(argv['source-partition']) || argv['source-partition'] < 0)) {
        throw new Error(`--source-partition must be a partition number, got ${argv['source-partition']}`)
      }
      if (argv['source-offset'] !== undefined && !/^\d{1,19}$/.test(argv['source-offset'])) {
        throw new Error(`--source-offset must be an offset (digits), got ${argv['source-offset']}`)
      }
      for (const flag of ['since', 'until'] as const) if (argv[flag] !== undefined) parseTime(argv[flag])
      return true
    })
}

/**
 * The main app's group and the worker's own from the group flags: core's rule, shared with
 * `detour-retry run`. A wrong combination is an error that names the flags.
 */
export function groupIds(args: ScopeArgs): ReturnType<typeof resolveGroupIdFlags> {
  return flagErrors(() => resolveGroupIdFlags(args))
}

/** Runs one of core's checks; its `DetourConfigError` becomes a usage error that names the flag. */
function flagErrors<T>(check: () => T): T {
  try {
    return check()
  } catch (error) {
    if (error instanceof DetourConfigError) throw new Error(`${error.option} ${error.reason}`)
    throw error
  }
}

export interface ConnectionArgs {
  readonly brokers: string[]
  readonly 'client-id': string
  readonly ssl: boolean
  readonly 'ssl-ca-file'?: string
  readonly 'sasl-mechanism'?: 'plain' | 'scram-sha-256' | 'scram-sha-512'
  readonly 'sasl-username'?: string
  readonly 'sasl-password'?: string
  readonly 'reader-group-prefix': string
  readonly 'max-wait-time-ms': number
  readonly 'read-timeout-ms': number
  readonly 'log-level': LogLevel
}

export interface ScopeArgs {
  readonly 'group-id': string
  readonly 'consumer-group'?: string
  readonly topics: string[]
  readonly 'retry-topic-template': string
  readonly 'redirect-topic-template': string
  readonly 'error-topic-template': string
  readonly 'worker-group-id'?: string
}

export interface WorkerArgs {
  readonly 'worker-url'?: string
  readonly 'admin-token'?: string
}

export interface FilterArgs {
  readonly reason?: string[]
  readonly 'error-name'?: string[]
  readonly key?: string[]
  readonly since?: string
  readonly until?: string
  readonly 'source-partition'?: number
  readonly 'source-offset'?: string
}

export function toConnection(args: ConnectionArgs): KafkaConnectionSettings {
  return {
    brokers: args.brokers,
    clientId: args['client-id'],
    ssl: args.ssl || args['ssl-ca-file'] !== undefined,
    sslCaFile: args['ssl-ca-file'],
    saslMechanism: args['sasl-mechanism'],
    saslUsername: args['sasl-username'],
    saslPassword: args['sasl-password'],
  }
}

export function toFilter(args: FilterArgs, now: number = Date.now()): DeadLetterFilter {
  return {
    ...(args.reason?.length ? { reasons: args.reason } : {}),
    ...(args['error-name']?.length ? { errorNames: args['error-name'] } : {}),
    ...(args.key?.length ? { keys: args.key.map(String) } : {}),
    ...(args.since !== undefined ? { since: parseTime(args.since, now) } : {}),
    ...(args.until !== undefined ? { until: parseTime(args.until, now) } : {}),
    ...(args['source-partition'] !== undefined ? { sourcePartition: args['source-partition'] } : {}),
    ...(args['source-offset'] !== undefined ? { sourceOffset: args['source-offset'] } : {}),
  }
}

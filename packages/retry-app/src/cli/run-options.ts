import type { Argv } from 'yargs'
import {
  DetourConfigError,
  SASL_MECHANISMS,
  defaultTopicNaming,
  legacyGroupArguments,
  resolveGroupIdFlags,
  type BackoffOption,
  type KafkaConnectionSettings,
  type LogLevel,
  type TopicNaming,
} from '@detour/core'
import { defaultOptions, type ExhaustedPolicy } from '../worker/retry-worker-options.js'

/** Splits `a,b c` style lists (flags may repeat; environment variables hold one string). */
function list(values: unknown): string[] {
  const raw = Array.isArray(values) ? (values as unknown[]) : [values]
  return raw
    .flatMap((value) => (typeof value === 'string' || typeof value === 'number' ? String(value).split(/[\s,]+/) : []))
    .map((value) => value.trim())
    .filter((value) => value.length > 0)
}

const KAFKA = 'Kafka connection:'
const WORKER = 'Worker:'
const RETRY = 'Retries and backoff:'
const OPS = 'Operations:'

/** The flags of `detour-retry run`. Each one also reads `DETOUR_<FLAG_IN_UPPER_SNAKE_CASE>`. */
export function runOptions<T>(yargs: Argv<T>) {
  return yargs
    .middleware(legacyGroupArguments as unknown as (args: object) => void, true)
    .option('brokers', {
      type: 'string',
      demandOption: 'set --brokers or DETOUR_BROKERS',
      describe: 'Kafka bootstrap servers, comma-separated host:port list',
      coerce: list,
      group: KAFKA,
    })
    .option('client-id', { type: 'string', default: 'detour-retry', describe: 'kafkajs client id', group: KAFKA })
    .option('ssl', { type: 'boolean', default: false, describe: 'Connect with TLS', group: KAFKA })
    .option('ssl-ca-file', { type: 'string', describe: 'PEM file with the CA certificates to trust (enables TLS)', group: KAFKA })
    .option('sasl-mechanism', {
      choices: SASL_MECHANISMS,
      describe: 'SASL mechanism (needs --sasl-username and --sasl-password)',
      group: KAFKA,
    })
    .option('sasl-username', { type: 'string', describe: 'SASL user name', group: KAFKA })
    .option('sasl-password', {
      type: 'string',
      describe: 'SASL password (prefer DETOUR_SASL_PASSWORD: flags are visible in the process list; never logged)',
      group: KAFKA,
    })
    .option('group-id', {
      type: 'string',
      demandOption: 'set --group-id or DETOUR_GROUP_ID',
      describe:
        "The main app's consumer group, as the SDK's groupId (names the retry, redirect and error topics). " +
        'With the deprecated --consumer-group it keeps its old meaning: the worker\'s own group',
      group: WORKER,
    })
    .option('worker-group-id', {
      type: 'string',
      describe: "The worker's own consumer group [default: <group-id>-detour-retry]",
      group: WORKER,
    })
    .option('consumer-group', {
      type: 'string',
      deprecated: 'use --group-id for the main app\'s group and --worker-group-id for the worker\'s',
      describe: "Old name of the main app's consumer group (while it is set, --group-id names the worker's own group)",
      group: WORKER,
    })
    .option('topics', {
      type: 'array',
      string: true,
      demandOption: 'set --topics or DETOUR_TOPICS',
      describe: "The main app's source topics (space- or comma-separated)",
      coerce: list,
      group: WORKER,
    })
    .option('handler', {
      type: 'string',
      demandOption: 'set --handler or DETOUR_HANDLER',
      describe: 'Module exporting the main app handler as `handler` or default (optionally `classify`); path relative to the working directory',
      group: WORKER,
    })
    .option('retry-topic-template', { type: 'string', default: defaultTopicNaming.retry, describe: 'Retry topic name template', group: WORKER })
    .option('redirect-topic-template', { type: 'string', default: defaultTopicNaming.redirect, describe: 'Redirect topic name template', group: WORKER })
    .option('error-topic-template', { type: 'string', default: defaultTopicNaming.error, describe: 'Error (dead-letter) topic name template', group: WORKER })
    .option('create-topics', {
      type: 'boolean',
      default: defaultOptions.createTopics,
      describe: 'Create missing retry/redirect/error topics (--create-topics false or --no-create-topics only checks them)',
      group: WORKER,
    })
    .option('max-in-flight', { type: 'number', default: defaultOptions.maxInFlight, describe: 'Handlers running at the same time', group: WORKER })
    .option('max-buffered-messages', {
      type: 'number',
      default: defaultOptions.maxBufferedMessages,
      describe: 'Unresolved retry records in memory before partitions are paused',
      group: WORKER,
    })
    .option('commit-interval-ms', { type: 'number', default: defaultOptions.commitIntervalMs, describe: 'Offset commit interval', group: WORKER })
    .option('handler-timeout-ms', {
      type: 'number',
      default: defaultOptions.handlerTimeoutMs,
      describe: 'Longest handler attempt (then its signal aborts and it counts as a transient failure); also bounds partition hand-overs',
      group: WORKER,
    })
    .option('purge-resolved-records', {
      type: 'boolean',
      default: defaultOptions.purgeResolvedRecords,
      describe: 'Delete resolved records from the retry topic after each commit (it has unlimited retention); needs the DELETE ACL',
      group: WORKER,
    })
    .option('purge-interval-ms', {
      type: 'number',
      default: defaultOptions.purgeIntervalMs,
      describe: 'Least time between two purges of a retry partition',
      group: WORKER,
    })
    .option('check-topic-settings', {
      type: 'boolean',
      default: defaultOptions.checkTopicSettings,
      describe: 'Fail at start when the redirect topic is not compacted or the retry topic has a retention limit (false: only warn)',
      group: WORKER,
    })
    .option('max-wait-time-ms', {
      type: 'number',
      default: defaultOptions.consumerConfig.maxWaitTimeInMs,
      describe: 'Longest wait of a fetch for new records (a stop waits for the fetch in progress)',
      group: KAFKA,
    })
    .option('session-timeout-ms', { type: 'number', default: 30_000, describe: 'Consumer group session timeout', group: KAFKA })
    .option('heartbeat-interval-ms', { type: 'number', default: 3000, describe: 'Consumer heartbeat interval (below the session timeout)', group: KAFKA })
    .option('rebalance-timeout-ms', { type: 'number', default: 60_000, describe: 'Consumer group rebalance timeout', group: KAFKA })
    .option('backoff', { choices: ['exponential', 'constant'] as const, default: 'exponential' as const, describe: 'Backoff policy', group: RETRY })
    .option('initial-delay-ms', {
      type: 'number',
      default: 1000,
      describe: 'First retry delay (exponential), or the delay of every retry (constant)',
      group: RETRY,
    })
    .option('max-delay-ms', { type: 'number', default: 60_000, describe: 'Upper bound of a delay (exponential)', group: RETRY })
    .option('multiplier', { type: 'number', default: 2, describe: 'Delay growth per attempt (exponential)', group: RETRY })
    .option('jitter', { type: 'number', default: 0.2, describe: 'Random spread as a fraction of the delay, 0..1 (exponential)', group: RETRY })
    .option('max-attempts', { type: 'number', default: defaultOptions.maxAttempts, describe: 'Handler attempts per message in the worker', group: RETRY })
    .option('max-retry-duration-ms', {
      type: 'number',
      default: defaultOptions.maxRetryDurationMs,
      describe: "Time budget per message from its first attempt in the worker",
      group: RETRY,
    })
    .option('exhausted-policy', {
      choices: ['hold', 'release'] as const,
      default: defaultOptions.exhaustedPolicy,
      describe: 'After exhaustion: hold the group until an operator releases it, or release it at once',
      group: RETRY,
    })
    .option('metrics-port', { type: 'number', default: 9464, describe: 'Port of /metrics, /healthz, /readyz and /groups/*', group: OPS })
    .option('metrics-host', {
      type: 'string',
      default: '0.0.0.0',
      describe: 'Interface of the HTTP server (/metrics, /healthz and /readyz are open; the admin routes need loopback or --admin-token)',
      group: OPS,
    })
    .option('admin-token', {
      type: 'string',
      describe:
        'Bearer token that opens GET /groups/held and POST /groups/release to non-loopback callers (prefer DETOUR_ADMIN_TOKEN: flags show in the process list; never logged)',
      group: OPS,
    })
    .option('log-level', { choices: ['debug', 'info', 'warn', 'error', 'silent'] as const, default: 'info' as const, describe: 'Log level (JSON lines on stderr)', group: OPS })
    .option('shutdown-timeout-ms', {
      type: 'number',
      default: defaultOptions.shutdownTimeoutMs,
      describe: 'On SIGTERM/SIGINT, how long in-flight handlers may finish',
      group: OPS,
    })
    .check((argv) => {
      const numbers: Array<[string, number, number]> = [
        ['initial-delay-ms', argv['initial-delay-ms'], 0],
        ['max-delay-ms', argv['max-delay-ms'], 0],
        ['multiplier', argv.multiplier, 1],
        ['jitter', argv.jitter, 0],
        ['max-attempts', argv['max-attempts'], 1],
        ['max-retry-duration-ms', argv['max-retry-duration-ms'], 0],
        ['max-in-flight', argv['max-in-flight'], 1],
        ['max-buffered-messages', argv['max-buffered-messages'], 1],
        ['commit-interval-ms', argv['commit-interval-ms'], 10],
        ['handler-timeout-ms', argv['handler-timeout-ms'], 1],
        ['purge-interval-ms', argv['purge-interval-ms'], 0],
        ['max-wait-time-ms', argv['max-wait-time-ms'], 0],
        ['session-timeout-ms', argv['session-timeout-ms'], 1],
        ['heartbeat-interval-ms', argv['heartbeat-interval-ms'], 1],
        ['rebalance-timeout-ms', argv['rebalance-timeout-ms'], 1],
        ['metrics-port', argv['metrics-port'], 0],
        ['shutdown-timeout-ms', argv['shutdown-timeout-ms'], 0],
      ]
      for (const [flag, value, min] of numbers) {
        if (!Number.isFinite(value) || value < min) throw new Error(`--${flag} must be a number >= ${min}, got ${String(value)}`)
      }
      const integers = [
        'max-attempts',
        'max-retry-duration-ms',
        'max-in-flight',
        'max-buffered-messages',
        'metrics-port',
        'commit-interval-ms',
        'handler-timeout-ms',
        'purge-interval-ms',
        'max-wait-time-ms',
        'session-timeout-ms',
        'heartbeat-interval-ms',
        'rebalance-timeout-ms',
        'shutdown-timeout-ms',
      ] as const
      for (const flag of integers) {
        if (!Number.isInteger(argv[flag])) throw new Error(`--${flag} must be an integer, got ${argv[flag]}`)
      }
      if (argv['heartbeat-interval-ms'] >= argv['session-timeout-ms']) {
        throw new Error(`--heartbeat-interval-ms (${argv['heartbeat-interval-ms']}) must be below --session-timeout-ms (${argv['session-timeout-ms']})`)
      }
      if (argv['metrics-port'] > 65535) throw new Error(`--metrics-port must be at most 65535, got ${argv['metrics-port']}`)
      if (argv.jitter > 1) throw new Error(`--jitter must be within 0..1, got ${argv.jitter}`)
      if (argv.backoff === 'exponential' && argv['initial-delay-ms'] > argv['max-delay-ms']) {
        throw new Error(`--initial-delay-ms (${argv['initial-delay-ms']}) must not exceed --max-delay-ms (${argv['max-delay-ms']})`)
      }
      if (argv.brokers.length === 0) throw new Error('--brokers must list at least one host:port')
      if (argv.topics.length === 0) throw new Error('--topics must list at least one source topic')
      const hasUser = argv['sasl-username'] !== undefined
      const hasPassword = argv['sasl-password'] !== undefined
      if (argv['sasl-mechanism'] !== undefined && (!hasUser || !hasPassword)) {
        throw new Error(`--sasl-mechanism ${argv['sasl-mechanism']} needs --sasl-username and --sasl-password`)
      }
      if (argv['sasl-mechanism'] === undefined && (hasUser || hasPassword)) {
        throw new Error('--sasl-username/--sasl-password need --sasl-mechanism (plain, scram-sha-256 or scram-sha-512)')
      }
      groupIds(argv)
      if (argv['admin-token'] !== undefined && argv['admin-token'].trim().length === 0) throw new Error('--admin-token must not be empty')
      return true
    })
}

export type RunArgs = ReturnType<typeof runOptions<object>> extends Argv<infer U> ? U : never

/** Settings of the `run` command, derived from its flags. */
export interface RunSettings {
  readonly connection: KafkaConnectionSettings
  readonly handlerPath: string
  /** The main app's consumer group. */
  readonly groupId: string
  /** The worker's own consumer group. */
  readonly workerGroupId: string
  readonly topics: string[]
  readonly topicNaming: TopicNaming
  readonly createTopics: boolean
  readonly backoff: BackoffOption
  readonly maxAttempts: number
  readonly maxRetryDurationMs: number
  readonly exhaustedPolicy: ExhaustedPolicy
  readonly maxInFlight: number
  readonly maxBufferedMessages: number
  readonly commitIntervalMs: number
  readonly handlerTimeoutMs: number
  readonly purgeResolvedRecords: boolean
  readonly purgeIntervalMs: number
  readonly checkTopicSettings: boolean
  /** kafkajs consumer timing. */
  readonly consumer: { readonly maxWaitTimeInMs: number; readonly sessionTimeout: number; readonly heartbeatInterval: number; readonly rebalanceTimeout: number }
  readonly shutdownTimeoutMs: number
  readonly metricsPort: number
  readonly metricsHost: string
  readonly adminToken: string | undefined
  readonly logLevel: LogLevel
  /** Deprecated flags that were used, with what to do instead (logged at start). */
  readonly deprecations: readonly string[]
}

/** core's group rule, shared with `detour`: errors name the flags. */
function groupIds(args: { 'group-id'?: string; 'worker-group-id'?: string; 'consumer-group'?: string }): ReturnType<typeof resolveGroupIdFlags> {
  try {
    return resolveGroupIdFlags(args)
  } catch (error) {
    if (error instanceof DetourConfigError) throw new Error(`${error.option} ${error.reason}`)
    throw error
  }
}

export function toRunSettings(args: RunArgs): RunSettings {
  const { groupId, workerGroupId, deprecation } = groupIds(args)
  const backoff: BackoffOption =
    args.backoff === 'constant'
      ? { type: 'constant', delayMs: args['initial-delay-ms'] }
      : {
          type: 'exponential',
          initialDelayMs: args['initial-delay-ms'],
          maxDelayMs: args['max-delay-ms'],
          multiplier: args.multiplier,
          jitter: args.jitter,
        }
  return {
    connection: {
      brokers: args.brokers,
      clientId: args['client-id'],
      ssl: args.ssl || args['ssl-ca-file'] !== undefined,
      sslCaFile: args['ssl-ca-file'],
      saslMechanism: args['sasl-mechanism'],
      saslUsername: args['sasl-username'],
      saslPassword: args['sasl-password'],
    },
    handlerPath: args.handler,
    groupId,
    workerGroupId,
    topics: args.topics,
    topicNaming: { retry: args['retry-topic-template'], redirect: args['redirect-topic-template'], error: args['error-topic-template'] },
    createTopics: args['create-topics'],
    backoff,
    maxAttempts: args['max-attempts'],
    maxRetryDurationMs: args['max-retry-duration-ms'],
    exhaustedPolicy: args['exhausted-policy'],
    maxInFlight: args['max-in-flight'],
    maxBufferedMessages: args['max-buffered-messages'],
    commitIntervalMs: args['commit-interval-ms'],
    handlerTimeoutMs: args['handler-timeout-ms'],
    purgeResolvedRecords: args['purge-resolved-records'],
    purgeIntervalMs: args['purge-interval-ms'],
    checkTopicSettings: args['check-topic-settings'],
    consumer: {
      maxWaitTimeInMs: args['max-wait-time-ms'],
      sessionTimeout: args['session-timeout-ms'],
      heartbeatInterval: args['heartbeat-interval-ms'],
      rebalanceTimeout: args['rebalance-timeout-ms'],
    },
    shutdownTimeoutMs: args['shutdown-timeout-ms'],
    metricsPort: args['metrics-port'],
    metricsHost: args['metrics-host'],
    adminToken: args['admin-token'],
    logLevel: args['log-level'],
    deprecations: deprecation === undefined ? [] : [deprecation],
  }
}

/** The effective configuration for the start-up log line: credentials replaced by `[redacted]`. */
export function redactedSettings(settings: RunSettings): Record<string, unknown> {
  const { connection, adminToken, ...rest } = settings
  return {
    ...rest,
    adminToken: adminToken === undefined ? undefined : '[redacted]',
    brokers: connection.brokers,
    clientId: connection.clientId,
    ssl: connection.ssl,
    sslCaFile: connection.sslCaFile,
    saslMechanism: connection.saslMechanism,
    saslUsername: connection.saslUsername,
    saslPassword: connection.saslPassword === undefined ? undefined : '[redacted]',
  }
}

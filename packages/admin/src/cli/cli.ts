import yargs, { type Argv } from 'yargs'
import { CLI_ENV_PREFIX, dropForeignEnvArguments } from '@detour/core'
import { ExitCodes, exitCodeOf, isAdminError } from '../errors/index.js'
import type { AdminService } from '../service/admin-service.js'
import {
  consoleCommand,
  dltListCommand,
  dltReplayCommand,
  dltShowCommand,
  inspectCommand,
  releaseCommand,
  type CommandIo,
} from './commands.js'
import {
  connectionOptions,
  filterOptions,
  jsonOption,
  list,
  scopeOptions,
  toConnection,
  toFilter,
  groupIds,
  workerOptions,
  type ConnectionArgs,
  type ScopeArgs,
  type WorkerArgs,
} from './options.js'
import { terminalConfirm, type Confirm } from './prompt.js'
import { cliLogger, kafkaServiceFactory, type ServiceFactory } from './service-factory.js'

const DESCRIPTION = `Detour operator tool: see what is pending and why, browse and replay dead letters, release stuck ids —
from the command line, or in a web console (detour console).
Every flag can also be set with an environment variable DETOUR_<FLAG> (e.g. DETOUR_BROKERS, DETOUR_SASL_PASSWORD,
DETOUR_ADMIN_TOKEN, DETOUR_CONSOLE_TOKEN): the worker's DETOUR_* settings work here as they are. --group-id is
the main app's group (the SDK's groupId, as for detour-retry run); --consumer-group is its deprecated old name.

Exit codes: 0 done (something found or written), 1 failure (Kafka/worker unreachable, refused or failed write),
2 usage error (also: a confirmation is needed but stdin is no terminal and --yes is missing),
3 nothing found or nothing to do, 4 declined at the confirmation prompt (nothing written).`

const ENV_PREFIX = CLI_ENV_PREFIX

class UsageError extends Error {}

export interface CliOptions {
  readonly stdout?: { write(text: string): unknown }
  readonly stderr?: { write(text: string): unknown }
  readonly confirm?: Confirm
  /** Resolves when `detour console` should stop. @defaultValue SIGINT or SIGTERM */
  readonly stopped?: () => Promise<void>
  /** Builds the service from the flags (tests pass stand-ins). */
  readonly serviceFactory?: ServiceFactory
}

/** The part of yargs' runtime API used below (not in @types/yargs). */
interface YargsInternals {
  getOptions(): { key: Record<string, unknown>; alias: Record<string, string[] | undefined>; deprecatedOptions: Record<string, unknown> }
  getInternalMethods(): { getUsageInstance(): { getDescriptions(): Record<string, string | undefined> } }
}

/** `max-wait-time-ms` → `DETOUR_MAX_WAIT_TIME_MS` (what `.env('DETOUR')` reads). */
function envName(flag: string): string {
  return `${ENV_PREFIX}_${flag.replace(/-/g, '_').toUpperCase()}`
}

/**
 * Appends each flag's environment variable to its help text (`[env: DETOUR_BROKERS]`), as
 * `detour-retry run --help` does. Call it last in a command's builder; positionals are left alone.
 */
function withEnvNames<T>(y: Argv<T>, positionals: readonly string[] = []): Argv<T> {
  const descriptions = (y as unknown as YargsInternals).getInternalMethods().getUsageInstance().getDescriptions()
  for (const [key, raw] of Object.entries(descriptions)) {
    if (key === 'help' || key === 'version' || positionals.includes(key) || raw === undefined) continue
    const text = raw.replace(/^__yargsString__:/, '')
    if (!text.includes('[env: ')) y.describe(key, `${text} [env: ${envName(key)}]`)
  }
  return y
}

function signalStop(): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      process.off('SIGINT', done)
      process.off('SIGTERM', done)
      resolve()
    }
    process.once('SIGINT', done)
    process.once('SIGTERM', done)
  })
}

/** The flags every Kafka command shares, each with its variable: for `detour --help`. */
function sharedSettings(): string {
  const y = kafkaCommand(yargs([])) as unknown as YargsInternals
  const keys = Object.keys(y.getInternalMethods().getUsageInstance().getDescriptions()).filter((k) => k !== 'help' && k !== 'version')
  const deprecated = y.getOptions().deprecatedOptions
  const width = Math.max(...keys.map((k) => k.length)) + 4
  return [
    'Settings shared by inspect, dlt, release and console (the flag, then the environment variable it also reads;',
    '`detour <command> --help` shows every flag of a command with its variable):',
    ...keys.map((k) => `  ${`--${k}`.padEnd(width)}${envName(k)}${k in deprecated ? ' (deprecated)' : ''}`),
  ].join('\n')
}

/** The Kafka and scope flags of a command, with a worker URL when it can use one. */
function kafkaCommand<T>(y: Argv<T>) {
  return workerOptions(scopeOptions(connectionOptions(y)))
}

/**
 * Parses `argv` (without the node and script paths), runs the command and resolves with its exit code
 * (see {@link ExitCodes}).
 */
export async function runCli(argv: readonly string[], options: CliOptions = {}): Promise<number> {
  const stdout = options.stdout ?? process.stdout
  const stderr = options.stderr ?? process.stderr
  const io: CommandIo = { stdout, stderr, confirm: options.confirm ?? terminalConfirm, stopped: options.stopped ?? signalStop }
  const factory = options.serviceFactory ?? kafkaServiceFactory
  let exitCode: number = ExitCodes.OK

  /** Builds the service from the parsed flags, runs `fn`, and always closes the service. */
  const withService = async (
    args: ConnectionArgs & ScopeArgs & WorkerArgs & { 'app-metrics-url'?: string[] },
    fn: (service: AdminService, logger: ReturnType<typeof cliLogger>) => Promise<number>,
  ): Promise<void> => {
    const logger = cliLogger(args['log-level'], stderr)
    const { groupId, workerGroupId, deprecation } = groupIds(args)
    if (deprecation !== undefined) stderr.write(`detour: ${deprecation}\n`)
    const service = factory(
      {
        connection: toConnection(args),
        scope: {
          consumerGroup: groupId,
          sourceTopics: args.topics,
          naming: { retry: args['retry-topic-template'], redirect: args['redirect-topic-template'], error: args['error-topic-template'] },
          workerGroupId,
        },
        logLevel: args['log-level'],
        readerGroupPrefix: args['reader-group-prefix'],
        maxWaitTimeMs: args['max-wait-time-ms'],
        readTimeoutMs: args['read-timeout-ms'],
        workerUrl: args['worker-url'],
        adminToken: args['admin-token'],
        appMetricsUrls: args['app-metrics-url'] ?? [],
      },
      logger,
    )
    try {
      exitCode = await fn(service, logger)
    } finally {
      await service.close()
    }
  }

  const parser = yargs([...argv])
    .scriptName('detour')
    .usage(`$0 <command> [options]\n\n${DESCRIPTION}`)
    .env(ENV_PREFIX)
    .middleware(((args: Record<string, unknown>, y: YargsInternals) => dropForeignEnvArguments(args, y.getOptions(), argv)) as unknown as (args: object) => void, true)
    .command(
      'inspect',
      'Show pending ids per consumer group, source topic and partition: groups, oldest pending and its age, why each id waits',
      (y) =>
        withEnvNames(jsonOption(kafkaCommand(y))
          .option('retry-scan', {
            type: 'boolean',
            default: true,
            describe: "Read the unresolved tail of the retry topics (from the worker's committed offsets) to tell waiting ids from stuck ones",
          })
          .example('$0 inspect --brokers kafka:9092 --group-id orders-app --topics orders', 'Pending ids of the group orders-app on orders')
          .example('$0 inspect ... --worker-url http://retry-worker:9464 --json', 'With the held groups of a running worker, as JSON')
          .epilogue('Exit code 0 when something is pending or held, 3 when nothing is.')),
      async (args) => withService(args, (service) => inspectCommand(service, io, { json: args.json, retryScan: args['retry-scan'] })),
    )
    .command('dlt', 'Browse and replay the error (dead-letter) topic: dlt list | dlt show | dlt replay', (dlt) =>
      dlt
        .command(
          'list',
          'List dead letters, newest first, with filters',
          (y) =>
            withEnvNames(filterOptions(jsonOption(kafkaCommand(y)))
              .option('limit', { type: 'number', default: 50, describe: 'Show at most this many (the newest)' })
              .example('$0 dlt list ... --reason exhausted --since 2h', 'Exhausted retries of the last two hours')
              .epilogue('Exit code 0 when dead letters match, 3 when none does.')),
          async (args) => withService(args, (service) => dltListCommand(service, io, { json: args.json, filter: toFilter(args), limit: args.limit })),
        )
        .command(
          'show <coordinates>',
          'Show one dead letter: every Detour header decoded, key and value as UTF-8 or base64',
          (y) =>
            withEnvNames(
              jsonOption(kafkaCommand(y))
                .positional('coordinates', { type: 'string', demandOption: true, describe: '<partition>:<offset> (one error topic) or <error topic>/<partition>/<offset>' })
                .epilogue('Exit code 3 when no dead letter sits there.'),
              ['coordinates'],
            ),
          async (args) => withService(args, (service) => dltShowCommand(service, io, { json: args.json, coordinates: args.coordinates })),
        )
        .command(
          'replay [coordinates..]',
          'Send dead letters back: to their source topic (default) or into the retry flow. A dry run unless --execute',
          (y) =>
            withEnvNames(filterOptions(jsonOption(kafkaCommand(y)))
              .positional('coordinates', { type: 'string', array: true, describe: 'Dead letters to replay: <partition>:<offset> or <error topic>/<partition>/<offset>' })
              .option('to', {
                choices: ['source', 'retry'] as const,
                default: 'source' as const,
                describe: 'source: a new message on the original topic and partition (bytes as they were, plus detour-replayed-from); retry: back into the retry flow under the original id, behind the group\'s pending ids',
              })
              .option('all', { type: 'boolean', default: false, describe: 'Replay every dead letter of the error topics when no coordinates or filter narrow it' })
              .option('dry-run', { type: 'boolean', default: true, describe: 'Only show what would be replayed (the default)' })
              .option('execute', { type: 'boolean', default: false, describe: 'Write the replays (asks for confirmation unless --yes)' })
              .option('force', { type: 'boolean', default: false, describe: 'Replay again dead letters the ledger (<error topic>-replays) says were replayed' })
              .option('rate', { type: 'number', default: 10, describe: 'Replays per second at most' })
              .option('max', { type: 'number', default: 1000, describe: 'Refuse when more dead letters than this match (narrow the filters)' })
              .option('yes', { type: 'boolean', default: false, describe: 'Do not ask for confirmation' })
              .check((a) => {
                if (!(a.rate > 0)) throw new Error(`--rate must be a positive number, got ${a.rate}`)
                if (!Number.isInteger(a.max) || a.max < 1) throw new Error(`--max must be a positive integer, got ${a.max}`)
                return true
              })
              .example('$0 dlt replay ... 0:42 0:43', 'Dry run: what replaying two dead letters would do')
              .example('$0 dlt replay ... --reason exhausted --since 1h --execute', 'Replay the last hour\'s exhausted retries to their source topics')
              .epilogue('Exit code 0 when something is (or would be) replayed, 3 when nothing is left to replay, 4 when declined.'), ['coordinates']),
          async (args) =>
            withService(args, (service) =>
              dltReplayCommand(service, io, {
                json: args.json,
                coordinates: list(args.coordinates ?? []),
                filter: toFilter(args),
                all: args.all,
                to: args.to,
                execute: args.execute || args['dry-run'] === false,
                force: args.force,
                rate: args.rate,
                max: args.max,
                yes: args.yes,
              }),
            ),
        )
        .demandCommand(1, 'Choose a dlt command: list, show or replay (see detour dlt --help)'),
    )
    .command(
      'release',
      'Release a held group through the worker, or a stuck id directly (--direct writes its tombstone)',
      (y) =>
        withEnvNames(jsonOption(kafkaCommand(y))
          .option('id', { type: 'string', demandOption: 'set --id to the Detour id (<topic>/<partition>/<offset>) to release', describe: 'Detour id of the held or stuck message' })
          .option('direct', {
            type: 'boolean',
            default: false,
            describe: 'Write the tombstone yourself (for ids no worker will release: inspect shows them as no-retry-record)',
          })
          .option('force', { type: 'boolean', default: false, describe: '--direct: release even an id the worker still has a retry record for (breaks its order)' })
          .option('yes', { type: 'boolean', default: false, describe: 'Do not ask for confirmation' })
          .example('$0 release --worker-url http://retry-worker:9464 --id orders/3/1042 ...', 'Release a held group through the worker')
          .example('$0 release --direct --id orders/3/1042 --brokers kafka:9092 --group-id orders-app --topics orders', 'Release a stuck id')
          .check((a) => {
            if (!a.direct && a['worker-url'] === undefined) throw new Error('release needs --worker-url (release through the worker) or --direct (write the tombstone)')
            return true
          })
          .epilogue('Exit code 0 when released, 3 when the id is not pending (--direct) or not held (worker), 4 when declined.')),
      async (args) => withService(args, (service) => releaseCommand(service, io, { json: args.json, id: args.id, direct: args.direct, force: args.force, yes: args.yes })),
    )
    .command(
      'console',
      'Serve the web console: pending groups, held groups, dead letters with replay, main apps\' readiness',
      (y) =>
        withEnvNames(kafkaCommand(y)
          .option('host', { type: 'string', default: '127.0.0.1', describe: 'Interface to listen on; anything but loopback needs --console-token' })
          .option('port', { type: 'number', default: 9470, describe: 'Port (0 picks a free one)' })
          .option('console-token', {
            alias: 'token',
            type: 'string',
            describe: 'Required on every request (login form or Authorization: Bearer); prefer DETOUR_CONSOLE_TOKEN; at least 16 characters',
          })
          .option('app-metrics-url', { type: 'string', coerce: list, describe: "A main app's /metrics URL, for its readiness (repeat for several)" })
          .option('refresh-ms', { type: 'number', default: 5000, describe: 'How often the page refreshes the pending view' })
          .check((a) => {
            if (!Number.isInteger(a.port) || a.port < 0 || a.port > 65535) throw new Error(`--port must be 0..65535, got ${a.port}`)
            if (!Number.isInteger(a['refresh-ms']) || a['refresh-ms'] < 500) throw new Error(`--refresh-ms must be an integer >= 500, got ${a['refresh-ms']}`)
            return true
          })
          .example('$0 console --brokers kafka:9092 --group-id orders-app --topics orders --worker-url http://127.0.0.1:9464', 'On http://127.0.0.1:9470/')),
      async (args) =>
        withService(args, (service, logger) =>
          consoleCommand(service, io, { host: args.host, port: args.port, token: args['console-token'], refreshMs: args['refresh-ms'] }, logger),
        ),
    )
    .epilogue(sharedSettings())
    .demandCommand(1, 'Choose a command: inspect, dlt, release or console (see --help)')
    .recommendCommands()
    .strict()
    .help()
    .alias('help', 'h')
    .version(false)
    .wrap(Math.min(120, process.stdout.columns ?? 120))
    .exitProcess(false)
    .fail((message, error, y) => {
      // A custom fail handler must throw, or yargs would go on and run the command.
      if (error && !message) throw error
      y.showHelp((text) => stderr.write(`${text}\n\n`))
      throw new UsageError(message)
    })
  try {
    let helped = false
    await parser.parseAsync([...argv], {}, (_error, _parsed, output) => {
      if (output) {
        helped = true
        stdout.write(`${output}\n`)
      }
    })
    if (helped) return ExitCodes.OK
  } catch (error) {
    if (error instanceof UsageError) {
      stderr.write(`detour: ${error.message}\n`)
      return ExitCodes.USAGE
    }
    stderr.write(`detour: ${error instanceof Error ? error.message : String(error)}\n`)
    if (!isAdminError(error) && error instanceof Error && process.env.DETOUR_DEBUG) stderr.write(`${error.stack}\n`)
    return exitCodeOf(error)
  }
  return exitCode
}

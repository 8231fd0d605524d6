import yargs, { type Argv } from 'yargs'
import { CLI_ENV_PREFIX, dropForeignEnvArguments } from '@detour/core'
import { heldCommand, releaseCommand } from './admin-commands.js'
import { settingOptions, toRunSettings } from '../settings/index.js'
import { runWorkerCommand, type CliIo } from './run-command.js'

const DESCRIPTION = `Detour retry worker: consumes a main app's retry topics, runs its handler again with backoff in
per-key order, and releases each resolved message with a tombstone on the redirect topic.
Every flag can also be set with an environment variable DETOUR_<FLAG> (\`detour-retry run --help\` lists them).
--group-id is the main app's group (the SDK's groupId); --consumer-group / DETOUR_CONSUMER_GROUP is its deprecated
old name.`

const ENV_PREFIX = CLI_ENV_PREFIX

const RUN_ENVIRONMENT = `Environment: every flag also reads the variable shown as [env: ...] (DETOUR_ + the flag in upper case, "-"
becomes "_"); flags win. Prefer DETOUR_SASL_PASSWORD and DETOUR_ADMIN_TOKEN to their flags (the process list shows
flags). The Helm chart (deploy/helm/detour-retry-worker) sets the same variables from its values.`

class UsageError extends Error {}

/** The part of yargs' runtime API used below (not in @types/yargs). */
interface YargsInternals {
  getOptions(): { key: Record<string, unknown>; alias: Record<string, string[] | undefined> }
}

function adminUrl<T>(y: Argv<T>) {
  return y
    .option('url', {
      type: 'string',
      default: 'http://127.0.0.1:9464',
      describe: "Base URL of a running worker's HTTP server (its --metrics-host/--metrics-port)",
    })
    .option('admin-token', {
      type: 'string',
      describe: "The worker's --admin-token, sent as Authorization: Bearer (needed unless --url is loopback on the worker's host; prefer DETOUR_ADMIN_TOKEN)",
    })
}

/**
 * Parses `argv` (without the node and script paths) and runs the command. Resolves with the exit code:
 * 0 on success, 1 on a usage error or a failed command.
 */
export async function runCli(argv: string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr, cwd: process.cwd() }): Promise<number> {
  let exitCode = 0
  const parser = yargs(argv)
    .scriptName('detour-retry')
    .usage(`$0 <command> [options]\n\n${DESCRIPTION}`)
    .env(ENV_PREFIX)
    .middleware(((args: Record<string, unknown>, y: YargsInternals) => dropForeignEnvArguments(args, y.getOptions(), process.argv)) as unknown as (args: object) => void, true)
    .command(
      'run',
      'Run the retry worker (until SIGTERM/SIGINT)',
      (y) =>
        settingOptions(y)
          .check((args) => {
            toRunSettings(args)
            return true
          })
          .example(
            '$0 run --brokers kafka:9092 --group-id orders-app --topics orders --handler ./dist/handler.js',
            'Serve the retry topic of "orders" for the main app\'s group "orders-app"',
          )
          .epilog(RUN_ENVIRONMENT),
      async (args) => {
        exitCode = await runWorkerCommand(toRunSettings(args), io)
      },
    )
    .command(
      'held',
      'List the groups a running worker holds (exhausted messages under --exhausted-policy hold)',
      (y) => adminUrl(y),
      async (args) => {
        exitCode = await heldCommand(args.url, args['admin-token'], io)
      },
    )
    .command(
      'release',
      'Release a held group of a running worker: its tombstone is written and the group continues',
      (y) =>
        adminUrl(y).option('id', {
          type: 'string',
          demandOption: 'set --id to the held message id (see `detour-retry held`)',
          describe: 'Detour id of the held message (<topic>/<partition>/<offset>)',
        }),
      async (args) => {
        exitCode = await releaseCommand(args.url, args.id, args['admin-token'], io)
      },
    )
    .demandCommand(1, 'Choose a command: run, held or release (see --help)')
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
      y.showHelp((text) => io.stderr.write(`${text}\n\n`))
      throw new UsageError(message)
    })
  try {
    await parser.parseAsync()
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    io.stderr.write(`detour-retry: ${error.message}\n`)
    return 1
  }
  return exitCode
}

/** The environment variables' prefix of every Detour command line (`DETOUR_BROKERS` for `--brokers`). */
export const CLI_ENV_PREFIX = 'DETOUR'

/** The options a yargs instance knows (its `getOptions()`): names and aliases. */
export interface KnownCliOptions {
  readonly key: Record<string, unknown>
  readonly alias: Record<string, readonly string[] | undefined>
}

function camelCase(name: string): string {
  return name.toLowerCase().replace(/[_-]+(.)/g, (_match, next: string) => next.toUpperCase())
}

/**
 * yargs' `.env('DETOUR')` turns every `DETOUR_*` variable into an argument, and `.strict()` rejects the
 * ones a command does not know (a worker's `DETOUR_HANDLER` would break `detour inspect`; `DETOUR_URL`
 * would break `detour-retry run`). Run as a middleware before validation, this drops the arguments that
 * came only from such variables; unknown flags typed on the command line (`typedArgs`) are still rejected.
 */
export function dropForeignEnvArguments(argv: Record<string, unknown>, options: KnownCliOptions, typedArgs: readonly string[], env: NodeJS.ProcessEnv = process.env): void {
  const known = new Set<string>()
  for (const key of Object.keys(options.key)) {
    known.add(key)
    known.add(camelCase(key))
    for (const alias of options.alias[key] ?? []) known.add(alias)
  }
  const typed = new Set(
    typedArgs
      .filter((token) => token.startsWith('--'))
      .map((token) => token.slice(2).split('=')[0] ?? '')
      .flatMap((name) => [name, camelCase(name), name.replace(/^no-/, '')]),
  )
  for (const variable of Object.keys(env)) {
    if (!variable.startsWith(`${CLI_ENV_PREFIX}_`)) continue
    const name = variable.slice(CLI_ENV_PREFIX.length + 1).split('__')[0] ?? ''
    const keys = [camelCase(name), name.toLowerCase().replace(/_/g, '-')]
    if (keys.some((key) => known.has(key) || typed.has(key))) continue
    for (const key of keys) Reflect.deleteProperty(argv, key)
  }
}

/**
 * The demo's command-line words, ready for yargs. `pnpm demo -- --chaos` (the form many users type) makes
 * pnpm pass `--` on, and yargs takes everything after `--` as positionals: the options would be ignored
 * and the default demo run. A leading `--` is dropped; any other positional is rejected by the demo.
 */
export function demoArguments(words: readonly string[]): string[] {
  return words[0] === '--' ? words.slice(1) : [...words]
}

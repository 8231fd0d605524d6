/**
 * `--ci`: the chaos run of continuous integration (`.ci/run`), a few minutes on a 2-core machine: a 3-node
 * Apache Kafka cluster, two main apps and the worker killed the whole run long, brokers killed and
 * restarted, and floors on what the chaos must have done, so a run that killed too little fails.
 */
export const CI_PRESET: readonly string[] = [
  '--chaos',
  '--brokers', '3',
  '--messages', '3000',
  '--keys', '200',
  '--failure-rate', '0.1',
  '--rate', '40',
  '--min-sigkills', '10',
  '--min-broker-kills', '2',
  '--broker-kill-interval', '15-30',
  // About 110 s on a loaded 2-core machine: a run that is not resolved 5 min after production started
  // fails (its unresolved messages counted) instead of holding CI for the default 15 min.
  '--timeout-ms', '300000',
]

/**
 * The demo's command-line words, ready for yargs (configured so that the last of repeated options wins).
 *
 * - `pnpm demo -- --chaos` (the form many users type) makes pnpm pass `--` on, and yargs takes everything
 *   after `--` as positionals: the options would be ignored and the default demo run. A leading `--` is
 *   dropped; any other positional is rejected by the demo.
 * - `--ci` is replaced by {@link CI_PRESET} where it stands: options after it override the preset's.
 */
export function demoArguments(words: readonly string[]): string[] {
  const rest = words[0] === '--' ? words.slice(1) : [...words]
  const end = rest.indexOf('--')
  const options = end === -1 ? rest : rest.slice(0, end)
  const expanded = options.flatMap((word) => (word === '--ci' ? [...CI_PRESET] : [word]))
  return end === -1 ? expanded : [...expanded, ...rest.slice(end)]
}

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** `10m`, `90s`, `1h30m`, `1500ms`, or a number of seconds, in milliseconds. Throws on anything else. */
export function parseDuration(text: string): number {
  const trimmed = text.trim()
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000)
  const parts = [...trimmed.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)]
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== trimmed) throw new Error(`"${text}" is not a duration (e.g. 10m, 90s, 1h30m)`)
  return Math.round(parts.reduce((total, p) => total + Number(p[1]) * (UNITS[p[2] ?? 's'] ?? 1000), 0))
}

/** `3-8` (seconds; `2.5-6` too) as `[3000, 8000]` ms. Throws unless 0 <= min <= max. */
export function parseSecondsRange(text: string): [number, number] {
  const match = /^\s*(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)\s*$/.exec(text)
  const min = Number(match?.[1])
  const max = Number(match?.[2])
  if (!match || !(min <= max)) throw new Error(`"${text}" is not a range of seconds min-max (e.g. 3-8)`)
  return [Math.round(min * 1000), Math.round(max * 1000)]
}

/** Command-line options of `pnpm bench`. */
export interface BenchArgs {
  /** Fewer repetitions and smaller workloads: a smoke run, not figures to publish. */
  readonly quick: boolean
  /** Benchmarks to run (all when empty). */
  readonly only: readonly string[]
  /** Where to write the results. */
  readonly out: string | undefined
  readonly help: boolean
}

export const usage = `Usage: pnpm bench [--quick] [--only <name>[,<name>...]] [--out <file>]

  --quick        fewer repetitions and smaller workloads (smoke run)
  --only <name>  run only these benchmarks (repeatable or comma-separated)
  --out <file>   results file (default: bench/results.json)
`

/** Parses argv (without node and the script). Throws on unknown options, with the usage text. */
export function parseArgs(argv: readonly string[], known: readonly string[]): BenchArgs {
  let quick = false
  let help = false
  let out: string | undefined
  const only: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? ''
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined]
    const value = (): string => {
      const next = inline ?? argv[++i]
      if (next === undefined || next.startsWith('--')) throw new Error(`${flag} needs a value\n\n${usage}`)
      return next
    }
    switch (flag) {
      case '--':
        break
      case '--quick':
        quick = true
        break
      case '--only':
        only.push(...value().split(',').map((name) => name.trim()).filter(Boolean))
        break
      case '--out':
        out = value()
        break
      case '--help':
      case '-h':
        help = true
        break
      default:
        throw new Error(`Unknown option "${arg}"\n\n${usage}`)
    }
  }
  for (const name of only) {
    if (!known.includes(name)) throw new Error(`Unknown benchmark "${name}"; choose from: ${known.join(', ')}`)
  }
  return { quick, only, out, help }
}

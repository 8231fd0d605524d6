/**
 * The validator's output: `ok`, `FAIL`, `skip` and `note` lines under `==` sections, and a summary.
 * `print` receives each line (the unit test collects them instead of printing).
 */
export class Report {
  failures = 0
  readonly failed: string[] = []
  readonly skipped: string[] = []
  readonly checked: string[] = []
  private readonly started = Date.now()

  constructor(private readonly print: (line: string) => void = (line) => console.log(line)) {}

  section(title: string): void {
    this.print(`\n== ${title}`)
  }

  ok(message: string): void {
    this.checked.push(message)
    this.print(`  ok    ${message}`)
  }

  fail(message: string): void {
    this.failures++
    this.failed.push(message)
    this.print(`  FAIL  ${message}`)
  }

  skip(message: string): void {
    this.skipped.push(message)
    this.print(`  skip  ${message}`)
  }

  note(message: string): void {
    this.print(`  note  ${message}`)
  }

  /** Runs a check; an exception is one failure (with its stack), never the end of the run. */
  async run(label: string, check: () => unknown): Promise<void> {
    try {
      await check()
    } catch (error) {
      this.fail(`${label}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
    }
  }

  summary(): number {
    this.section('summary')
    this.print(`  ${this.checked.length} checks passed, ${this.failures} failed, ${this.skipped.length} skipped; ${((Date.now() - this.started) / 1000).toFixed(1)} s`)
    for (const skip of this.skipped) this.print(`  skipped: ${skip}`)
    if (this.failures > 0) {
      this.print(`  validate-deploy: ${this.failures} check(s) FAILED`)
      return 1
    }
    this.print('  validate-deploy: all checks passed')
    return 0
  }
}

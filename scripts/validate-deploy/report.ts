/** The validator's output: `ok`, `FAIL`, `skip` and `note` lines under `==` sections, and a summary. */
export class Report {
  failures = 0
  readonly skipped: string[] = []
  readonly checked: string[] = []
  private readonly started = Date.now()

  section(title: string): void {
    console.log(`\n== ${title}`)
  }

  ok(message: string): void {
    this.checked.push(message)
    console.log(`  ok    ${message}`)
  }

  fail(message: string): void {
    this.failures++
    console.log(`  FAIL  ${message}`)
  }

  skip(message: string): void {
    this.skipped.push(message)
    console.log(`  skip  ${message}`)
  }

  note(message: string): void {
    console.log(`  note  ${message}`)
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
    console.log(`  ${this.checked.length} checks passed, ${this.failures} failed, ${this.skipped.length} skipped; ${((Date.now() - this.started) / 1000).toFixed(1)} s`)
    for (const skip of this.skipped) console.log(`  skipped: ${skip}`)
    if (this.failures > 0) {
      console.log(`  validate-deploy: ${this.failures} check(s) FAILED`)
      return 1
    }
    console.log('  validate-deploy: all checks passed')
    return 0
  }
}

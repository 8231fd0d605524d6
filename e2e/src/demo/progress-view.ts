import type { Progress } from '../system/scenario.js'

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1).padStart(5)}s`
}

/** One compact line: what the demo shows while it runs. */
export function progressLine(p: Progress): string {
  const redirected = Object.values(p.redirected).reduce((a, b) => a + b, 0)
  const reasons = Object.entries(p.redirected)
    .map(([reason, count]) => `${reason} ${count}`)
    .join(', ')
  return `[${seconds(p.elapsedMs)}] ` + [
    `produced ${p.produced}/${p.total}`,
    `processed ${p.processed}/${p.expected}`,
    `redirected ${redirected}${reasons ? ` (${reasons})` : ''}`,
    `retried ${p.retried}`,
    `dead-lettered ${p.deadLettered}`,
    `pending ${p.pending}`,
    ...(p.restarts > 0 ? [`restarts ${p.restarts}`] : []),
    ...(p.kills > 0 ? [`kills ${p.kills}`] : []),
    ...(p.brokerKills > 0 ? [`broker kills ${p.brokerKills}${p.brokerDown === undefined ? '' : ` (broker ${p.brokerDown} down)`}`] : []),
  ].join(' | ')
}

/**
 * Live progress: on a terminal one line rewritten in place; otherwise (CI logs, pipes) a line every
 * `intervalMs`.
 */
export class ProgressView {
  private last = 0
  private drawn = false

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly intervalMs = 2000,
  ) {}

  get interactive(): boolean {
    return this.stream.isTTY === true
  }

  update(progress: Progress): void {
    const line = progressLine(progress)
    if (this.interactive) {
      const width = this.stream.columns ?? 120
      this.stream.write(`\r\x1b[2K${line.length > width - 1 ? `${line.slice(0, width - 2)}…` : line}`)
      this.drawn = true
      return
    }
    if (Date.now() - this.last < this.intervalMs) return
    this.last = Date.now()
    this.stream.write(`${line}\n`)
  }

  /** Ends the live line so that the next output starts on a fresh line. */
  finish(): void {
    if (this.drawn) this.stream.write('\n')
    this.drawn = false
  }

  /**
   * Shows `label` with a running clock until `work` settles (on a terminal one line rewritten in place;
   * otherwise the label once), then `label: done in N s`. Resolves or rejects as `work` does.
   */
  async during<T>(label: string, work: Promise<T>): Promise<T> {
    const started = Date.now()
    const elapsed = (): string => `${((Date.now() - started) / 1000).toFixed(1)} s`
    let timer: NodeJS.Timeout | undefined
    if (this.interactive) {
      const draw = (): void => {
        this.stream.write(`\r\x1b[2K${label} … ${elapsed()}`)
        this.drawn = true
      }
      draw()
      timer = setInterval(draw, 200)
    } else {
      this.stream.write(`${label} …\n`)
    }
    try {
      const result = await work
      if (timer) clearInterval(timer)
      this.note(`${label}: done in ${elapsed()}`)
      return result
    } catch (error) {
      if (timer) clearInterval(timer)
      this.note(`${label}: failed after ${elapsed()}`)
      throw error
    } finally {
      this.drawn = false
    }
  }

  /** Prints a status line without garbling the live line. */
  note(text: string): void {
    if (this.drawn) this.stream.write('\r\x1b[2K')
    this.drawn = false
    this.stream.write(`${text}\n`)
  }
}

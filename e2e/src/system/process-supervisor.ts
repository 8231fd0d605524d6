import { spawn, type ChildProcess } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { createWriteStream, mkdtempSync, readdirSync, readFileSync, type WriteStream } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { StallReport } from './stall-watchdog.js'

/** How to start one child process (run with the current `node`). */
export interface ProcessSpec {
  /** Unique name, also the log file name (`<logDir>/<name>.log`). */
  readonly name: string
  readonly script: string
  readonly args?: readonly string[]
  /** Added to the orchestrator's environment (minus its `DETOUR_*`/`DEMO_*`/`NODE_OPTIONS`). */
  readonly env?: Readonly<Record<string, string>>
  readonly cwd?: string
  /** Node options, e.g. `['--import', preload]`. */
  readonly nodeArgs?: readonly string[]
  /** Polled by {@link ManagedProcess.waitReady}: ready when it answers 200. */
  readonly readyUrl?: string
  /**
   * Polled by the supervisor's watchdog: alive while it answers at all (any status). A process that stops
   * answering is stuck (see {@link WatchdogOptions}). @defaultValue `readyUrl`
   */
  readonly livenessUrl?: string
}

/**
 * A process the watchdog found stuck (or that ignored SIGTERM), with its JavaScript stack at that moment:
 * from a Node diagnostic report (SIGUSR2), or, when its event loop was starved and could not write one,
 * from the child's own stall watchdog (`child-preload.ts`).
 */
export interface StuckRecord {
  readonly name: string
  readonly incarnation: number
  readonly pid: number | undefined
  readonly reason: string
  readonly stack: string
  readonly at: number
}

export interface WatchdogOptions {
  /** A running process whose liveness URL has not answered for this long is stuck. @defaultValue 30000 */
  readonly livenessTimeoutMs?: number
  /** Time a new process gets before its liveness URL must answer. @defaultValue 60000 */
  readonly startupMs?: number
  /** The child's own watchdog reports its stack after this long without a timer run. @defaultValue 10000 */
  readonly stallMs?: number
}

export interface ExitRecord {
  readonly incarnation: number
  readonly pid: number | undefined
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  /** True when the supervisor asked for it (kill/stop); false for a crash. */
  readonly expected: boolean
  /** What the supervisor sent, if anything. */
  readonly sent: 'SIGKILL' | 'SIGTERM' | undefined
  readonly at: number
}

interface ManagedProcessEvents {
  exit: [record: ExitRecord]
}

/** The JavaScript stack of a diagnostic report or a stall report, as text. */
function stackText(stack: { message?: string; stack?: string[] } | undefined): string {
  if (!stack) return ''
  return [stack.message ?? '', ...(stack.stack ?? []).map((frame) => `    ${frame.trim()}`)].join('\n')
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

function childEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('DETOUR_') || key.startsWith('DEMO_') || key === 'NODE_OPTIONS') continue
    env[key] = value
  }
  return { ...env, ...extra }
}

/**
 * One supervised child process, possibly started several times (incarnations). Its stdout and stderr
 * are appended to its log file, each incarnation after a marker line.
 */
export class ManagedProcess extends EventEmitter<ManagedProcessEvents> {
  readonly logFile: string
  readonly exits: ExitRecord[] = []
  private child: ChildProcess | undefined
  private exited: Promise<ExitRecord> | undefined
  private sent: 'SIGKILL' | 'SIGTERM' | undefined
  private log: WriteStream
  private count = 0
  /** When the current incarnation started, and when its liveness URL last answered. */
  startedAt = 0
  lastAlive = 0

  constructor(
    readonly spec: ProcessSpec,
    readonly logDir: string,
    private readonly watch: { readonly stallMs?: number; readonly onStuck?: (record: StuckRecord) => void } = {},
  ) {
    super()
    this.logFile = join(logDir, `${spec.name}.log`)
    this.log = createWriteStream(this.logFile, { flags: 'a' })
  }

  /** Where the child's stall watchdog writes (`{pid}` is replaced by the child). */
  private get stallReportPattern(): string {
    return join(this.logDir, `${this.name}.{pid}.stall.json`)
  }

  get name(): string {
    return this.spec.name
  }

  get running(): boolean {
    return this.child !== undefined
  }

  get pid(): number | undefined {
    return this.child?.pid
  }

  /** How many times it was started. */
  get incarnations(): number {
    return this.count
  }

  start(): void {
    if (this.child) throw new Error(`${this.name} is already running (pid ${this.child.pid})`)
    const incarnation = ++this.count
    this.sent = undefined
    // SIGUSR2 makes the child write a diagnostic report (with its JavaScript stack) into the log directory.
    const diagnostics = ['--report-on-signal', '--report-signal=SIGUSR2', `--report-directory=${this.logDir}`]
    const child = spawn(process.execPath, [...diagnostics, ...(this.spec.nodeArgs ?? []), this.spec.script, ...(this.spec.args ?? [])], {
      cwd: this.spec.cwd,
      env: childEnv({
        ...this.spec.env,
        DETOUR_E2E_PROCESS_NAME: this.name,
        DETOUR_E2E_STALL_REPORT: this.stallReportPattern,
        DETOUR_E2E_STALL_MS: String(this.watch.stallMs ?? 10_000),
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
      // Own process group: a Ctrl-C in the terminal reaches only the orchestrator, which then stops the
      // children in order (they must not outlive the broker it hosts; the child preload's orphan guard
      // covers an orchestrator that dies).
      detached: true,
    })
    this.child = child
    this.startedAt = Date.now()
    this.lastAlive = 0
    this.log.write(`\n----- ${this.name} #${incarnation} pid ${child.pid ?? '?'} started ${new Date().toISOString()} -----\n`)
    child.stdout?.pipe(this.log, { end: false })
    child.stderr?.pipe(this.log, { end: false })
    this.exited = new Promise<ExitRecord>((resolve) => {
      const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
        const record: ExitRecord = {
          incarnation,
          pid: child.pid,
          code,
          signal,
          expected: this.sent !== undefined,
          sent: this.sent,
          at: Date.now(),
        }
        this.log.write(`----- ${this.name} #${incarnation} exited code=${code} signal=${signal} ${record.expected ? `(${this.sent} by the supervisor)` : '(unexpected)'} -----\n`)
        this.exits.push(record)
        if (this.child === child) this.child = undefined
        resolve(record)
        this.emit('exit', record)
      }
      child.once('error', (error) => {
        this.log.write(`----- ${this.name} #${incarnation} could not start: ${error.message} -----\n`)
        finish(null, null)
      })
      child.once('close', finish)
    })
  }

  /**
   * Resolves when the ready URL answers 200. A crash meanwhile is waited out (the supervisor restarts
   * crashed processes); rejects when the process was stopped on purpose, or on timeout.
   */
  async waitReady(timeoutMs = 30_000): Promise<void> {
    const url = this.spec.readyUrl
    if (!url) return
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      if (!this.child) {
        const last = this.exits[this.exits.length - 1]
        if (!last || last.expected) throw new Error(`${this.name} is not running; see ${this.logFile}`)
        await sleep(100) // crashed: the supervisor starts it again
        continue
      }
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(1000) })
        await response.arrayBuffer()
        if (response.status === 200) return
      } catch {
        // not listening yet
      }
      await sleep(100)
    }
    throw new Error(`${this.name} was not ready within ${timeoutMs} ms (${url}); see ${this.logFile}`)
  }

  /** The log lines of one incarnation. */
  incarnationLog(incarnation: number): string {
    try {
      const text = readFileSync(this.logFile, 'utf8')
      const start = text.indexOf(`----- ${this.name} #${incarnation} pid`)
      if (start === -1) return ''
      const end = text.indexOf(`----- ${this.name} #${incarnation + 1} pid`, start)
      return text.slice(start, end === -1 ? undefined : end)
    } catch {
      return ''
    }
  }

  /** SIGKILL: a crash the system must survive. Resolves when the process is gone. */
  async kill(): Promise<ExitRecord | undefined> {
    return this.signal('SIGKILL')
  }

  /**
   * SIGTERM and wait; after `timeoutMs` the process is stuck: its stack is taken (see
   * {@link captureStack}) and recorded as stuck, then SIGKILL.
   */
  async stop(timeoutMs = 20_000): Promise<ExitRecord | undefined> {
    const exited = this.exited
    const child = this.child
    if (!child || !exited) return undefined
    const incarnation = this.count
    const timer = setTimeout(() => {
      const reason = `no exit ${timeoutMs} ms after SIGTERM`
      this.log.write(`----- ${this.name}: ${reason}; taking its stack, then SIGKILL -----\n`)
      void this.captureStack(child.pid).then((stack) => {
        this.watch.onStuck?.({ name: this.name, incarnation, pid: child.pid, reason, stack, at: Date.now() })
        child.kill('SIGKILL')
      })
    }, timeoutMs)
    try {
      return await this.signal('SIGTERM')
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * The JavaScript stack of the running child: SIGUSR2 makes Node write a diagnostic report, which works
   * while its event loop turns; a starved event loop cannot write one (the handler is JavaScript), and
   * then the child's own stall watchdog has reported its busiest stacks instead. Waits up to `waitMs`.
   */
  async captureStack(pid = this.child?.pid, waitMs = 3000): Promise<string> {
    if (pid === undefined) return '(not running)'
    const reportFor = (): string | undefined => readdirSync(this.logDir).find((file) => file.startsWith('report.') && file.includes(`.${pid}.`) && file.endsWith('.json'))
    const before = reportFor()
    try {
      process.kill(pid, 'SIGUSR2')
    } catch {
      // gone already
    }
    const deadline = Date.now() + waitMs
    let report: string | undefined
    while (Date.now() < deadline) {
      report = reportFor()
      if (report && report !== before) break
      await sleep(100)
    }
    const parts: string[] = []
    if (report) {
      try {
        const parsed = JSON.parse(readFileSync(join(this.logDir, report), 'utf8')) as { javascriptStack?: { message?: string; stack?: string[] } }
        parts.push(`diagnostic report ${join(this.logDir, report)}:\n${stackText(parsed.javascriptStack)}`)
      } catch (error) {
        parts.push(`diagnostic report ${report} unreadable: ${String(error)}`)
      }
    }
    try {
      const stall = JSON.parse(readFileSync(this.stallReportPattern.replace('{pid}', String(pid)), 'utf8')) as StallReport
      parts.push(
        `stall report (${stall.stalledMs} ms without a timer run; busiest stacks over ${stall.totalSamples} samples):\n` +
          stall.hotStacks.map((hot) => `  ${hot.samples} samples:\n${hot.stack.map((frame) => `    ${frame}`).join('\n')}`).join('\n'),
      )
    } catch {
      // no stall: the event loop was turning
    }
    return parts.length > 0 ? parts.join('\n') : '(no diagnostic report and no stall report: the process gave no stack)'
  }

  /** SIGKILL after taking the stack: the watchdog's answer to a stuck process. Counts as a crash (restarted). */
  async killStuck(reason: string): Promise<StuckRecord | undefined> {
    const child = this.child
    if (!child) return undefined
    const stack = await this.captureStack(child.pid)
    const record: StuckRecord = { name: this.name, incarnation: this.count, pid: child.pid, reason, stack, at: Date.now() }
    this.log.write(`----- ${this.name} #${this.count}: stuck (${reason}); SIGKILL -----\n${stack}\n`)
    if (this.child === child) child.kill('SIGKILL')
    return record
  }

  private async signal(signal: 'SIGKILL' | 'SIGTERM'): Promise<ExitRecord | undefined> {
    const child = this.child
    const exited = this.exited
    if (!child || !exited) return undefined
    this.sent ??= signal
    if (signal === 'SIGKILL') this.sent = 'SIGKILL'
    child.kill(signal)
    return exited
  }

  /** The last `lines` lines of the log file. */
  tail(lines = 30): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
    } catch {
      return ''
    }
  }

  /** Flushes and closes the log file (after the last incarnation exited). */
  async closeLog(): Promise<void> {
    await new Promise<void>((resolve) => this.log.end(resolve))
  }
}

export interface SupervisorOptions {
  /** Where log files go. @defaultValue a new temporary directory */
  readonly logDir?: string
  /** Start a process again when it exits without being asked to (like an orchestrator would). @defaultValue true */
  readonly restartCrashed?: boolean
  /** Delay before such a restart. @defaultValue 500 */
  readonly restartDelayMs?: number
  /** Kills stuck children, taking their JavaScript stack first; `false` turns it off. @defaultValue on */
  readonly watchdog?: WatchdogOptions | false
}

/**
 * Starts, kills and restarts the child processes of a run; records every exit. Its watchdog probes each
 * child's liveness URL, like an orchestrator's liveness probe: a child that stops answering (a hung or
 * busy-looping event loop) is killed and restarted, and the stack it was stuck in is recorded in
 * {@link ProcessSupervisor.stuck}, so a hang becomes a failure with a stack instead of a stalled run.
 */
export class ProcessSupervisor {
  readonly logDir: string
  private readonly processes = new Map<string, ManagedProcess>()
  private readonly restartCrashed: boolean
  private readonly restartDelayMs: number
  private readonly watchdog: Required<WatchdogOptions> | undefined
  private watchdogTimer: NodeJS.Timeout | undefined
  private readonly probing = new Set<ManagedProcess>()
  private closing = false
  /** Exits nobody asked for. */
  readonly crashes: Array<ExitRecord & { name: string }> = []
  /** Children found stuck (unresponsive, or no exit after SIGTERM), with their stacks. */
  readonly stuck: StuckRecord[] = []

  constructor(options: SupervisorOptions = {}) {
    this.logDir = options.logDir ?? mkdtempSync(join(tmpdir(), 'detour-e2e-'))
    this.restartCrashed = options.restartCrashed ?? true
    this.restartDelayMs = options.restartDelayMs ?? 500
    if (options.watchdog !== false) {
      this.watchdog = { livenessTimeoutMs: 30_000, startupMs: 60_000, stallMs: 10_000, ...options.watchdog }
      if (this.watchdog.stallMs + 2000 > this.watchdog.livenessTimeoutMs) throw new Error('watchdog.stallMs must be at least 2 s below livenessTimeoutMs (the stall report must exist when the probe gives up)')
    }
  }

  private startWatchdog(): void {
    if (!this.watchdog || this.watchdogTimer) return
    this.watchdogTimer = setInterval(() => this.probeAll(), 1000)
    this.watchdogTimer.unref()
  }

  private probeAll(): void {
    const watchdog = this.watchdog
    if (!watchdog || this.closing) return
    for (const p of this.processes.values()) {
      const url = p.spec.livenessUrl ?? p.spec.readyUrl
      if (!url || !p.running || this.probing.has(p)) continue
      const since = p.lastAlive > 0 ? p.lastAlive : p.startedAt + watchdog.startupMs
      if (Date.now() - since > watchdog.livenessTimeoutMs) {
        const reason = p.lastAlive > 0 ? `its liveness URL ${url} did not answer for ${watchdog.livenessTimeoutMs} ms` : `its liveness URL ${url} never answered within ${watchdog.startupMs + watchdog.livenessTimeoutMs} ms of its start`
        this.probing.add(p)
        void p
          .killStuck(reason)
          .then((record) => record && this.stuck.push(record))
          .finally(() => this.probing.delete(p))
        continue
      }
      this.probing.add(p)
      const pid = p.pid
      fetch(url, { signal: AbortSignal.timeout(2000) })
        .then(async (response) => {
          await response.arrayBuffer()
          if (p.pid === pid) p.lastAlive = Date.now()
        })
        .catch(() => undefined)
        .finally(() => this.probing.delete(p))
    }
  }

  add(spec: ProcessSpec): ManagedProcess {
    if (this.processes.has(spec.name)) throw new Error(`A process named ${spec.name} exists already`)
    this.startWatchdog()
    const managed = new ManagedProcess(spec, this.logDir, { stallMs: this.watchdog?.stallMs, onStuck: (record) => this.stuck.push(record) })
    managed.on('exit', (record) => {
      if (record.expected || this.closing) return
      this.crashes.push({ ...record, name: managed.name })
      if (!this.restartCrashed) return
      setTimeout(() => {
        if (!this.closing && !managed.running) managed.start()
      }, this.restartDelayMs).unref()
    })
    this.processes.set(spec.name, managed)
    return managed
  }

  get(name: string): ManagedProcess {
    const found = this.processes.get(name)
    if (!found) throw new Error(`No process named ${name}`)
    return found
  }

  get all(): ManagedProcess[] {
    return [...this.processes.values()]
  }

  /** SIGTERMs every running process (in parallel) and closes the logs. Returns the exits it caused. */
  async stopAll(timeoutMs = 20_000): Promise<Array<ExitRecord & { name: string }>> {
    this.closing = true
    if (this.watchdogTimer) clearInterval(this.watchdogTimer)
    const exits = await Promise.all(
      this.all.map(async (p) => {
        const record = await p.stop(timeoutMs)
        return record ? { ...record, name: p.name } : undefined
      }),
    )
    await Promise.all(this.all.map((p) => p.closeLog()))
    return exits.filter((e): e is ExitRecord & { name: string } => e !== undefined)
  }

  /** SIGKILLs everything at once (last resort on abort). */
  killAll(): void {
    this.closing = true
    if (this.watchdogTimer) clearInterval(this.watchdogTimer)
    for (const p of this.all) void p.kill()
  }

  /** The log tails of every process, for failure messages. */
  tails(lines = 20): string {
    return this.all.map((p) => `=== ${p.name} (${p.logFile}) ===\n${p.tail(lines)}`).join('\n')
  }
}

/** A TCP port that was free a moment ago (for the children's HTTP servers). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

import { spawn, type ChildProcess } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { createWriteStream, mkdtempSync, readFileSync, type WriteStream } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

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

  constructor(
    readonly spec: ProcessSpec,
    logDir: string,
  ) {
    super()
    this.logFile = join(logDir, `${spec.name}.log`)
    this.log = createWriteStream(this.logFile, { flags: 'a' })
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
    const child = spawn(process.execPath, [...(this.spec.nodeArgs ?? []), this.spec.script, ...(this.spec.args ?? [])], {
      cwd: this.spec.cwd,
      env: childEnv(this.spec.env),
      stdio: ['ignore', 'pipe', 'pipe'],
      // Own process group: a Ctrl-C in the terminal reaches only the orchestrator, which then stops the
      // children in order (they must not outlive the broker it hosts; the child preload's orphan guard
      // covers an orchestrator that dies).
      detached: true,
    })
    this.child = child
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

  /** SIGTERM and wait; SIGKILL after `timeoutMs`. */
  async stop(timeoutMs = 20_000): Promise<ExitRecord | undefined> {
    const exited = this.exited
    const child = this.child
    if (!child || !exited) return undefined
    const timer = setTimeout(() => {
      this.log.write(`----- ${this.name}: no exit ${timeoutMs} ms after SIGTERM; sending SIGKILL -----\n`)
      child.kill('SIGKILL')
    }, timeoutMs)
    try {
      return await this.signal('SIGTERM')
    } finally {
      clearTimeout(timer)
    }
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
}

/** Starts, kills and restarts the child processes of a run; records every exit. */
export class ProcessSupervisor {
  readonly logDir: string
  private readonly processes = new Map<string, ManagedProcess>()
  private readonly restartCrashed: boolean
  private readonly restartDelayMs: number
  private closing = false
  /** Exits nobody asked for. */
  readonly crashes: Array<ExitRecord & { name: string }> = []

  constructor(options: SupervisorOptions = {}) {
    this.logDir = options.logDir ?? mkdtempSync(join(tmpdir(), 'detour-e2e-'))
    this.restartCrashed = options.restartCrashed ?? true
    this.restartDelayMs = options.restartDelayMs ?? 500
  }

  add(spec: ProcessSpec): ManagedProcess {
    if (this.processes.has(spec.name)) throw new Error(`A process named ${spec.name} exists already`)
    const managed = new ManagedProcess(spec, this.logDir)
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

/**
 * The worker thread of {@link startStallWatchdog} (see `stall-watchdog.ts`). It watches a heartbeat the
 * main thread bumps from a timer; when the heartbeat stops for `stallMs`, the main thread's event loop is
 * starved (a busy loop, synchronous or of microtasks) or blocked. Signal handlers written in JavaScript
 * (Node's `--report-on-signal` is one) cannot run then, but the inspector reaches a busy main thread
 * through V8 interrupts: this worker connects to it, samples its CPU for one second and reports the
 * busiest stacks (and the function running at that moment) as JSON to `reportFile` and to stderr.
 */
import { writeFileSync, writeSync } from 'node:fs'
import { Session } from 'node:inspector'
import { workerData } from 'node:worker_threads'

export interface StallWatchdogData {
  readonly heartbeat: Int32Array
  readonly stallMs: number
  readonly label: string
  /** Written once per stall (overwritten by a later one). */
  readonly reportFile: string | undefined
  /** SIGKILL the process after reporting (for a process nobody else would stop). */
  readonly kill: boolean
}

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
  readonly columnNumber: number
}

interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: number[]
}

interface Profile {
  readonly nodes: ProfileNode[]
  readonly samples?: number[]
}

/** What a stall report holds (also what the supervisor reads back). */
export interface StallReport {
  readonly label: string
  readonly pid: number
  readonly stalledMs: number
  readonly at: string
  /** Same shape as a Node diagnostic report's `javascriptStack`: the busiest stack, innermost first. */
  readonly javascriptStack: { readonly message: string; readonly stack: string[] }
  /** The busiest distinct stacks over one second of samples. */
  readonly hotStacks: Array<{ readonly samples: number; readonly stack: string[] }>
  readonly totalSamples: number
}

const data = workerData as StallWatchdogData

function post<T>(session: Session, method: string, params?: object): Promise<T> {
  return new Promise((resolve, reject) => {
    session.post(method, params ?? {}, (error, result) => (error ? reject(error) : resolve(result as T)))
  })
}

function frameText(frame: CallFrame): string {
  const url = frame.url.replace(/^file:\/\//, '')
  return `at ${frame.functionName || '<anonymous>'} (${url || 'native'}:${frame.lineNumber + 1}:${frame.columnNumber + 1})`
}

/** Samples the main thread for `ms` and returns its distinct stacks by sample count, busiest first. */
async function sampleMainThread(ms: number): Promise<{ stacks: Array<{ samples: number; stack: string[] }>; total: number }> {
  const session = new Session()
  session.connectToMainThread()
  try {
    await post(session, 'Profiler.enable')
    await post(session, 'Profiler.setSamplingInterval', { interval: 200 })
    await post(session, 'Profiler.start')
    await new Promise((resolve) => setTimeout(resolve, ms))
    const { profile } = await post<{ profile: Profile }>(session, 'Profiler.stop')
    const byId = new Map(profile.nodes.map((node) => [node.id, node]))
    const parent = new Map<number, number>()
    for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
    const counts = new Map<string, number>()
    for (const sample of profile.samples ?? []) {
      const stack: string[] = []
      for (let id: number | undefined = sample; id !== undefined; id = parent.get(id)) {
        const frame = byId.get(id)?.callFrame
        if (frame && frame.functionName !== '(root)' && frame.functionName !== '(program)' && frame.functionName !== '(idle)') stack.push(frameText(frame))
      }
      if (stack.length === 0) continue
      const key = stack.slice(0, 16).join('\n')
      counts.set(key, (counts.get(key) ?? 0) + 1)
    }
    const stacks = [...counts]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 6)
      .map(([key, samples]) => ({ samples, stack: key.split('\n') }))
    return { stacks, total: profile.samples?.length ?? 0 }
  } finally {
    session.disconnect()
  }
}

let last = Atomics.load(data.heartbeat, 0)
let since = Date.now()
let reporting = false
let reported = false

// Keeps this thread alive; the main thread unrefs the worker, so it never holds the process open.
setInterval(() => {
  const beat = Atomics.load(data.heartbeat, 0)
  if (beat !== last) {
    last = beat
    since = Date.now()
    reported = false
    return
  }
  const stalledMs = Date.now() - since
  if (reporting || reported || stalledMs < data.stallMs) return
  reporting = true
  sampleMainThread(1000)
    .then(({ stacks, total }) => {
      // The busiest stack that is more than the microtask pump itself.
      const top = stacks.find((s) => s.stack.length > 2) ?? stacks[0]
      const report: StallReport = {
        label: data.label,
        pid: process.pid,
        stalledMs: Date.now() - since,
        at: new Date().toISOString(),
        javascriptStack: { message: `event loop of ${data.label} stalled for ${Date.now() - since} ms`, stack: top?.stack ?? [] },
        hotStacks: stacks,
        totalSamples: total,
      }
      const text = JSON.stringify(report, null, 2)
      if (data.reportFile) writeFileSync(data.reportFile, text)
      writeSync(2, `\n[stall-watchdog] ${report.javascriptStack.message}; busiest stacks:\n${stacks.map((s) => `  ${s.samples} samples:\n    ${s.stack.join('\n    ')}`).join('\n')}\n`)
    })
    .catch((error: unknown) => {
      writeSync(2, `\n[stall-watchdog] event loop of ${data.label} stalled for ${stalledMs} ms; sampling its stack failed: ${String(error)}\n`)
    })
    .finally(() => {
      reporting = false
      reported = true
      if (data.kill) process.kill(process.pid, 'SIGKILL')
    })
}, 250)

import type { MemoryReport } from '../system/memory-sampler.js'
import type { ScenarioResult } from '../system/scenario.js'

type Row = readonly [label: string, value: string, verdict?: boolean]

function reasons(counts: Readonly<Record<string, number>>): string {
  const entries = Object.entries(counts).filter(([, n]) => n > 0)
  if (entries.length === 0) return '0'
  const total = entries.reduce((sum, [, n]) => sum + n, 0)
  return `${total} (${entries.map(([reason, n]) => `${reason} ${n}`).join(', ')})`
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`
const mib = (bytes: number): string => (bytes / 1024 / 1024).toFixed(0)

/** SIGKILL/SIGTERM counts of the process chaos, by kind of process. */
export function killCounts(result: ScenarioResult): { sigkill: { main: number; worker: number }; sigterm: { main: number; worker: number } } {
  const count = (signal: 'SIGKILL' | 'SIGTERM', kind: 'main' | 'worker'): number => result.chaos.filter((e) => e.signal === signal && e.kind === kind).length
  return { sigkill: { main: count('SIGKILL', 'main'), worker: count('SIGKILL', 'worker') }, sigterm: { main: count('SIGTERM', 'main'), worker: count('SIGTERM', 'worker') } }
}

function table(rows: readonly Row[]): string {
  const labelWidth = Math.max(...rows.map(([label]) => label.length))
  const valueWidth = Math.max(...rows.map(([, value, verdict]) => value.length + (verdict === undefined ? 0 : 2)))
  const line = (left: string, fill: string, middle: string, right: string): string => `${left}${fill.repeat(labelWidth + 2)}${middle}${fill.repeat(valueWidth + 2)}${right}`
  const out = [line('┌', '─', '┬', '┐')]
  for (const [label, value, verdict] of rows) {
    const shown = verdict === undefined ? value : `${verdict ? '✓' : '✗'} ${value}`
    out.push(`│ ${label.padEnd(labelWidth)} │ ${shown.padEnd(valueWidth)} │`)
  }
  out.push(line('└', '─', '┴', '┘'))
  return out.join('\n')
}

/** The final table of the demo. Rows with a verdict are the invariants (✓ held, ✗ broken). */
export function summaryTable(result: ScenarioResult): string {
  const r = result.report
  const kills = killCounts(result)
  const delay = r.retriedDelay
  const rows: Row[] = [
    ['produced', result.produced === r.produced ? String(r.produced) : `${result.produced} of ${r.produced}`],
    ['processed', `${r.processed}/${r.expected}`],
    ['  by', Object.entries(r.processedBy).map(([by, n]) => `${by} ${n}`).join(', ') || '-'],
    ['redirected', reasons(r.redirected)],
    ['retried (worker attempts)', String(result.retried)],
    ['dead-lettered', reasons(r.deadLettered)],
    ['poison dead-lettered', `${r.poison.deadLettered}/${r.poison.expected}`, r.poison.missing.length === 0 && r.poison.processed === 0],
    ['duplicates (at-least-once)', String(r.duplicates)],
    ['order violations (first processing)', String(r.firstProcessingViolations), r.firstProcessingViolations === 0],
    ['stale replays', String(r.staleReplays), r.staleReplays === 0],
    [result.timedOut || result.aborted ? 'unresolved (run cut short)' : 'lost', String(r.lost), r.lost === 0],
    ['pending ids left', String(r.pendingIds), r.pendingIds === 0],
    ['unexpected dead letters', String(r.unexpectedDeadLetters), r.unexpectedDeadLetters === 0],
    ['retried message delay (produce → processed)', delay ? `max ${seconds(delay.maxMs)}, p99 ${seconds(delay.p99Ms)}, p50 ${seconds(delay.p50Ms)} (${delay.count} messages)` : '-'],
    ['process starts', result.processes.map((p) => `${p.name} ${p.starts}`).join(', ')],
  ]
  if (result.chaos.length > 0) {
    rows.push(['SIGKILL', `${kills.sigkill.main + kills.sigkill.worker} (main apps ${kills.sigkill.main}, worker ${kills.sigkill.worker})`])
    rows.push(['SIGTERM', `${kills.sigterm.main + kills.sigterm.worker} (main apps ${kills.sigterm.main}, worker ${kills.sigterm.worker})`])
  }
  if (result.brokerChaos.length > 0) rows.push(['broker kills (SIGKILL + restart)', String(result.brokerChaos.length)])
  if (result.crashes.length > 0 || result.brokerChaos.length > 0) rows.push(['crashes (restarted)', String(result.crashes.length)])
  for (const [name, peak] of Object.entries(result.memory.peaks)) {
    if (name === 'orchestrator') continue
    const held = peak.heldMetric === 'detour_pending_ids' ? 'pending ids' : peak.heldMetric === 'detour_retry_buffered_messages' ? 'buffered' : peak.heldMetric
    rows.push([`peak memory ${name}`, `RSS ${mib(peak.rssBytes)} MiB, heap ${mib(peak.heapUsedBytes)} MiB, external ${mib(peak.externalBytes)} MiB, ${held} ${peak.held}`])
  }
  rows.push(['elapsed', seconds(result.elapsedMs)])
  return table(rows)
}

/** The chaos schedules of the run, as they happened, and how to replay them. */
export function chaosSchedule(result: ScenarioResult, seed: number): string {
  const lines: string[] = []
  if (result.chaos.length > 0) {
    lines.push(`process chaos (seed ${seed}): ${result.chaos.map((e) => `${seconds(e.at)} ${e.signal} ${e.target} (down ${seconds(e.downMs)})`).join(', ')}`)
  }
  if (result.brokerChaos.length > 0) {
    lines.push(
      `broker chaos (seed ${seed}): ${result.brokerChaos
        .map((e) => `${seconds(e.at)} SIGKILL broker ${e.broker} (down ${seconds(e.downMs)}, back in ${e.restartMs === undefined ? '?' : seconds(e.restartMs)}, in sync after ${e.inSyncMs === undefined ? '?' : seconds(e.inSyncMs)}${e.error ? `, ${e.error}` : ''})`)
        .join(', ')}`,
    )
  }
  lines.push(`the same --seed ${seed} draws the same schedule (pauses, targets, signals, down times); what each process was doing at that moment differs from run to run`)
  return lines.join('\n')
}

/** Memory over the run: the highest RSS / heap / held count of each process per time window. */
export function memoryTable(memory: MemoryReport): string {
  if (memory.timeline.length === 0) return 'memory: no samples'
  const names = [...new Set(memory.timeline.flatMap((row) => Object.keys(row.byProcess)))].sort((a, b) => (a === 'orchestrator' ? 1 : b === 'orchestrator' ? -1 : a.localeCompare(b)))
  const header = ['window', ...names.map((name) => `${name} RSS/heap/ext/held`)]
  const rows = memory.timeline.map((row) => [
    `${seconds(row.from)}–${seconds(row.to)}`,
    ...names.map((name) => {
      const cell = row.byProcess[name]
      return cell ? `${mib(cell.rssBytes)}/${mib(cell.heapUsedBytes)}/${mib(cell.externalBytes)}/${cell.held}` : '-'
    }),
  ])
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length)))
  const format = (cells: readonly string[]): string => cells.map((cell, i) => cell.padEnd(widths[i]!)).join('  ')
  return [`memory in MiB (highest per window; ext = external memory, Buffers included; held = pending ids of the assigned partitions for main apps, buffered retry records for the worker; sampled every ${seconds(memory.intervalMs)}):`, format(header), ...rows.map(format)].join('\n')
}

/** Everything the summary says, as JSON (written to `<logDir>/summary.json`). */
export function summaryJson(result: ScenarioResult, run: { argv: readonly string[]; seed: number; ok: boolean; floors: readonly string[] }): unknown {
  const r = result.report
  return {
    ok: run.ok,
    command: `pnpm demo ${run.argv.join(' ')}`.trim(),
    seed: run.seed,
    broker: result.broker,
    elapsedMs: result.elapsedMs,
    messages: r.produced,
    produced: result.produced,
    processed: r.processed,
    expected: r.expected,
    kills: killCounts(result),
    brokerKills: result.brokerChaos.length,
    crashes: result.crashes,
    firstProcessingViolations: r.firstProcessingViolations,
    staleReplays: r.staleReplays,
    lost: r.lost,
    pendingIds: r.pendingIds,
    storePendingIds: result.storePendingIds,
    duplicates: r.duplicates,
    deadLettered: r.deadLettered,
    unexpectedDeadLetters: r.unexpectedDeadLetters,
    redirected: r.redirected,
    retried: result.retried,
    retriedDelay: r.retriedDelay,
    peakMemory: result.memory.peaks,
    memoryTimeline: result.memory.timeline,
    chaos: result.chaos.map(({ exit: _exit, ...event }) => event),
    brokerChaos: result.brokerChaos,
    failures: [...result.failures, ...run.floors],
    samples: {
      firstProcessingViolations: r.firstProcessingViolationSamples,
      staleReplays: r.staleReplaySamples,
      lost: r.lostSamples,
      pending: r.pendingSamples,
    },
    // Every record of the keys whose order broke (outputs with who/when/source id, dead letters, redirect and retry records).
    evidence: r.evidence,
    logDir: result.logDir,
  }
}

import type { ScenarioResult } from '../system/scenario.js'

type Row = readonly [label: string, value: string, verdict?: boolean]

function reasons(counts: Readonly<Record<string, number>>): string {
  const entries = Object.entries(counts).filter(([, n]) => n > 0)
  if (entries.length === 0) return '0'
  const total = entries.reduce((sum, [, n]) => sum + n, 0)
  return `${total} (${entries.map(([reason, n]) => `${reason} ${n}`).join(', ')})`
}

/** The final table of the demo. Rows with a verdict are the invariants (✓ held, ✗ broken). */
export function summaryTable(result: ScenarioResult): string {
  const r = result.report
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
    ['process starts', result.processes.map((p) => `${p.name} ${p.starts}`).join(', ')],
    ...(result.chaos.length > 0
      ? [['chaos kills', `${result.chaos.length} (${result.chaos.filter((e) => e.signal === 'SIGKILL').length} SIGKILL, ${result.chaos.filter((e) => e.signal === 'SIGTERM').length} SIGTERM)`] as const]
      : []),
    ['elapsed', `${(result.elapsedMs / 1000).toFixed(1)} s`],
  ]
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

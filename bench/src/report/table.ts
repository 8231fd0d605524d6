import type { Figure } from '../suite/types.js'

function formatNumber(value: number | null): string {
  if (value === null) return '—'
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US')
  if (Math.abs(value) >= 100) return value.toFixed(0)
  if (Math.abs(value) >= 10) return value.toFixed(1)
  return value.toFixed(value >= 1 ? 2 : 3)
}

function goalCell(f: Figure): string {
  if (f.goal === null) return 'context'
  return `${f.goal} ${f.goalMet === null ? '?' : f.goalMet ? 'met' : 'NOT met'}`
}

/** A plain-text table of the figures (the console report). */
export function formatTable(figures: readonly Figure[]): string {
  const header = ['benchmark', 'detour', 'unit', 'baseline', 'ratio', 'goal', 'reps']
  const rows = figures.map((f) => [f.name, formatNumber(f.value), f.unit, formatNumber(f.baseline), f.ratio === null ? '—' : f.ratio.toFixed(3), goalCell(f), String(f.repetitions)])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === 1 || i === 3 || i === 4 || i === 6 ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join('  ')
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)]
  out.push('', 'Workloads:')
  const byWorkload = new Map<string, string[]>()
  for (const f of figures) byWorkload.set(f.workload, [...(byWorkload.get(f.workload) ?? []), f.name])
  for (const [workload, names] of byWorkload) out.push(`  ${names.join(', ')}: ${workload}`)
  const notes = figures.filter((f) => f.note !== undefined)
  if (notes.length > 0) {
    out.push('', 'Notes:')
    for (const f of notes) out.push(`  ${f.name}: ${f.note}`)
  }
  return out.join('\n')
}

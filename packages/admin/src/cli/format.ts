import type { InspectReport } from '../inspect/inspect-report.js'
import type { DeadLetter } from '../dlt/dead-letter.js'
import { coordinatesText, deadLetterJson, displayKey, type ShownBytes } from '../dlt/dead-letter.js'
import type { LedgerEntry } from '../replay/replay-ledger.js'
import type { ReplayPlan } from '../replay/replay-plan.js'
import type { ReplayExecution } from '../replay/replayer.js'
import type { HeldGroup } from '../worker/worker-client.js'
import type { DirectReleasePreview } from '../release/direct-release.js'

/** `1h 02m`, `3m 20s`, `12s`, `450ms`. */
export function formatAge(ms: number | undefined): string {
  if (ms === undefined) return '?'
  if (ms < 1000) return `${Math.round(ms)}ms`
  const s = Math.floor(ms / 1000)
  const d = Math.floor(s / 86_400)
  const h = Math.floor((s % 86_400) / 3600)
  const m = Math.floor((s % 3600) / 60)
  const sec = s % 60
  if (d > 0) return `${d}d ${String(h).padStart(2, '0')}h`
  if (h > 0) return `${h}h ${String(m).padStart(2, '0')}m`
  if (m > 0) return `${m}m ${String(sec).padStart(2, '0')}s`
  return `${sec}s`
}

/** Shortens text for a table cell, on one line. */
export function cell(text: string | undefined, max = 60): string {
  if (text === undefined || text.length === 0) return '-'
  const line = text.replace(/\s+/g, ' ')
  return line.length > max ? `${line.slice(0, max - 1)}…` : line
}

/** A plain text table: a header row, then rows, columns padded to their widest cell. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)))
  const line = (row: readonly string[]): string =>
    row
      .map((value, column) => (column === row.length - 1 ? value : value.padEnd(widths[column] ?? 0)))
      .join('  ')
      .trimEnd()
  return [line(header), ...rows.map(line)].join('\n')
}

export function renderInspect(report: InspectReport): string {
  const out: string[] = []
  out.push(
    `Consumer group ${report.consumerGroup}: ${report.pendingIds} pending id${report.pendingIds === 1 ? '' : 's'} in ${report.groups} group${report.groups === 1 ? '' : 's'}` +
      (report.oldest ? `; oldest ${report.oldest.id}, ${formatAge(report.oldest.ageMs)} ago` : ''),
  )
  for (const topic of report.topics) {
    out.push('', `${topic.source}  (redirect ${topic.redirect}, retry ${topic.retry}, error ${topic.error})`)
    if (!topic.redirectExists) {
      out.push('  the redirect topic does not exist')
      continue
    }
    out.push(
      table(
        ['  PARTITION', 'PENDING', 'GROUPS', 'OLDEST', 'AGE', 'REDIRECT END', 'RETRY COMMITTED'],
        topic.partitions.map((p) => [
          `  ${p.partition}`,
          String(p.pendingIds),
          String(p.groups.length),
          p.oldest?.id ?? '-',
          p.oldest ? formatAge(p.oldest.ageMs) : '-',
          `${p.redirectEnd}${p.complete ? '' : ' (incomplete)'}`,
          p.workerCommitted ?? '-',
        ]),
      ),
    )
    const rows: string[][] = []
    for (const partition of topic.partitions) {
      for (const group of partition.groups) {
        for (const id of group.ids) {
          const why = id.held
            ? `held after ${id.held.attempts} attempts: ${id.held.lastError}`
            : id.retry?.errorMessage !== undefined
              ? `${id.retry.errorName ?? 'Error'}: ${id.retry.errorMessage}`
              : id.state === 'no-retry-record'
                ? 'no unresolved retry record: nothing will release it'
                : id.position > 0
                  ? `behind ${group.ids[0]?.id}`
                  : ''
          rows.push([`  ${partition.partition}`, cell(group.groupKey, 30), id.id, String(id.position), formatAge(id.ageMs), id.reason ?? '-', id.state, cell(why, 70)])
        }
      }
    }
    if (rows.length > 0) out.push('', table(['  PARTITION', 'GROUP KEY', 'PENDING ID', 'POS', 'AGE', 'REASON', 'STATE', 'WHY'], rows))
    const { malformed, foreign, unknownTombstones } = topic.ignored
    if (malformed + foreign > 0) out.push(`  ignored on the redirect topic: ${malformed} malformed, ${foreign} of other consumer groups`)
    if (unknownTombstones > 0) out.push(`  ${unknownTombstones} tombstones of ids not pending (repeated releases: harmless)`)
  }
  if (report.worker) {
    out.push('', `Worker ${report.worker.url}: ${report.worker.held.length} held group${report.worker.held.length === 1 ? '' : 's'}`)
    if (report.worker.heldNotPending.length > 0) {
      out.push(`  held but not pending here: ${report.worker.heldNotPending.map((group) => group.id).join(', ')}`)
    }
  }
  const stuck = report.topics.flatMap((topic) => topic.partitions.flatMap((p) => p.groups.flatMap((g) => g.ids.filter((id) => id.state === 'no-retry-record'))))
  if (stuck.length > 0) {
    out.push('', `No retry record carries ${stuck.length === 1 ? 'this id' : 'these ids'}: nothing will release ${stuck.length === 1 ? 'it' : 'them'} (detour release --direct --id <id>):`)
    for (const id of stuck) out.push(`  ${id.id}`)
  }
  const held = report.topics.flatMap((topic) => topic.partitions.flatMap((p) => p.groups.flatMap((g) => g.ids.filter((id) => id.state === 'held'))))
  if (held.length > 0) out.push('', 'Held by the worker (fix the cause, then: detour release --id <id> --worker-url <url>):', ...held.map((id) => `  ${id.id}`))
  for (const warning of report.warnings) out.push(`warning: ${warning}`)
  return out.join('\n')
}

export function renderHeld(groups: readonly HeldGroup[]): string {
  return table(
    ['ID', 'GROUP KEY', 'ATTEMPTS', 'SINCE', 'RETRY RECORD', 'LAST ERROR'],
    groups.map((g) => [g.id, cell(g.groupKey, 30), String(g.attempts), g.since, `${g.retryTopic}/${g.retryPartition}/${g.retryOffset}`, cell(g.lastError, 70)]),
  )
}

function replayMark(entry: LedgerEntry | undefined): string {
  return entry ? `${entry.to} ${entry.replayedAt}${entry.count > 1 ? ` (x${entry.count})` : ''}` : '-'
}

export function renderDeadLetters(deadLetters: readonly DeadLetter[], replays: ReadonlyMap<string, LedgerEntry>): string {
  return table(
    ['DEAD LETTER', 'FAILED AT', 'REASON', 'ERROR', 'KEY', 'SOURCE', 'REPLAYED'],
    deadLetters.map((dl) => [
      coordinatesText(dl.coordinates),
      dl.failedAt ?? new Date(Number(dl.timestamp)).toISOString(),
      dl.reason ?? '-',
      cell(dl.errorName !== undefined ? `${dl.errorName}: ${dl.errorMessage ?? ''}` : dl.errorMessage, 60),
      cell(displayKey(dl.key), 24),
      dl.source ? `${dl.source.topic}/${dl.source.partition}/${dl.source.offset}` : '-',
      replayMark(replays.get(coordinatesText(dl.coordinates))),
    ]),
  )
}

function bytesText(shown: ShownBytes | null, maxChars: number): string {
  if (shown === null) return '(null)'
  const data = shown.data.length > maxChars ? `${shown.data.slice(0, maxChars)}… (${shown.bytes} bytes)` : shown.data
  return shown.encoding === 'utf8' ? data : `base64:${data}`
}

export function renderDeadLetter(deadLetter: DeadLetter, replayed: LedgerEntry | undefined, options: { maxValueChars?: number } = {}): string {
  const json = deadLetterJson(deadLetter)
  const max = options.maxValueChars ?? 4096
  const lines = [
    `Dead letter ${json.coordinates}  (record timestamp ${new Date(Number(json.timestamp)).toISOString()})`,
    `  key:    ${bytesText(json.key, 200)}`,
    `  value:  ${bytesText(json.value, max)}`,
    '',
    'Detour headers:',
    ...Object.entries(json.detourHeaders).map(([name, value]) =>
      name === 'detour-error-stack' ? `  ${name}:\n${value.split('\n').map((line) => `      ${line}`).join('\n')}` : `  ${name}: ${value}`,
    ),
    '',
    'User headers:',
    ...(Object.keys(json.userHeaders).length === 0
      ? ['  (none)']
      : Object.entries(json.userHeaders).map(([name, value]) => `  ${name}: ${(Array.isArray(value) ? value : [value]).map((v) => bytesText(v, 200)).join(' | ')}`)),
    '',
    `Replayed: ${replayed ? `${replayed.count} time(s), last at ${replayed.replayedAt} to ${replayed.to} by ${replayed.by}` : 'never'}`,
  ]
  return lines.join('\n')
}

export function renderPlan(plan: ReplayPlan, dryRun: boolean): string {
  const replays = plan.decisions.filter((decision) => decision.action === 'replay')
  const heading =
    replays.length === 0
      ? `Nothing to replay of ${plan.decisions.length} selected dead letter${plan.decisions.length === 1 ? '' : 's'}`
      : `${dryRun ? 'Dry run: would replay' : 'Replaying'} ${replays.length} of ${plan.decisions.length} selected dead letter${plan.decisions.length === 1 ? '' : 's'} to ${plan.to}${plan.force ? ' (--force)' : ''}`
  const rows = plan.decisions.map((decision) => {
    const target = decision.writes.map((write) => `${write.topic}/${write.messages[0]?.partition ?? '?'}`).join(' + ')
    return [coordinatesText(decision.deadLetter.coordinates), decision.action, decision.action === 'replay' ? target : '-', cell(decision.note, 160)]
  })
  return [
    heading,
    table(['DEAD LETTER', 'ACTION', 'WRITES TO', 'NOTE'], rows),
    ...(dryRun && replays.length > 0 ? ['', 'Nothing was written. Add --execute to replay.'] : []),
  ].join('\n')
}

export function renderExecution(execution: ReplayExecution): string {
  return [
    `Replayed ${execution.replayed}, skipped ${execution.skipped}`,
    table(
      ['DEAD LETTER', 'RESULT', 'WRITTEN', 'NOTE'],
      execution.outcomes.map((outcome) => [
        outcome.deadLetter,
        outcome.action,
        outcome.written.map((w) => `${w.topic}/${w.partition}/${w.offset}`).join(' + ') || '-',
        cell(outcome.note, 160),
      ]),
    ),
  ].join('\n')
}

export function renderDirectPreview(preview: DirectReleasePreview): string {
  const p = preview.pending
  return [
    `Direct release of ${preview.id}: writes its tombstone to ${preview.redirectTopic}/${preview.partition}`,
    `  group key:    ${preview.groupKey}`,
    `  state:        ${p.state}${p.state === 'no-retry-record' ? ' (no unresolved retry record carries it: nothing else will release it)' : ''}`,
    `  reason:       ${p.reason ?? '-'}; redirected ${p.redirectedAt ?? '?'} (${formatAge(p.ageMs)} ago)`,
    `  group:        ${preview.groupIds.join(', ')}${p.position > 0 ? ` (position ${p.position})` : ''}`,
    `  afterwards:   ${preview.groupIds.length > 1 ? `the group continues with ${preview.groupIds.find((id) => id !== preview.id)}` : 'the group has no pending id: new messages of its key are processed directly'}`,
    ...(preview.risk !== undefined ? [`  RISK:         ${preview.risk}`] : []),
  ].join('\n')
}

import { writeFileSync } from 'node:fs'
import YAML from 'yaml'
import type { Facts, MetricFact } from './facts.js'
import type { Report } from './report.js'
import type { Tools } from './tools.js'
import { asArray, asObject, at, read, run, str, type Json } from './util.js'

const PROMQL_WORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset'])
/** Labels every scraped series has. */
const TARGET_LABELS = ['instance', 'job']

/** Metric names in a PromQL expression: identifiers with the Detour prefix (the dashboard queries only those). */
function exprMetrics(expr: string): string[] {
  return [...new Set([...expr.matchAll(/\b(detour_[a-z0-9_]+)\b/g)].map((m) => m[1]!))]
}

function baseMetric(name: string, metrics: ReadonlyMap<string, MetricFact>): { base: string; suffix: string } | undefined {
  if (metrics.has(name)) return { base: name, suffix: '' }
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (name.endsWith(suffix) && metrics.has(name.slice(0, -suffix.length))) return { base: name.slice(0, -suffix.length), suffix }
  }
  return undefined
}

/**
 * The Grafana dashboard: JSON, data source wiring, panel ids and grid, and every expr's metric and label
 * names against the metrics the built apps register (their prom-client registries); then PromQL syntax
 * with promtool (Grafana's variables substituted).
 */
export async function checkDashboard(file: string, facts: Facts, tools: Tools, report: Report, rulesOut: string): Promise<void> {
  let dashboard: Json
  try {
    dashboard = asObject(JSON.parse(read(file)))
    report.ok(`${file}: valid JSON`)
  } catch (error) {
    report.fail(`${file}: ${(error as Error).message}`)
    return
  }
  const metrics = facts.metrics
  const inputs = asArray(dashboard.__inputs)
  if (inputs.some((i) => at(i, 'name') === 'DS_PROMETHEUS' && at(i, 'type') === 'datasource' && at(i, 'pluginId') === 'prometheus')) report.ok('__inputs declares DS_PROMETHEUS (import via the UI)')
  else report.fail('__inputs must declare the DS_PROMETHEUS prometheus data source')
  const variables = asArray(at(dashboard, 'templating', 'list')).map(asObject)
  if (variables.some((v) => v.name === 'DS_PROMETHEUS' && v.type === 'datasource' && v.query === 'prometheus')) report.ok('templating has the DS_PROMETHEUS data source variable (file provisioning)')
  else report.fail('templating must define a DS_PROMETHEUS variable of type datasource (query: prometheus)')
  const variableNames = new Set(variables.map((v) => str(v.name)))
  const panels = asArray(dashboard.panels).map(asObject).flatMap((p) => [p, ...asArray(p.panels).map(asObject)])
  const ids = panels.map((p) => p.id)
  if (new Set(ids).size === ids.length && ids.every(Number.isInteger)) report.ok(`${panels.length} panels with unique integer ids`)
  else report.fail('panel ids must be unique integers')
  if (typeof dashboard.uid === 'string' && /^[a-zA-Z0-9_-]{1,40}$/.test(dashboard.uid)) report.ok(`uid "${dashboard.uid}"`)
  else report.fail('the dashboard needs a stable uid (1-40 of [a-zA-Z0-9_-])')
  const before = report.failures
  const rules: Array<{ record: string; expr: string }> = []
  const used = new Set<string>()
  let exprCount = 0
  const occupied = new Map<string, string>()
  for (const panel of panels) {
    const where = `panel ${str(panel.id)} "${str(panel.title)}"`
    const g = asObject(panel.gridPos)
    const [x, y, w, h] = [Number(g.x), Number(g.y), Number(g.w), Number(g.h)]
    if (!(x >= 0 && w >= 1 && x + w <= 24 && h >= 1 && y >= 0)) report.fail(`${where}: gridPos out of the 24-column grid`)
    for (let row = y; row < y + h; row++) {
      for (let col = x; col < x + w; col++) {
        const cell = `${row}:${col}`
        if (occupied.has(cell)) {
          report.fail(`${where} overlaps ${occupied.get(cell)}`)
          row = y + h
          break
        }
        occupied.set(cell, where)
      }
    }
    if (panel.type === 'row') continue
    const sources = [panel.datasource, ...asArray(panel.targets).map((t) => at(t, 'datasource'))]
    if (!sources.every((ds) => at(ds, 'uid') === '${DS_PROMETHEUS}' && at(ds, 'type') === 'prometheus')) report.fail(`${where}: every data source must be {type: prometheus, uid: \${DS_PROMETHEUS}}`)
    if (asArray(panel.targets).length === 0) report.fail(`${where}: no targets`)
    for (const target of asArray(panel.targets).map(asObject)) {
      exprCount++
      const expr = str(target.expr)
      for (const [, name] of expr.matchAll(/\$\{?([a-zA-Z_][a-zA-Z0-9_]*)/g)) {
        if (!name!.startsWith('__') && !variableNames.has(name!)) report.fail(`${where}: expr uses an undefined variable $${name}`)
      }
      const names = exprMetrics(expr)
      if (names.length === 0) report.fail(`${where} ${str(target.refId)}: no Detour metric in "${expr}"`)
      const labels = new Set(TARGET_LABELS)
      for (const name of names) {
        const found = baseMetric(name, metrics)
        if (!found) {
          report.fail(`${where}: ${name} is registered by neither the main-app SDK nor the retry worker`)
          continue
        }
        const def = metrics.get(found.base)!
        if (found.suffix && def.type !== 'histogram') report.fail(`${where}: ${name}: ${found.base} is a ${def.type}, not a histogram`)
        if (!found.suffix && def.type === 'histogram') report.fail(`${where}: ${name} is a histogram: query ${name}_bucket/_sum/_count`)
        if (/\b(rate|increase|irate)\(/.test(expr) && def.type === 'gauge') report.fail(`${where}: rate/increase over the gauge ${name}`)
        if (!/\b(rate|increase|irate)\(/.test(expr) && def.type === 'counter') report.fail(`${where}: the counter ${name} without rate/increase`)
        if (found.suffix === '_bucket') labels.add('le')
        for (const label of def.labels) labels.add(label)
        used.add(found.base)
      }
      // Label names in matchers and in by (...) must exist on the queried metrics.
      const matcherLabels = [...expr.matchAll(/\{([^}]*)\}/g)].flatMap((m) => [...m[1]!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]!))
      const groupingLabels = [...expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',').map((s) => s.trim()).filter(Boolean))
      for (const label of [...matcherLabels, ...groupingLabels]) {
        if (label === '__name__' || PROMQL_WORDS.has(label)) continue
        if (!labels.has(label)) report.fail(`${where}: label "${label}" does not exist on ${names.join(', ')}`)
      }
      if (/histogram_quantile/.test(expr) && !/_bucket\b/.test(expr)) report.fail(`${where}: histogram_quantile needs a _bucket series`)
      const substituted = expr.replaceAll('$__rate_interval', '1m').replaceAll('$__interval', '1m').replaceAll('$__range', '1h').replace(/\$\{?[a-zA-Z_][a-zA-Z0-9_]*\}?/g, '.*')
      rules.push({ record: `dashboard:panel_${str(panel.id)}:${str(target.refId || 'A').toLowerCase()}`, expr: substituted })
    }
  }
  for (const variable of variables.filter((v) => v.type === 'query')) {
    const query = typeof variable.query === 'string' ? variable.query : str(at(variable.query, 'query'))
    for (const name of exprMetrics(query)) if (!baseMetric(name, metrics)) report.fail(`variable ${str(variable.name)}: ${name} is not a Detour metric`)
  }
  if (report.failures === before) {
    report.ok(`${exprCount} exprs name only metrics and labels the built apps register (${metrics.size} metrics read from their prom-client registries), with the right types; no overlapping panels`)
  }
  const unused = [...metrics.keys()].filter((m) => !used.has(m))
  if (unused.length > 0) report.note(`metrics not on the dashboard: ${unused.join(', ')}`)
  writeFileSync(rulesOut, YAML.stringify({ groups: [{ name: 'detour-dashboard-exprs', rules }] }))
  if (tools.promtool) {
    const out = await run(tools.promtool, ['check', 'rules', rulesOut])
    if (out.code === 0) report.ok(`every panel expr parses as PromQL (promtool check rules, Grafana variables substituted): ${/(\d+) rules found/.exec(out.stdout)?.[1] ?? '?'} rules`)
    else report.fail(`promtool check rules (dashboard exprs): ${out.stdout}${out.stderr}`)
  }
}

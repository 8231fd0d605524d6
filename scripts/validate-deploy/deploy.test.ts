/**
 * The checks of `pnpm validate:deploy` that need no external tool (no helm, promtool, compose or
 * kubeconform), run as a unit test so CI (`pnpm test`) sees them: deploy/ against the settings table,
 * the metrics the apps register and the routes the worker serves. The chart's generated files
 * (values.schema.json, the ConfigMap template) are checked by packages/retry-app/src/settings/helm.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import YAML from 'yaml'
import { checkCompose } from './compose.js'
import { checkDashboard } from './dashboard.js'
import { readFacts, type Facts } from './facts.js'
import { Report } from './report.js'
import type { Tools } from './tools.js'
import { read, walk, yamlOptions } from './util.js'
import { checkValues } from './values.js'

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

/** None of the external tools: each check runs its tool-free part. */
const NO_TOOLS: Tools = {
  helm: undefined,
  promtool: undefined,
  kubeconform: undefined,
  helmUnittest: false,
  compose: undefined,
  composeKind: undefined,
  npmDir: '',
  importTool: () => Promise.reject(new Error('no npm tools in the unit test')),
}

/** Runs a check with a silent report; resolves with its failures (and what it checked, for the message). */
async function check(fn: (report: Report) => unknown): Promise<{ failed: string[]; checked: string[] }> {
  const report = new Report(() => {})
  await report.run('check', () => fn(report))
  return { failed: report.failed, checked: report.checked }
}

let facts: Facts
let tmp: string
const cwd = process.cwd()

beforeAll(async () => {
  // The checks name files relative to the repository root, as `pnpm validate:deploy` runs them.
  process.chdir(repo)
  tmp = mkdtempSync(join(tmpdir(), 'detour-deploy-test-'))
  facts = await readFacts()
})

afterAll(() => {
  process.chdir(cwd)
  rmSync(tmp, { recursive: true, force: true })
})

describe('deploy/ (the tool-free checks of pnpm validate:deploy)', () => {
  it('reads the facts from the apps: settings, registered metrics, served routes', () => {
    expect(facts.settings.length).toBeGreaterThan(20)
    expect(facts.workerEnv.has('DETOUR_BROKERS')).toBe(true)
    expect(facts.metrics.size).toBeGreaterThan(10)
    expect(facts.routes.get('GET /readyz')).toBe(200)
    expect(facts.mainAppEnv?.size, 'e2e/src/demo/main-app.ts').toBeGreaterThan(0)
  })

  it('every YAML file parses (duplicate keys refused)', () => {
    const files = walk('deploy').filter((f) => /\.ya?ml$/.test(f) && !f.includes('/templates/'))
    expect(files.length).toBeGreaterThan(3)
    for (const file of files) {
      const problems = YAML.parseAllDocuments(read(file), yamlOptions).flatMap((d) => [...d.errors, ...d.warnings])
      expect(problems.map((p) => p.message), file).toEqual([])
    }
  })

  it('docker-compose: variable names from the settings table and main-app.ts, one group, core topics, ports, probes', async () => {
    const { failed, checked } = await check((report) => checkCompose('deploy/docker-compose.yml', facts, report))
    expect(failed).toEqual([])
    expect(checked.length).toBeGreaterThan(3)
  })

  it('Grafana dashboard: every expr names metrics and labels the apps register', async () => {
    const { failed } = await check((report) => checkDashboard('deploy/grafana/detour-dashboard.json', facts, NO_TOOLS, report, join(tmp, 'rules.yml')))
    expect(failed).toEqual([])
  })

  it('Helm values.yaml and ci/*-values.yaml satisfy values.schema.json, which refuses bad values', async () => {
    const { failed, checked } = await check((report) => checkValues('deploy/helm/detour-retry-worker', report))
    expect(failed).toEqual([])
    expect(checked.length).toBeGreaterThan(10)
  })

  it('fails on a variable the worker does not read, and on a metric no app registers', async () => {
    // The checks themselves, on broken facts: a renamed setting and a missing metric must fail.
    const compose = read('deploy/docker-compose.yml')
    const variable = [...facts.workerEnv].find((v) => compose.includes(`${v}:`) && !facts.handlerEnv?.has(v) && !facts.mainAppEnv?.has(v))!
    expect(variable, 'a worker-only variable in docker-compose.yml').toBeDefined()
    const renamed: Facts = { ...facts, workerEnv: new Set([...facts.workerEnv].filter((v) => v !== variable)) }
    expect((await check((report) => checkCompose('deploy/docker-compose.yml', renamed, report))).failed.join('\n')).toContain(`${variable} is read neither by the worker`)
    const panels = read('deploy/grafana/detour-dashboard.json')
    const metric = [...facts.metrics.keys()].find((m) => panels.includes(m))!
    const missing: Facts = { ...facts, metrics: new Map([...facts.metrics].filter(([m]) => m !== metric)) }
    const dashboard = await check((report) => checkDashboard('deploy/grafana/detour-dashboard.json', missing, NO_TOOLS, report, join(tmp, 'rules.yml')))
    expect(dashboard.failed.join('\n')).toMatch(new RegExp(`${metric}\\w* is registered by neither`))
  })
})

/**
 * Validates deploy/ without a Docker engine or a Kubernetes cluster (`pnpm validate:deploy`, driven by
 * .ci/validate-deploy, which builds the workspace and this script first). See --help.
 */
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import YAML from 'yaml'
import { composeConfig, checkCompose } from './compose.js'
import { checkDashboard } from './dashboard.js'
import { checkDockerfile } from './dockerfile.js'
import { readFacts } from './facts.js'
import { checkChart } from './helm.js'
import { Report } from './report.js'
import { runSmoke } from './smoke.js'
import { TOOL_HELP, cacheDir, findTools } from './tools.js'
import { read, run, walk, yamlOptions } from './util.js'
import { checkValues } from './values.js'

const HELP = `Usage: pnpm validate:deploy [--smoke]

Validates deploy/ without Docker or Kubernetes:
  YAML           every YAML file under deploy/ parses (merge keys allowed, duplicate keys refused).
  compose        docker compose config; cross-checks: variable names against the worker's settings table
                 and main-app.ts, the main app's group in both apps (core's group rule), kafka-init's
                 topics against core's detourTopicsFor and RETRY_TOPIC_CONFIG (redirect exactly compact),
                 the handler hand-over, ports, healthchecks (routes of the built worker's HTTP server),
                 Prometheus targets, Grafana mounts.
  Dockerfiles    COPY sources exist and pass their .dockerignore, every workspace manifest is copied,
                 --from stages exist, numeric USER.
  Helm           helm lint --strict and helm template with ci/*-values.yaml; rendered objects validated
                 (kubeconform, else the Kubernetes OpenAPI schemas and kubernetes-types); ConfigMap keys
                 against the settings table, secrets only from Secrets, probes against the served routes;
                 cases that must fail with their message; values.yaml and ci/*.yaml against
                 values.schema.json (ajv).
  Grafana        every panel expr's metric and label names against the metrics the built main-app SDK
                 and retry worker register (their prom-client registries); PromQL via promtool.
  Prometheus     promtool check config.
  --smoke        also re-enacts both Dockerfiles' build stages in a scratch directory and runs the compose
                 topology on the embedded broker (~1-2 min).

${TOOL_HELP}

Exit code 1 when a check failed, 2 on a usage error. Run from the repository root, after pnpm install.`

async function main(): Promise<number> {
  const args = process.argv.slice(2)
  if (args.includes('-h') || args.includes('--help')) {
    console.log(HELP)
    return 0
  }
  const unknown = args.filter((a) => a !== '--smoke')
  if (unknown.length > 0) {
    console.error(`validate-deploy: unknown argument ${unknown.join(' ')} (see --help)`)
    return 2
  }
  const report = new Report()
  const tools = await findTools(report)
  const tmp = join(cacheDir(), `run.${process.pid}`)
  mkdirSync(tmp, { recursive: true })
  try {
    report.section('facts from the built modules')
    const facts = await readFacts()
    report.ok(
      `${facts.settings.length} settings of detour-retry run, ${facts.metrics.size} metrics registered by the main-app SDK and the retry worker, worker routes ${[...facts.routes].map(([r, s]) => `${r} ${s}`).join(', ')}`,
    )

    report.section('YAML syntax (Helm templates are checked through their rendered output)')
    for (const file of walk('deploy').filter((f) => /\.ya?ml$/.test(f) && !f.includes('/templates/')).sort()) {
      const docs = YAML.parseAllDocuments(read(file), yamlOptions)
      const problems = docs.flatMap((d) => [...d.errors, ...d.warnings])
      if (problems.length > 0) report.fail(`${file}: ${problems.map((p) => p.message).join('; ')}`)
      else report.ok(`${file}: valid YAML (${docs.length} document${docs.length === 1 ? '' : 's'})`)
    }

    report.section('docker-compose (deploy/docker-compose.yml)')
    await report.run('compose config', () => composeConfig('deploy/docker-compose.yml', tools, report, tmp))
    await report.run('compose', () => checkCompose('deploy/docker-compose.yml', facts, report))

    report.section('Dockerfiles (COPY sources, .dockerignore, workspace manifests, stages, USER)')
    for (const file of ['deploy/Dockerfile', 'deploy/Dockerfile.example-app']) await report.run(file, () => checkDockerfile(file, tools, report))
    report.skip('image builds: no Docker engine here (--smoke re-enacts the build stages without one)')

    const chart = 'deploy/helm/detour-retry-worker'
    report.section(`Helm chart (${chart})`)
    await report.run('helm', () => checkChart(chart, facts, tools, report, tmp))

    report.section('values.schema.json (ajv)')
    await report.run('values', () => checkValues(chart, report))

    report.section('Grafana dashboard')
    await report.run('dashboard', () => checkDashboard('deploy/grafana/detour-dashboard.json', facts, tools, report, join(tmp, 'dashboard-rules.yml')))
    report.skip('rendering in Grafana: no Grafana here (the JSON model, data source wiring and queries are checked above)')

    report.section('Prometheus')
    if (tools.promtool) {
      const out = await run(tools.promtool, ['check', 'config', 'deploy/prometheus/prometheus.yml'])
      if (out.code === 0) report.ok('promtool check config deploy/prometheus/prometheus.yml')
      else report.fail(`promtool check config: ${out.stdout}${out.stderr}`)
    }

    report.section('smoke: the compose topology without Docker')
    if (!args.includes('--smoke')) report.skip('not requested (--smoke: re-enact both Dockerfiles\' build stages and run the stack on the embedded broker, ~1-2 min)')
    else await report.run('smoke', () => runSmoke(report))
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
  return report.summary()
}

process.exit(await main())

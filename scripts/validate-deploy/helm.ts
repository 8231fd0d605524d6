import { mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import YAML from 'yaml'
import type { Facts } from './facts.js'
import type { Report } from './report.js'
import type { Tools } from './tools.js'
import { asArray, asObject, at, isObject, run, str, yamlOptions, type Json } from './util.js'

/** Chart values that must not render, with the message the user sees (the fallback for helm-unittest). */
const MUST_FAIL: Array<[label: string, expected: string, args: string[]]> = [
  ['the chart defaults alone', 'kafka.brokers is required', []],
  ['a missing handler', 'handler is required', ['--set', 'handler=']],
  ['a missing groupId', 'groupId is required', ['--set', 'groupId=']],
  ['an unknown value (schema)', 'unknownKey', ['--set', 'unknownKey=1']],
  ['exhaustedPolicy=drop (schema)', 'exhaustedPolicy', ['--set', 'exhaustedPolicy=drop']],
  ['handlerTimeoutMs=0 (schema)', 'handlerTimeoutMs', ['--set', 'handlerTimeoutMs=0']],
  ['a grace period shorter than the shutdown timeout', 'must be longer than shutdownTimeoutMs', ['--set', 'terminationGracePeriodSeconds=5']],
  ['workerGroupId = groupId', 'workerGroupId must differ from groupId', ['--set', 'workerGroupId=orders-app']],
  ['the deprecated consumerGroup with groupId = consumerGroup', 'must differ from consumerGroup', ['--set', 'consumerGroup=orders-app']],
  ['consumerGroup with both groupId and workerGroupId', 'cannot be combined', ['--set', 'consumerGroup=a', '--set', 'workerGroupId=c']],
  ['SASL without a password source', 'set existingSecret', ['--set', 'kafka.sasl.mechanism=plain', '--set', 'kafka.sasl.username=orders']],
  ['a SASL user without a mechanism', 'need kafka.sasl.mechanism', ['--set', 'kafka.sasl.username=orders']],
  ['heartbeatIntervalMs >= sessionTimeoutMs', 'must be below sessionTimeoutMs', ['--set', 'heartbeatIntervalMs=6000', '--set', 'sessionTimeoutMs=6000']],
  ['an admin token Secret without a key', 'adminToken.key', ['--set', 'adminToken.existingSecret=admin', '--set', 'adminToken.key=']],
  ['a PDB with minAvailable and maxUnavailable', 'not both', ['--set', 'podDisruptionBudget.enabled=true', '--set', 'podDisruptionBudget.minAvailable=1', '--set', 'podDisruptionBudget.maxUnavailable=1']],
]

interface Validatable {
  validate(): void
}
type ModelClass = new (object: unknown) => Validatable

const MODELS: Record<string, [module: string, types: string | undefined]> = {
  Deployment: ['kubernetes-models/apps/v1/Deployment', 'apps/v1'],
  Service: ['kubernetes-models/v1/Service', 'core/v1'],
  ConfigMap: ['kubernetes-models/v1/ConfigMap', 'core/v1'],
  Secret: ['kubernetes-models/v1/Secret', 'core/v1'],
  ServiceAccount: ['kubernetes-models/v1/ServiceAccount', 'core/v1'],
  PodDisruptionBudget: ['kubernetes-models/policy/v1/PodDisruptionBudget', 'policy/v1'],
  ServiceMonitor: ['@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor', undefined],
}

export async function checkChart(chart: string, facts: Facts, tools: Tools, report: Report, tmp: string): Promise<void> {
  const helm = tools.helm
  if (!helm) return
  const rendered = join(tmp, 'rendered')
  const k8s = join(tools.npmDir, `k8s-check-${process.pid}`)
  mkdirSync(rendered, { recursive: true })
  mkdirSync(k8s, { recursive: true })
  const lint = async (label: string, args: string[]): Promise<void> => {
    // Lint mode reports a template's `fail`/`required` as [INFO]: look for "Fail:" as well.
    const out = await run(helm, ['lint', '--strict', chart, ...args])
    const text = `${out.stdout}${out.stderr}`
    if (out.code === 0 && !/Fail:|\[ERROR\]|\[WARNING\]/.test(text)) report.ok(`helm lint --strict (${label})`)
    else report.fail(`helm lint --strict (${label}): ${text.split('\n').filter(Boolean).slice(-5).join(' | ')}`)
  }
  const defaults = await run(helm, ['lint', '--strict', chart])
  if (defaults.code === 0) report.ok('helm lint --strict (chart defaults; required values are reported as [INFO] in lint mode)')
  else report.fail(`helm lint --strict (defaults): ${defaults.stdout}${defaults.stderr}`)
  const tsFiles: string[] = []
  for (const values of readdirSync(join(chart, 'ci')).filter((n) => n.endsWith('-values.yaml')).sort()) {
    const name = basename(values, '-values.yaml')
    const file = join(chart, 'ci', values)
    await lint(`ci/${values}`, ['-f', file])
    const out = await run(helm, ['template', 'detour', chart, '--namespace', 'orders', '-f', file])
    if (out.code !== 0) {
      report.fail(`helm template -f ci/${values}: ${out.stderr}`)
      continue
    }
    writeFileSync(join(rendered, `${name}.yaml`), out.stdout)
    report.ok(`helm template -f ci/${values}`)
    await report.run(`manifests ${name}`, () => checkManifests(out.stdout, name, facts, tools, report, k8s, tsFiles, join(rendered, `${name}.yaml`)))
  }
  if (!tools.kubeconform) {
    // Excess-property and type check of every rendered core object: catches misspelt field names, which the
    // OpenAPI schemas (no additionalProperties) let through.
    writeFileSync(
      join(k8s, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { strict: true, noEmit: true, module: 'commonjs', moduleResolution: 'node10', ignoreDeprecations: '5.0', target: 'ES2022', skipLibCheck: true, types: [] }, files: tsFiles }),
    )
    const tsc = await run(process.execPath, ['node_modules/typescript/bin/tsc', '-p', join(k8s, 'tsconfig.json')])
    if (tsc.code === 0) report.ok(`rendered objects type-check against kubernetes-types 1.30 (${tsFiles.length} files: no unknown fields, no nulls)`)
    else report.fail(`rendered objects do not type-check against kubernetes-types: ${tsc.stdout}${tsc.stderr}`)
  }
  const minimal = join(chart, 'ci/minimal-values.yaml')
  for (const [label, expected, args] of MUST_FAIL) {
    const out = await run(helm, ['template', 'detour', chart, ...(label === 'the chart defaults alone' ? [] : ['-f', minimal]), ...args])
    const text = `${out.stdout}${out.stderr}`
    if (out.code === 0) report.fail(`helm template accepts ${label}`)
    else if (text.includes(expected)) report.ok(`helm template rejects ${label} ("${expected}")`)
    else report.fail(`helm template rejects ${label}, but without "${expected}": ${text.split('\n').slice(-3).join(' | ')}`)
  }
  if (tools.helmUnittest) {
    const out = await run(helm, ['unittest', chart])
    if (out.code === 0) report.ok('helm unittest')
    else report.fail(`helm unittest: ${out.stdout}${out.stderr}`)
  }
  report.skip('helm install / server-side validation: no Kubernetes cluster (API admission and the ServiceMonitor CRD are not exercised)')
}

async function checkManifests(text: string, label: string, facts: Facts, tools: Tools, report: Report, k8s: string, tsFiles: string[], file: string): Promise<void> {
  const docs = YAML.parseAllDocuments(text, yamlOptions)
  const problems = docs.flatMap((d) => [...d.errors, ...d.warnings])
  if (problems.length > 0) {
    report.fail(`${label}: rendered YAML does not parse: ${problems.map((p) => p.message).join('; ')}`)
    return
  }
  const objects = docs.map((d) => d.toJS() as unknown).filter(isObject)
  const byKind = new Map<string, Json[]>()
  const tsLines: string[] = []
  const before = report.failures
  for (const [i, object] of objects.entries()) {
    const kind = str(object.kind)
    const model = MODELS[kind]
    if (!model) {
      report.fail(`${label}: unexpected kind ${kind}`)
      continue
    }
    byKind.set(kind, [...(byKind.get(kind) ?? []), object])
    if (!tools.kubeconform) {
      const Model = (await tools.importTool<Record<string, ModelClass>>(model[0]))[kind]!
      try {
        new Model(object).validate()
      } catch (error) {
        report.fail(`${label}: ${kind} ${str(at(object, 'metadata', 'name'))}: ${(error as Error).message}`)
      }
    }
    if (model[1]) tsLines.push(`import type { ${kind} as K${i} } from 'kubernetes-types/${model[1]}'\nexport const m${i}: K${i} = ${JSON.stringify(object, null, 2)}\n`)
  }
  if (tools.kubeconform) {
    const schemas = process.env.KUBECONFORM_SCHEMA_LOCATION
    const out = await run(tools.kubeconform, ['-strict', '-summary', ...(schemas ? ['-schema-location', schemas] : []), '-skip', 'ServiceMonitor', file])
    if (out.code !== 0) report.fail(`${label}: kubeconform: ${out.stdout}${out.stderr}`)
  }
  const tsFile = join(k8s, `${label.replace(/[^a-z0-9]+/gi, '-')}.ts`)
  writeFileSync(tsFile, tsLines.join('\n'))
  tsFiles.push(tsFile)
  const kinds = objects.map((o) => str(o.kind)).join(', ')

  const deployment = byKind.get('Deployment')?.[0]
  const configMap = byKind.get('ConfigMap')?.[0]
  if (!deployment || !configMap) {
    report.fail(`${label}: needs a Deployment and a ConfigMap (got ${kinds})`)
    return
  }
  const pod = asObject(at(deployment, 'spec', 'template', 'spec'))
  const container = asObject(asArray(pod.containers).find((c) => at(c, 'name') === 'retry-worker') ?? asArray(pod.containers)[0])
  const env = Object.fromEntries(Object.entries(asObject(configMap.data)).map(([k, v]) => [k, str(v)]))
  const containerEnv = asArray(container.env).map(asObject)
  for (const key of Object.keys(env)) if (!facts.workerEnv.has(key)) report.fail(`${label}: ConfigMap ${key} is not a setting of detour-retry run (ignored silently)`)
  for (const e of containerEnv) if (str(e.name).startsWith('DETOUR_') && !facts.workerEnv.has(str(e.name))) report.fail(`${label}: env ${str(e.name)} is not a setting of detour-retry run`)
  for (const setting of facts.settings) {
    if (setting.secret && env[setting.env] !== undefined) report.fail(`${label}: the ConfigMap holds the secret ${setting.env}`)
    if (setting.deprecated !== undefined && env[setting.env] !== undefined && label !== 'legacy') report.fail(`${label}: the ConfigMap sets the deprecated ${setting.env}`)
  }
  for (const key of ['DETOUR_BROKERS', 'DETOUR_TOPICS', 'DETOUR_HANDLER']) if (!env[key]) report.fail(`${label}: ConfigMap lacks ${key}`)
  if (!env.DETOUR_GROUP_ID && !env.DETOUR_CONSUMER_GROUP) report.fail(`${label}: ConfigMap lacks DETOUR_GROUP_ID`)
  if (!asArray(container.envFrom).some((e) => at(e, 'configMapRef', 'name') === at(configMap, 'metadata', 'name'))) report.fail(`${label}: the container does not load the ConfigMap`)
  const names = [...Object.keys(env), ...containerEnv.map((e) => str(e.name))]
  const dupes = names.filter((n, i) => names.indexOf(n) !== i)
  if (dupes.length > 0) report.fail(`${label}: env set twice: ${dupes.join(', ')}`)
  const port = asArray(container.ports).map(asObject).find((p) => p.name === 'http-metrics')
  if (!port || str(port.containerPort) !== env.DETOUR_METRICS_PORT) report.fail(`${label}: containerPort ${str(port?.containerPort)} != DETOUR_METRICS_PORT ${env.DETOUR_METRICS_PORT}`)
  for (const [probe, path] of [['livenessProbe', '/healthz'], ['readinessProbe', '/readyz']] as const) {
    const get = asObject(at(container, probe, 'httpGet'))
    if (get.path !== path || get.port !== 'http-metrics') report.fail(`${label}: ${probe} must GET ${path} on http-metrics`)
    // The probes come from the kubelet (not loopback): they must hit a route that answers anyone.
    if (facts.routes.get(`GET ${str(get.path)}`) !== 200) report.fail(`${label}: ${probe} path ${str(get.path)} does not answer 200 from the worker's HTTP server`)
  }
  if (env.DETOUR_METRICS_HOST !== '0.0.0.0') report.fail(`${label}: DETOUR_METRICS_HOST must be 0.0.0.0 (probes and Prometheus reach the pod IP)`)
  const shutdown = Number(env.DETOUR_SHUTDOWN_TIMEOUT_MS ?? 10_000) / 1000
  if (!(Number(pod.terminationGracePeriodSeconds) > shutdown)) report.fail(`${label}: terminationGracePeriodSeconds ${str(pod.terminationGracePeriodSeconds)} must exceed the shutdown timeout (${shutdown} s)`)
  const sc = asObject(container.securityContext)
  const psc = asObject(pod.securityContext)
  if (sc.readOnlyRootFilesystem !== true || sc.allowPrivilegeEscalation !== false || !(sc.runAsNonRoot || psc.runAsNonRoot)) report.fail(`${label}: container must be non-root, read-only root fs, no privilege escalation`)
  if (facts.workerUid !== undefined && (sc.runAsUser ?? psc.runAsUser) !== facts.workerUid) report.fail(`${label}: runAsUser differs from the worker image's USER ${facts.workerUid}`)
  if (!asArray(container.volumeMounts).some((m) => at(m, 'mountPath') === '/tmp')) report.fail(`${label}: a read-only root fs needs a writable /tmp`)
  const annotations = asObject(at(deployment, 'spec', 'template', 'metadata', 'annotations'))
  if (annotations['prometheus.io/scrape'] === 'true' && annotations['prometheus.io/port'] !== env.DETOUR_METRICS_PORT) report.fail(`${label}: prometheus.io/port differs from the metrics port`)
  const podLabels = asObject(at(deployment, 'spec', 'template', 'metadata', 'labels'))
  const matches = (selector: unknown): boolean => Object.entries(asObject(selector)).every(([k, v]) => podLabels[k] === v)
  if (!matches(at(deployment, 'spec', 'selector', 'matchLabels'))) report.fail(`${label}: Deployment selector does not match its pod labels`)
  const service = byKind.get('Service')?.[0]
  for (const s of byKind.get('Service') ?? []) {
    if (!matches(at(s, 'spec', 'selector'))) report.fail(`${label}: Service selector does not match the pods`)
    for (const p of asArray(at(s, 'spec', 'ports'))) {
      const target = at(p, 'targetPort')
      if (typeof target === 'string' && !asArray(container.ports).some((cp) => at(cp, 'name') === target)) report.fail(`${label}: Service targetPort ${target} is not a container port`)
    }
  }
  for (const monitor of byKind.get('ServiceMonitor') ?? []) {
    if (!Object.entries(asObject(at(monitor, 'spec', 'selector', 'matchLabels'))).every(([k, v]) => at(service, 'metadata', 'labels', k) === v)) report.fail(`${label}: ServiceMonitor selector does not match the Service`)
    for (const e of asArray(at(monitor, 'spec', 'endpoints'))) if (!asArray(at(service, 'spec', 'ports')).some((p) => at(p, 'name') === at(e, 'port'))) report.fail(`${label}: ServiceMonitor port ${str(at(e, 'port'))} is not a Service port`)
  }
  for (const pdb of byKind.get('PodDisruptionBudget') ?? []) if (!matches(at(pdb, 'spec', 'selector', 'matchLabels'))) report.fail(`${label}: PDB selector does not match the pods`)
  // Secrets: every secret setting in the container comes from a secretKeyRef; a chart-made Secret has the key.
  for (const setting of facts.settings.filter((s) => s.secret)) {
    const entry = containerEnv.find((e) => e.name === setting.env)
    if (entry && !at(entry, 'valueFrom', 'secretKeyRef')) report.fail(`${label}: ${setting.env} is not read from a Secret`)
    const ref = asObject(at(entry, 'valueFrom', 'secretKeyRef'))
    const secret = (byKind.get('Secret') ?? []).find((s) => at(s, 'metadata', 'name') === ref.name)
    if (secret && !at(secret, 'data', str(ref.key))) report.fail(`${label}: Secret ${str(ref.name)} has no key ${str(ref.key)}`)
    if (entry && !secret) report.note(`${label}: ${setting.env} from the existing Secret ${str(ref.name)}/${str(ref.key)} (not rendered)`)
  }
  if (env.DETOUR_SASL_MECHANISM && !containerEnv.some((e) => e.name === 'DETOUR_SASL_PASSWORD')) report.fail(`${label}: SASL on but DETOUR_SASL_PASSWORD is not set`)
  if (JSON.stringify(configMap).toLowerCase().includes('password')) report.fail(`${label}: the ConfigMap mentions a password`)
  const ca = env.DETOUR_SSL_CA_FILE
  if (ca && !asArray(container.volumeMounts).some((m) => ca.startsWith(`${str(at(m, 'mountPath'))}/`))) report.fail(`${label}: DETOUR_SSL_CA_FILE ${ca} is not on a mounted volume`)
  if (report.failures === before) {
    report.ok(
      `${label}: ${kinds} valid (${tools.kubeconform ? 'kubeconform' : 'kubernetes-models OpenAPI schemas'}); ConfigMap keys = worker settings, secrets from Secrets, probes hit open routes, ports, grace period, security context agree`,
    )
  }
}

import { existsSync, readdirSync } from 'node:fs'
import { dirname, join, posix, relative } from 'node:path'
import { RETRY_TOPIC_CONFIG, detourTopicsFor, resolveGroupIds } from '@detour/core'
import YAML from 'yaml'
import type { Facts } from './facts.js'
import type { Report } from './report.js'
import type { Tools } from './tools.js'
import { asArray, asObject, at, parseYaml, read, run, serviceEnv, str, type Json } from './util.js'

type Service = Json

function dependsOn(service: Service): string[] {
  const deps = service.depends_on
  return Array.isArray(deps) ? deps.map(str) : Object.keys(asObject(deps))
}

function volumes(service: Service): string[] {
  return asArray(service.volumes).map((v) => (typeof v === 'string' ? v : `${str(at(v, 'source'))}:${str(at(v, 'target'))}`))
}

function commandText(service: Service): string {
  return JSON.stringify([service.entrypoint, service.command])
}

/** `docker compose config` (v2), or Compose v1.29 on a copy without the top-level `name:` it predates. */
export async function composeConfig(file: string, tools: Tools, report: Report, tmp: string): Promise<void> {
  if (!tools.compose) return
  const [bin, ...pre] = tools.compose as [string, ...string[]]
  if (tools.composeKind === 'v2') {
    const out = await run(bin, [...pre, '-f', file, '--profile', 'workload', 'config', '--quiet'])
    if (out.code === 0) report.ok('docker compose config: valid')
    else report.fail(`docker compose config: ${out.stderr}`)
    return
  }
  const doc = YAML.parseDocument(read(file), { merge: true })
  doc.delete('name')
  const copy = join(tmp, 'compose-v1.yml')
  const { writeFileSync } = await import('node:fs')
  writeFileSync(copy, String(doc))
  const out = await run(bin, [...pre, '--project-directory', dirname(file), '-f', copy, '--profile', 'workload', 'config', '--quiet'])
  if (out.code === 0 && out.stdout.trim() === '' && !/error/i.test(out.stderr)) report.ok('docker-compose config (v1.29: the compose-spec schema, interpolation, references): valid (top-level name: stripped)')
  else report.fail(`docker-compose config (on a copy of ${file} without name:): ${out.stderr || out.stdout}`)
}

/** Topic creations in kafka-init's script: topic → partitions and `--config k=v` settings. */
function createdTopics(script: string): Map<string, { partitions: number; config: Map<string, string> }> {
  const created = new Map<string, { partitions: number; config: Map<string, string> }>()
  for (const line of script.split('\n')) {
    const m = /create --topic (\S+) --partitions (\d+)(.*)$/.exec(line)
    if (!m) continue
    const config = new Map([...m[3]!.matchAll(/--config ([a-z.]+)=(\S+)/g)].map((c) => [c[1]!, c[2]!]))
    created.set(m[1]!, { partitions: Number(m[2]), config })
  }
  return created
}

export function checkCompose(file: string, facts: Facts, report: Report): void {
  const dir = dirname(file)
  const compose = asObject(parseYaml(read(file)))
  const services = asObject(compose.services) as Record<string, Service>
  const names = new Set(Object.keys(services))
  const declaredVolumes = new Set(Object.keys(asObject(compose.volumes)))
  const before = report.failures
  const isWorker = (s: Service): boolean => at(s, 'build', 'dockerfile') === 'deploy/Dockerfile'
  const isMainApp = (s: Service): boolean => /main-app\.js/.test(commandText(s))

  for (const [name, service] of Object.entries(services)) {
    for (const dep of dependsOn(service)) if (!names.has(dep)) report.fail(`${name}: depends_on unknown service ${dep}`)
    for (const mount of volumes(service)) {
      const source = mount.split(':')[0] ?? ''
      if (source.startsWith('.') || source.startsWith('/')) {
        if (!existsSync(join(dir, source))) report.fail(`${name}: bind-mount source ${source} does not exist`)
      } else if (!declaredVolumes.has(source)) report.fail(`${name}: volume ${source} is not declared under volumes:`)
    }
    const build = asObject(service.build)
    if (service.build !== undefined) {
      const context = join(dir, str(build.context) || '.')
      const dockerfile = join(context, str(build.dockerfile) || 'Dockerfile')
      if (!existsSync(dockerfile)) report.fail(`${name}: ${relative('.', dockerfile)} does not exist`)
      else if (build.target && !new RegExp(`^FROM\\s+\\S+\\s+AS\\s+${str(build.target)}\\s*$`, 'mi').test(read(dockerfile))) {
        report.fail(`${name}: ${relative('.', dockerfile)} has no stage "${str(build.target)}"`)
      }
    }
    const image = str(service.image)
    if (!image) report.fail(`${name}: no image (pinned image, or the tag its build produces)`)
    else if (service.build === undefined && (/:latest$/.test(image) || !/:[^/]+$/.test(image))) report.fail(`${name}: image ${image} is not pinned to a version`)
    // Variable names the program reads: the CLIs drop unknown DETOUR_* variables silently.
    const env = serviceEnv(service)
    const known = isWorker(service) ? facts.workerEnv : isMainApp(service) ? facts.mainAppEnv : undefined
    if (known && facts.handlerEnv) {
      for (const key of Object.keys(env).filter((k) => /^(DETOUR|DEMO)_/.test(k))) {
        if (!known.has(key) && !facts.handlerEnv.has(key)) {
          report.fail(`${name}: ${key} is read neither by ${isWorker(service) ? "the worker (its settings table)" : 'main-app.ts'} nor by the example handler`)
        }
      }
      for (const setting of facts.settings.filter((s) => s.deprecated !== undefined)) {
        if (isWorker(service) && env[setting.env] !== undefined) report.fail(`${name}: ${setting.env} is deprecated (${setting.deprecated})`)
      }
    }
    const port = env.DETOUR_METRICS_PORT
    if (known && port) {
      const published = asArray(service.ports).map((p) => str(p).split(':').pop())
      if (!published.includes(port)) report.fail(`${name}: DETOUR_METRICS_PORT ${port} is not the container port published (${published.join(', ')})`)
      if (service.healthcheck && !JSON.stringify(at(service, 'healthcheck', 'test')).includes(`:${port}/`)) report.fail(`${name}: the healthcheck does not probe port ${port}`)
      const probed = /:\d+(\/[a-z]+)/.exec(JSON.stringify(at(service, 'healthcheck', 'test')))?.[1]
      if (isWorker(service) && probed && facts.routes.get(`GET ${probed}`) !== 200) report.fail(`${name}: the healthcheck probes ${probed}, which the worker does not serve with 200`)
    }
    const grace = /^(\d+)s$/.exec(str(service.stop_grace_period))?.[1]
    if (known && grace && env.DETOUR_SHUTDOWN_TIMEOUT_MS && !(Number(grace) * 1000 > Number(env.DETOUR_SHUTDOWN_TIMEOUT_MS))) {
      report.fail(`${name}: stop_grace_period ${str(service.stop_grace_period)} must exceed DETOUR_SHUTDOWN_TIMEOUT_MS`)
    }
  }
  if (report.failures === before) report.ok(`${names.size} services: depends_on, volumes, bind mounts, Dockerfiles/targets, pinned images, variable names (worker: its settings table; main app: main-app.ts), ports, healthchecks, grace periods`)

  const worker = Object.entries(services).find(([, s]) => isWorker(s))
  const app = Object.entries(services).find(([, s]) => isMainApp(s))
  if (!worker || !app) {
    report.fail('compose needs a retry worker (built from deploy/Dockerfile) and an example app (main-app.js)')
    return
  }
  const [workerName, workerService] = worker
  const [appName, appService] = app
  const we = serviceEnv(workerService)
  const ae = serviceEnv(appService)

  // Both apps speak of the same main app group (core's rule, as the worker applies it; main-app.ts reads
  // DETOUR_GROUP_ID, then the deprecated DETOUR_CONSUMER_GROUP).
  let groups: { groupId: string; workerGroupId: string } | undefined
  try {
    groups = resolveGroupIds({ groupId: we.DETOUR_GROUP_ID, workerGroupId: we.DETOUR_WORKER_GROUP_ID, consumerGroup: we.DETOUR_CONSUMER_GROUP })
  } catch (error) {
    report.fail(`${workerName}: its group variables do not resolve: ${(error as Error).message}`)
  }
  const appGroup = ae.DETOUR_GROUP_ID || ae.DETOUR_CONSUMER_GROUP
  if (groups && groups.groupId !== appGroup) report.fail(`the worker serves group ${groups.groupId}, the main app is in ${appGroup}`)
  else if (groups) report.ok(`main app group ${groups.groupId} in both apps; the worker's own group ${groups.workerGroupId}`)
  for (const key of ['DETOUR_BROKERS', 'DETOUR_TOPICS']) if (we[key] !== ae[key]) report.fail(`${key} differs: ${workerName}=${we[key]} ${appName}=${ae[key]}`)

  // The handler hand-over: a one-shot service copies the app's handler into a volume the worker mounts under /app.
  const handlerName = posix.basename(ae.DETOUR_HANDLER ?? '')
  const mount = volumes(workerService).map((v) => v.split(':')).find(([, target]) => (we.DETOUR_HANDLER ?? '').startsWith(`${target}/`))
  if (!mount) report.fail(`${workerName}: DETOUR_HANDLER ${we.DETOUR_HANDLER} is not inside a mounted volume`)
  else {
    const [volume, target] = mount as [string, string]
    if (!(we.DETOUR_HANDLER ?? '').startsWith('/app/')) report.fail(`${workerName}: the handler must live under /app so kafkajs/@detour/core resolve to /app/node_modules`)
    const filler = Object.entries(services).find(([n, s]) => n !== workerName && volumes(s).some((v) => v.startsWith(`${volume}:`)))
    if (!filler) report.fail(`no service fills the volume ${volume}`)
    else {
      const [fillerName, fillerService] = filler
      const fillerTarget = volumes(fillerService).find((v) => v.startsWith(`${volume}:`))!.split(':')[1]!
      const copy = JSON.stringify(fillerService.command ?? '')
      if (!copy.includes((ae.DETOUR_HANDLER ?? '').replace(/\.js$/, '')) || !copy.includes(fillerTarget)) report.fail(`${fillerName} does not copy ${ae.DETOUR_HANDLER} into ${fillerTarget}`)
      else if (posix.basename(we.DETOUR_HANDLER ?? '') !== handlerName) report.fail(`${workerName} runs ${we.DETOUR_HANDLER}, the app ${ae.DETOUR_HANDLER}: not the same module`)
      else if (at(workerService, 'depends_on', fillerName, 'condition') !== 'service_completed_successfully') report.fail(`${workerName} must depend on ${fillerName} completing successfully`)
      else report.ok(`handler hand-over: ${fillerName} copies ${ae.DETOUR_HANDLER} into volume ${volume}, ${workerName} mounts it at ${target} and runs ${we.DETOUR_HANDLER}`)
    }
  }
  const source = `e2e/src/demo/${handlerName.replace(/\.js$/, '.ts')}`
  if (existsSync(source)) report.ok(`${source} exists (compiled to ${ae.DETOUR_HANDLER})`)
  else report.fail(`${source} does not exist: ${ae.DETOUR_HANDLER} would not be built`)

  checkProvisioning(services, we, ae, groups?.groupId, report)
  checkGrafana(dir, services, report)
  checkPrometheusTargets(dir, [worker, app], report)
}

/** kafka-init creates exactly core's topics for the group, with the settings core checks. */
function checkProvisioning(services: Record<string, Service>, we: Record<string, string>, ae: Record<string, string>, groupId: string | undefined, report: Report): void {
  const init = Object.entries(services).find(([, s]) => JSON.stringify(s.command ?? '').includes('kafka-topics.sh'))
  if (!init || groupId === undefined) {
    report.fail('no topic-provisioning service (kafka-topics.sh), or no group to name the topics after')
    return
  }
  const [initName, initService] = init
  const script = asArray(initService.command).map(str).join('\n') || str(initService.command)
  const created = createdTopics(script)
  const sources = (we.DETOUR_TOPICS ?? '').split(/[\s,]+/).filter(Boolean)
  const naming = { retry: we.DETOUR_RETRY_TOPIC_TEMPLATE, redirect: we.DETOUR_REDIRECT_TOPIC_TEMPLATE, error: we.DETOUR_ERROR_TOPIC_TEMPLATE }
  const before = report.failures
  const expected: string[] = []
  for (const topics of detourTopicsFor(sources, groupId, Object.fromEntries(Object.entries(naming).filter(([, v]) => v))).values()) {
    const source = created.get(topics.source)
    for (const [role, topic] of [['source', topics.source], ['retry', topics.retry], ['redirect', topics.redirect], ['error', topics.error]] as const) {
      expected.push(topic)
      const c = created.get(topic)
      if (!c) {
        report.fail(`${initName} does not create the ${role} topic ${topic}`)
        continue
      }
      if ((role === 'retry' || role === 'redirect') && c.partitions !== source?.partitions) report.fail(`${topic} must have as many partitions as ${topics.source} (${source?.partitions})`)
      if (role === 'redirect' && c.config.get('cleanup.policy') !== 'compact') report.fail(`${topic} must be created with cleanup.policy=compact (exactly: core refuses anything else)`)
      if (role === 'retry') {
        for (const [key, value] of Object.entries(RETRY_TOPIC_CONFIG)) {
          const given = c.config.get(key)
          // cleanup.policy=delete is the broker's default; the retention limits must be lifted explicitly.
          if (given !== value && !(given === undefined && key === 'cleanup.policy')) report.fail(`${topic} must be created with ${key}=${value} (core's RETRY_TOPIC_CONFIG), got ${given ?? 'the broker default'}`)
        }
      }
    }
  }
  if (ae.DEMO_OUTPUT_TOPIC && !created.has(ae.DEMO_OUTPUT_TOPIC)) report.fail(`${initName} does not create ${ae.DEMO_OUTPUT_TOPIC}`)
  if (!/--if-not-exists/.test(script)) report.fail(`${initName}: kafka-topics.sh --create needs --if-not-exists (re-runs on every up)`)
  if (report.failures === before) {
    report.ok(`${initName} creates core's topics for group ${groupId} (detourTopicsFor): ${expected.join(', ')}; retry ${Object.entries(RETRY_TOPIC_CONFIG).map(([k, v]) => `${k}=${v}`).join(',')}; redirect cleanup.policy=compact; co-partitioned`)
  }
}

function checkGrafana(dir: string, services: Record<string, Service>, report: Report): void {
  const grafana = Object.entries(services).find(([, s]) => /^grafana\//.test(str(s.image)))
  const providersFile = join(dir, 'grafana/provisioning/dashboards/detour.yml')
  if (!grafana || !existsSync(providersFile)) return
  const [grafanaName, grafanaService] = grafana
  const mounts = volumes(grafanaService).map((v) => v.split(':') as [string, string])
  const targets = mounts.map(([, target]) => target)
  const before = report.failures
  for (const provider of asArray(at(parseYaml(read(providersFile)), 'providers'))) {
    const path = str(at(provider, 'options', 'path'))
    if (!mounts.some(([src, target]) => target.startsWith(`${path}/`) && src.endsWith('.json') && existsSync(join(dir, src)))) report.fail(`${grafanaName}: no dashboard JSON is mounted under the provider path ${path}`)
  }
  const home = serviceEnv(grafanaService).GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH
  if (home && !targets.includes(home)) report.fail(`${grafanaName}: GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH ${home} is not a mounted file`)
  if (!targets.includes('/etc/grafana/provisioning')) report.fail(`${grafanaName}: ./grafana/provisioning is not mounted at /etc/grafana/provisioning`)
  const datasources = join(dir, 'grafana/provisioning/datasources')
  const promService = Object.keys(services).find((n) => /^prom\//.test(str(services[n]?.image)))
  for (const file of existsSync(datasources) ? readdirSync(datasources) : []) {
    for (const ds of asArray(at(parseYaml(read(join(datasources, file))), 'datasources'))) {
      if (at(ds, 'type') === 'prometheus' && !str(at(ds, 'url')).includes(`//${promService}:`)) report.fail(`grafana data source ${str(at(ds, 'name'))} points at ${str(at(ds, 'url'))}, not the ${promService} service`)
    }
  }
  if (report.failures === before) report.ok(`${grafanaName}: provisioning, dashboard file and home dashboard mounted; data source = ${promService}`)
}

function checkPrometheusTargets(dir: string, apps: Array<[string, Service]>, report: Report): void {
  const promFile = join(dir, 'prometheus/prometheus.yml')
  if (!existsSync(promFile)) return
  const targets = new Map<string, string>()
  for (const job of asArray(at(parseYaml(read(promFile)), 'scrape_configs'))) {
    for (const sd of asArray(at(job, 'dns_sd_configs'))) for (const n of asArray(at(sd, 'names'))) targets.set(str(n), str(at(sd, 'port')))
    for (const sc of asArray(at(job, 'static_configs'))) for (const t of asArray(at(sc, 'targets'))) targets.set(str(t).split(':')[0]!, str(t).split(':')[1] ?? '')
  }
  for (const [name, service] of apps) {
    const port = serviceEnv(service).DETOUR_METRICS_PORT
    if (targets.get(name) !== port) report.fail(`prometheus.yml must scrape ${name}:${port} (found ${targets.has(name) ? `port ${targets.get(name)}` : 'nothing'})`)
    else report.ok(`prometheus.yml scrapes ${name} on ${port}`)
  }
}

import { existsSync } from 'node:fs'
import { Kafka, logLevel } from 'kafkajs'
import { Registry } from 'prom-client'
import { createDetour } from '@detour/main-app-sdk'
import { WORKER_SETTINGS, createRetryWorker, startHttpServer, type HttpWorker, type SettingDefinition } from '@detour/retry-app'
import { read } from './util.js'

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary'

export interface MetricFact {
  readonly type: MetricType
  readonly labels: ReadonlySet<string>
  /** Which apps register it. */
  readonly apps: ReadonlySet<'main app' | 'worker'>
}

/** What the deploy files must agree with, read from the built modules (and two demo sources). */
export interface Facts {
  readonly settings: readonly SettingDefinition[]
  /** Every variable `detour-retry run` reads (settings and deprecated aliases). */
  readonly workerEnv: ReadonlySet<string>
  readonly metrics: ReadonlyMap<string, MetricFact>
  /** `GET /path` → status of the worker's HTTP server (from a running instance; 404: not served). */
  readonly routes: ReadonlyMap<string, number>
  readonly mainAppEnv: ReadonlySet<string> | undefined
  readonly handlerEnv: ReadonlySet<string> | undefined
  readonly workerUid: number | undefined
}

/** A kafkajs client that is never connected: constructing the apps registers their metrics. */
function offlineKafka(): Kafka {
  return new Kafka({ clientId: 'validate-deploy', brokers: ['127.0.0.1:1'], logLevel: logLevel.NOTHING })
}

async function metricsOf(registry: Registry, app: 'main app' | 'worker', into: Map<string, { type: MetricType; labels: Set<string>; apps: Set<'main app' | 'worker'> }>): Promise<void> {
  const described = await registry.getMetricsAsJSON()
  for (const metric of registry.getMetricsAsArray()) {
    const name = (metric as unknown as { name: string }).name
    // prom-client keeps the configured label names on the metric (not in its typings).
    const labels = (metric as unknown as { labelNames?: readonly string[] }).labelNames ?? []
    const type = String(described.find((m) => m.name === name)?.type) as MetricType
    const fact = into.get(name) ?? { type, labels: new Set<string>(), apps: new Set<'main app' | 'worker'>() }
    for (const label of labels) fact.labels.add(label)
    fact.apps.add(app)
    into.set(name, fact)
  }
}

/** The metrics the main-app SDK and the retry worker register (each constructed offline, own registry). */
export async function registeredMetrics(): Promise<Map<string, MetricFact>> {
  const kafka = offlineKafka()
  const metrics = new Map<string, { type: MetricType; labels: Set<string>; apps: Set<'main app' | 'worker'> }>()
  const mainRegistry = new Registry()
  createDetour({ kafka, consumer: kafka.consumer({ groupId: 'validate-deploy' }), groupId: 'validate-deploy', topics: ['validate-deploy'], registry: mainRegistry })
  await metricsOf(mainRegistry, 'main app', metrics)
  const workerRegistry = new Registry()
  createRetryWorker({ kafka, groupId: 'validate-deploy', topics: ['validate-deploy'], handler: async () => {}, registry: workerRegistry })
  await metricsOf(workerRegistry, 'worker', metrics)
  return metrics
}

/** Asks a real instance of the worker's HTTP server (stand-in worker, loopback, port 0) which routes it serves. */
async function servedRoutes(): Promise<Map<string, number>> {
  const worker: HttpWorker = { state: 'running', ready: true, heldGroups: () => [], releaseHeld: () => Promise.resolve({ released: false, reason: 'not-found' }) }
  const server = await startHttpServer({ port: 0, host: '127.0.0.1', registry: new Registry(), worker })
  const routes = new Map<string, number>()
  try {
    for (const path of ['/metrics', '/healthz', '/readyz', '/groups/held', '/no-such-route']) {
      routes.set(`GET ${path}`, (await fetch(`${server.url}${path}`)).status)
    }
  } finally {
    await server.close()
  }
  return routes
}

export async function readFacts(): Promise<Facts> {
  const settings: readonly SettingDefinition[] = WORKER_SETTINGS
  const workerEnv = new Set(settings.flatMap((s) => [s.env, ...(s.aliases ?? []).map((a) => `DETOUR_${a.replace(/-/g, '_').toUpperCase()}`)]))
  // The demo's main app and handler are programs, not modules: their variables are read from their env() calls.
  const mainApp = 'e2e/src/demo/main-app.ts'
  const mainAppEnv = existsSync(mainApp)
    ? new Set([...read(mainApp).matchAll(/\b(?:env|intEnv)\('([A-Z0-9_]+)'|process\.env\.([A-Z0-9_]+)/g)].map((m) => (m[1] ?? m[2])!))
    : undefined
  const handler = 'e2e/src/demo/example-handler.ts'
  const handlerEnv = existsSync(handler)
    ? new Set([...read(handler).matchAll(/process\.env\.([A-Z0-9_]+)|number\('([A-Z0-9_]+)'/g)].map((m) => (m[1] ?? m[2])!))
    : undefined
  const user = /^USER\s+(\d+)/m.exec(read('deploy/Dockerfile'))
  return {
    settings,
    workerEnv,
    metrics: await registeredMetrics(),
    routes: await servedRoutes(),
    mainAppEnv,
    handlerEnv,
    workerUid: user ? Number(user[1]) : undefined,
  }
}

/**
 * --smoke: the compose stack without Docker. Re-enacts the build stages of deploy/Dockerfile and
 * deploy/Dockerfile.example-app in a scratch root (their absolute paths mapped into it), then runs
 * docker-compose.yml's topology on the test kit's broker: topics from kafka-init's script (with its
 * settings), demo-handler's copy into the volume the worker mounts, the example app and the worker with
 * their compose environment, a workload; checks readiness, processing, a held group and its release, no
 * pending id left, and a clean SIGTERM stop.
 */
import { execFileSync, spawn, type ChildProcessByStdio } from 'node:child_process'
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { basename, dirname, isAbsolute, join, posix } from 'node:path'
import type { Readable } from 'node:stream'
import type { TestBroker } from '@detour/testkit'
import { WORKER_SETTINGS } from '@detour/retry-app'
import type { Report } from './report.js'
import { asArray, asObject, at, parseYaml, read, str, type Json } from './util.js'

interface Step {
  readonly op: string
  readonly rest: string
}

interface Stage {
  readonly name: string
  readonly root: string
  workdir: string
  readonly env: Record<string, string>
  readonly skipped: string[]
  entrypoint?: string[]
  cmd?: string[]
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
const repo = process.cwd()

function instructions(file: string): Step[] {
  return read(file)
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [, op = '', rest = ''] = /^(\S+)\s*(.*)$/.exec(l) ?? []
      return { op: op.toUpperCase(), rest }
    })
}

function keyValues(rest: string): Array<[string, string | undefined]> {
  return [...rest.matchAll(/([A-Za-z_][A-Za-z0-9_]*)(?:=("[^"]*"|\S*))?/g)].map(([, k, v]) => [k!, v?.replace(/^"|"$/g, '')])
}

const jsonArray = (rest: string): string[] => (rest.startsWith('[') ? (JSON.parse(rest) as string[]) : ['/bin/sh', '-c', rest])

function reenact(dockerfile: string, name: string, scratch: string, pnpmVersion: string): Map<string, Stage> {
  const steps = instructions(dockerfile)
  const roots = new Set(['out'])
  for (const s of steps) {
    if (s.op === 'WORKDIR') roots.add(s.rest.split('/')[1]!)
    if (s.op === 'COPY') for (const p of s.rest.split(/\s+/).filter((x) => x.startsWith('/'))) roots.add(p.split('/')[1]!)
  }
  const stages = new Map<string, Stage>()
  const globalArgs: Record<string, string> = {}
  let stage: Stage | undefined
  const bin = join(scratch, 'bin')
  mkdirSync(bin, { recursive: true })
  writeFileSync(join(bin, 'pnpm'), `#!/bin/sh\nexec npx --yes "pnpm@${pnpmVersion}" "$@"\n`)
  chmodSync(join(bin, 'pnpm'), 0o755)
  for (const step of steps) {
    if (step.op === 'FROM') {
      const [, , as] = /^(\S+)(?:\s+AS\s+(\S+))?/i.exec(step.rest) ?? []
      const stageName = as ?? `stage${stages.size}`
      stage = { name: stageName, root: join(scratch, name, stageName), workdir: '/', env: { ...globalArgs }, skipped: [] }
      stages.set(stageName, stage)
      mkdirSync(stage.root, { recursive: true })
      continue
    }
    if (!stage) {
      if (step.op === 'ARG') for (const [k, v] of keyValues(step.rest)) globalArgs[k] = v ?? ''
      continue
    }
    const current = stage
    const map = (p: string): string => join(current.root, isAbsolute(p) ? p : posix.join(current.workdir, p))
    const expand = (text: string): string => text.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (m, k: string) => current.env[k] ?? m)
    switch (step.op) {
      case 'ARG':
        for (const [k, v] of keyValues(step.rest)) current.env[k] = v ?? globalArgs[k] ?? ''
        break
      case 'ENV':
        for (const [k, v] of keyValues(step.rest)) current.env[k] = expand(v ?? '')
        break
      case 'WORKDIR':
        current.workdir = posix.resolve(current.workdir, step.rest)
        mkdirSync(map('.'), { recursive: true })
        break
      case 'COPY': {
        const parts = step.rest.split(/\s+/)
        const from = parts.find((p) => p.startsWith('--from='))?.slice(7)
        const paths = parts.filter((p) => !p.startsWith('--'))
        const dest = paths.pop()!
        for (const src of paths) {
          const source = from ? join(stages.get(from)!.root, src) : join(repo, src)
          if (!existsSync(source)) throw new Error(`${basename(dockerfile)} ${current.name}: COPY ${src}: not found`)
          const target = map(dest)
          if (statSync(source).isDirectory()) cpSync(source, target, { recursive: true, verbatimSymlinks: true })
          else {
            const file = dest.endsWith('/') ? join(target, basename(src)) : target
            mkdirSync(dirname(file), { recursive: true })
            cpSync(source, file)
          }
        }
        break
      }
      case 'RUN': {
        if (current.name === 'runtime' || /^npm install --global/.test(step.rest)) {
          current.skipped.push(step.rest)
          break
        }
        const command = step.rest.replace(/(^|[\s=;&|(])\/([a-z][a-z0-9_-]*)(?=[/\s;&|)]|$)/g, (m, pre: string, first: string) => (roots.has(first) ? `${pre}${join(current.root, first)}` : m))
        const stray = [...command.matchAll(/(?:^|[\s=;&|(])(\/[a-z][^\s;&|)]*)/g)].map((m) => m[1]!).filter((p) => !p.startsWith(current.root) && !p.startsWith('/dev/'))
        if (stray.length > 0) throw new Error(`${basename(dockerfile)} ${current.name}: RUN uses paths outside the stage (${stray.join(', ')}); not re-enacted`)
        const t0 = Date.now()
        execFileSync('/bin/bash', ['-ec', command], { cwd: map('.'), stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...current.env, PATH: `${bin}:${process.env.PATH ?? ''}`, CI: 'true' } })
        console.log(`        ${basename(dockerfile)} ${current.name}: RUN ${step.rest.slice(0, 90)}${step.rest.length > 90 ? '…' : ''} (${((Date.now() - t0) / 1000).toFixed(1)} s)`)
        break
      }
      case 'ENTRYPOINT':
        current.entrypoint = jsonArray(step.rest)
        break
      case 'CMD':
        current.cmd = jsonArray(step.rest)
        break
      default:
        break // USER, EXPOSE, HEALTHCHECK, STOPSIGNAL, LABEL: nothing to re-enact
    }
  }
  return stages
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })
}

/** Compose interpolation: $$ → $, ${VAR:-default}, ${VAR-default}, ${VAR}, $VAR. */
function interpolate(value: unknown): string {
  return str(value).replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (m, k?: string, colon?: string, d?: string, bare?: string) => {
    if (m === '$$') return '$'
    const v = process.env[(k ?? bare)!]
    if (d !== undefined) return colon ? v || d : v ?? d
    return v ?? ''
  })
}

function composeEnv(service: Json): Record<string, string> {
  return Object.fromEntries(Object.entries(asObject(service.environment)).map(([k, v]) => [k, v === null ? '' : interpolate(v)]))
}

type Child = ChildProcessByStdio<null, Readable, Readable> & { exited: Promise<number | string>; logTail: () => string; label: string }

export async function runSmoke(report: Report): Promise<void> {
  if (!existsSync('packages/testkit/dist/index.js')) {
    report.skip('--smoke needs the test kit built: run pnpm install && pnpm build first')
    return
  }
  const pnpmVersion = (JSON.parse(read('package.json')) as { packageManager: string }).packageManager.split('@')[1]!
  const scratch = mkdtempSync(join(tmpdir(), 'detour-smoke-'))
  const children: Child[] = []
  const mountRoots = new Set(['app'])
  const start = (name: string, root: string, stage: Stage, service: Json, overrides: Record<string, string>, argv?: string[]): Child => {
    const entrypoint = service.entrypoint !== undefined ? asArray(service.entrypoint).map(str) : (stage.entrypoint ?? [])
    const command = argv ?? (service.command !== undefined ? asArray(service.command).map(str) : service.entrypoint !== undefined ? [] : (stage.cmd ?? []))
    const mapAbs = (s: string): string => s.replace(/(^|[\s"=])\/([a-z][a-z0-9_-]*)(?=[/\s"]|$)/g, (m, pre: string, first: string) => (mountRoots.has(first) ? `${pre}${join(root, first)}` : m))
    const full = [...entrypoint, ...command].map((a) => mapAbs(interpolate(a)))
    const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOSTNAME: `smoke-${name}` }
    for (const [k, v] of Object.entries({ ...stage.env, ...composeEnv(service), ...overrides })) env[k] = mapAbs(v)
    const child = spawn(full[0]!, full.slice(1), { cwd: join(root, stage.workdir), env, stdio: ['ignore', 'pipe', 'pipe'] }) as Child
    const log: string[] = []
    child.stdout.on('data', (d: Buffer) => log.push(String(d)))
    child.stderr.on('data', (d: Buffer) => log.push(String(d)))
    child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')))
    child.logTail = () => log.join('').split('\n').slice(-15).join('\n')
    child.label = name
    children.push(child)
    return child
  }
  const http = async (url: string, init?: RequestInit): Promise<{ status: number; text: string }> => {
    try {
      const response = await fetch(url, { ...init, signal: AbortSignal.timeout(5000) })
      return { status: response.status, text: await response.text() }
    } catch (error) {
      return { status: 0, text: String(error) }
    }
  }
  const sum = (text: string, name: string): number =>
    text.split('\n').filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`)).reduce((s, l) => s + Number(l.split(' ').pop()), 0)

  let broker: TestBroker | undefined
  try {
    const t0 = Date.now()
    const worker = reenact('deploy/Dockerfile', 'worker', scratch, pnpmVersion)
    const app = reenact('deploy/Dockerfile.example-app', 'example-app', scratch, pnpmVersion)
    report.ok(`re-enacted the build stages of deploy/Dockerfile and deploy/Dockerfile.example-app (${((Date.now() - t0) / 1000).toFixed(0)} s)`)
    for (const [file, stages] of [['deploy/Dockerfile', worker], ['deploy/Dockerfile.example-app', app]] as const) {
      for (const s of stages.values()) for (const r of s.skipped) report.note(`${file} ${s.name}: RUN not re-enacted: ${r.slice(0, 80)}`)
    }
    const workerStage = [...worker.values()].pop()!
    const appStage = [...app.values()].pop()!
    const services = asObject(asObject(parseYaml(read('deploy/docker-compose.yml'))).services) as Record<string, Json>
    const find = (pred: (s: Json, n: string) => boolean): [string, Json] => {
      const found = Object.entries(services).find(([n, s]) => pred(s, n))
      if (!found) throw new Error('docker-compose.yml lacks a service the smoke test needs')
      return found
    }
    const vols = (s: Json): string[] => asArray(s.volumes).map(str)
    const [workerName, workerService] = find((s) => at(s, 'build', 'dockerfile') === 'deploy/Dockerfile')
    const [appName, appService] = find((s) => /main-app\.js/.test(JSON.stringify(s.command ?? '')))
    const [fillerName, fillerService] = find((s, n) => n !== workerName && vols(s).some((v) => vols(workerService).some((w) => w.split(':')[0] === v.split(':')[0])))
    const [workloadName, workloadService] = find((s) => /produce-workload/.test(JSON.stringify(s.entrypoint ?? '')))
    const [initName, initService] = find((s) => JSON.stringify(s.command ?? '').includes('kafka-topics.sh'))

    const [volume, workerTarget] = vols(workerService).find((v) => !v.startsWith('.'))!.split(':') as [string, string]
    const fillerTarget = vols(fillerService).find((v) => v.startsWith(`${volume}:`))!.split(':')[1]!
    mountRoots.add(fillerTarget.split('/')[1]!)
    const volumeDir = join(workerStage.root, workerTarget)
    mkdirSync(volumeDir, { recursive: true })
    const fillerRoot = join(scratch, 'filler')
    mkdirSync(fillerRoot, { recursive: true })
    cpSync(join(appStage.root, 'app'), join(fillerRoot, 'app'), { recursive: true, verbatimSymlinks: true })
    execFileSync('ln', ['-s', volumeDir, join(fillerRoot, fillerTarget.slice(1))])

    const { startBroker } = await import('@detour/testkit')
    broker = await startBroker()
    const script = asArray(initService.command).map(str).join('\n')
    const topics = [...script.matchAll(/create --topic (\S+) --partitions (\d+)([^\n]*)/g)]
    for (const [, topic, partitions, rest] of topics) {
      const config = Object.fromEntries([...rest!.matchAll(/--config ([a-z.]+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]))
      await broker.createTopic(topic!, Number(partitions), { config })
    }
    report.ok(`${broker.description}: ${topics.length} topics from ${initName}'s script, with its settings`)

    const filler = start(fillerName, fillerRoot, appStage, fillerService, {})
    const fillerCode = await filler.exited
    if (fillerCode !== 0) throw new Error(`${fillerName} exited ${fillerCode}: ${filler.logTail()}`)
    report.ok(`${fillerName}: copied ${readdirSync(volumeDir).join(', ')} into the ${volume} volume`)

    const brokers = broker.brokers.join(',')
    const appPort = await freePort()
    const workerPort = await freePort()
    // The embedded broker's quirks: the consumer timing the e2e suites give every child process.
    const t = broker.consumerTiming
    const workerEnv = new Set<string>(WORKER_SETTINGS.map((s) => s.env))
    const timing = Object.fromEntries(
      Object.entries({ DETOUR_MAX_WAIT_TIME_MS: t.maxWaitTimeInMs, DETOUR_SESSION_TIMEOUT_MS: t.sessionTimeout, DETOUR_HEARTBEAT_INTERVAL_MS: t.heartbeatInterval })
        .filter(([k]) => workerEnv.has(k))
        .map(([k, v]) => [k, String(v)]),
    )
    const handOff: Record<string, string> = broker.capabilities.transactions ? {} : { DETOUR_HAND_OFF: 'sequential' }
    const alwaysFail = process.env.SMOKE_ALWAYS_FAIL_KEYS ?? 'k07'
    const appChild = start(appName, appStage.root, appStage, appService, { ...handOff, DETOUR_BROKERS: brokers, DETOUR_METRICS_PORT: String(appPort), DETOUR_METRICS_HOST: '127.0.0.1' })
    const workerChild = start(workerName, workerStage.root, workerStage, workerService, { ...timing, DETOUR_BROKERS: brokers, DETOUR_METRICS_PORT: String(workerPort), DETOUR_METRICS_HOST: '127.0.0.1', DEMO_ALWAYS_FAIL_KEYS: alwaysFail })
    const appUrl = `http://127.0.0.1:${appPort}`
    const workerUrl = `http://127.0.0.1:${workerPort}`
    let ready = false
    for (let i = 0; i < 90 && !ready; i++) {
      ready = (await http(`${appUrl}/readyz`)).status === 200 && (await http(`${workerUrl}/readyz`)).status === 200
      if (!ready) await sleep(1000)
    }
    if (!ready) throw new Error(`not ready after 90 s\n--- ${appName}:\n${appChild.logTail()}\n--- ${workerName}:\n${workerChild.logTail()}`)
    report.ok(`${appName} (its compose command, in the example-app image layout) and ${workerName} (worker image layout, handler from the volume) are ready`)

    const producer = start(workloadName, appStage.root, appStage, workloadService, { KAFKA_BROKERS: brokers }, ['--messages', '1000', '--keys', '20', '--seed', '7'])
    const produced = await producer.exited
    if (produced !== 0) throw new Error(`${workloadName} exited ${produced}: ${producer.logTail()}`)
    report.ok(`${workloadName}: ${producer.logTail().trim().split('\n').pop() ?? ''}`)

    let releases = 0
    let state: Record<string, number> = {}
    const deadline = Date.now() + 120_000
    while (Date.now() < deadline) {
      await sleep(1000)
      const a = (await http(`${appUrl}/metrics`)).text
      const w = (await http(`${workerUrl}/metrics`)).text
      const held = JSON.parse((await http(`${workerUrl}/groups/held`)).text || '[]') as Array<{ id: string }>
      state = {
        processed: sum(a, 'detour_messages_processed_total'),
        redirected: sum(a, 'detour_messages_redirected_total'),
        deadLettered: sum(a, 'detour_messages_dead_lettered_total') + sum(w, 'detour_retry_dead_lettered_total'),
        pending: sum(a, 'detour_pending_ids'),
        succeeded: sum(w, 'detour_retry_retries_succeeded_total'),
        exhausted: sum(w, 'detour_retry_retries_exhausted_total'),
        held: held.length,
        releases,
      }
      for (const group of held) {
        // From loopback: the admin routes need no token here.
        const r = await http(`${workerUrl}/groups/release`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: group.id }) })
        if (r.status !== 200) throw new Error(`POST /groups/release ${group.id}: ${r.status} ${r.text}`)
        releases++
      }
      if ((state.processed ?? 0) > 0 && (state.succeeded ?? 0) > 0 && releases > 0 && state.pending === 0 && state.held === 0) break
    }
    const summary = JSON.stringify(state)
    if (!((state.processed ?? 0) > 0 && (state.redirected ?? 0) > 0)) report.fail(`the main app did not process and redirect: ${summary}`)
    else if (!((state.succeeded ?? 0) > 0)) report.fail(`the worker resolved nothing: ${summary}`)
    else if (!(releases > 0)) report.fail(`no group was held (DEMO_ALWAYS_FAIL_KEYS=${alwaysFail}): ${summary}`)
    else if (state.pending !== 0) report.fail(`ids still pending after 120 s: ${summary}`)
    else report.ok(`processed, redirected, retried, exhausted → held → released over POST /groups/release, 0 pending ids: ${summary}`)

    const cli = start('detour-retry held', workerStage.root, workerStage, { entrypoint: workerStage.entrypoint }, {}, ['held', '--url', workerUrl])
    if ((await cli.exited) === 0) report.ok("detour-retry held --url (the README's operator command) answers")
    else report.fail(`detour-retry held failed: ${cli.logTail()}`)

    for (const child of [appChild, workerChild]) child.kill('SIGTERM')
    for (const [child, service] of [[appChild, appService], [workerChild, workerService]] as const) {
      const grace = Number(/^(\d+)s$/.exec(str(service.stop_grace_period) || '10s')?.[1] ?? 10) * 1000
      const code = await Promise.race([child.exited, sleep(grace).then(() => 'timeout')])
      if (code === 0) report.ok(`${child.label} stopped on SIGTERM with exit code 0 within its stop_grace_period (${str(service.stop_grace_period)})`)
      else report.fail(`${child.label}: SIGTERM → ${code} (stop_grace_period ${str(service.stop_grace_period)})\n${child.logTail()}`)
    }
  } finally {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await broker?.stop()
    rmSync(scratch, { recursive: true, force: true })
  }
}

import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { networkInterfaces, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Admin, Kafka, Producer } from 'kafkajs'
import { startBroker, testKafka, waitFor, type TestBroker } from '@detour/testkit'
import { committedOffset, createScenario, redirect } from '../test-support/harness.js'
import { WORKER_SETTINGS } from '../settings/index.js'

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
/** A non-loopback address of this machine (admin routes from it need the token), if there is one. */
const external = Object.values(networkInterfaces())
  .flat()
  .find((address) => address !== undefined && !address.internal && address.family === 'IPv4')?.address
const repoDir = resolve(packageDir, '../..')
const bin = join(packageDir, 'dist/cli/bin.js')

/** Builds the package when dist is missing or older than a source file (`pnpm test` builds first anyway). */
function ensureBuilt(): void {
  const newest = (dir: string): number =>
    readdirSync(dir, { withFileTypes: true }).reduce((max, entry) => {
      const path = join(dir, entry.name)
      return Math.max(max, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs)
    }, 0)
  if (existsSync(bin) && statSync(bin).mtimeMs >= newest(join(packageDir, 'src'))) return
  const tsc = spawnSync(process.execPath, [join(repoDir, 'node_modules/typescript/bin/tsc'), '-b', join(packageDir, 'tsconfig.build.json')], {
    cwd: repoDir,
    encoding: 'utf8',
  })
  if (tsc.status !== 0) throw new Error(`tsc -b failed:\n${tsc.stdout}${tsc.stderr}`)
}

interface Cli {
  readonly child: ChildProcessWithoutNullStreams
  readonly stdout: () => string
  readonly stderr: () => string
  readonly exited: Promise<number | null>
}

function cli(args: string[], env: Record<string, string> = {}): Cli {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: packageDir,
    env: { PATH: process.env.PATH ?? '', ...env },
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<number | null>((resolveExit) => child.on('close', (code) => resolveExit(code)))
  return { child, stdout: () => stdout, stderr: () => stderr, exited }
}

function logLines(stderr: string): Array<Record<string, unknown>> {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
}

describe('detour-retry CLI', () => {
  beforeAll(() => ensureBuilt(), 120_000)

  it('--help exits 0 and documents the commands and flags', async () => {
    const top = cli(['--help'])
    expect(await top.exited).toBe(0)
    expect(top.stdout()).toMatch(/detour-retry run/)
    expect(top.stdout()).toMatch(/detour-retry held/)
    expect(top.stdout()).toMatch(/detour-retry release/)
    const run = cli(['run', '--help'])
    expect(await run.exited).toBe(0)
    for (const flag of [
      '--brokers',
      '--group-id',
      '--worker-group-id',
      '--topics',
      '--handler',
      '--backoff',
      '--max-attempts',
      '--exhausted-policy',
      '--handler-timeout-ms',
      '--purge-resolved-records',
      '--purge-interval-ms',
      '--check-topic-settings',
      '--metrics-port',
      '--admin-token',
      '--sasl-password',
      '--create-topics',
    ]) {
      expect(run.stdout()).toContain(flag)
    }
    expect(run.stdout()).toMatch(/--consumer-group[\s\S]*\[deprecated: use --group-id/)
    // Every setting of the table, with its environment variable.
    for (const setting of WORKER_SETTINGS) {
      expect(run.stdout()).toContain(`--${setting.flag}`)
      expect(run.stdout().replace(/\s+/g, ' ')).toContain(setting.env)
    }
    for (const variable of ['DETOUR_GROUP_ID', 'DETOUR_WORKER_GROUP_ID', 'DETOUR_ADMIN_TOKEN', 'DETOUR_HANDLER_TIMEOUT_MS', 'DETOUR_CONSUMER_GROUP']) {
      expect(run.stdout()).toContain(variable)
    }
    const held = cli(['held', '--help'])
    expect(await held.exited).toBe(0)
    expect(held.stdout()).toContain('--admin-token')
  })

  it('rejects a bad flag or value with a clear message and a non-zero exit code', async () => {
    const base = ['run', '--brokers', '127.0.0.1:1', '--group-id', 'g', '--topics', 't', '--handler', 'h.mjs']
    const unknown = cli([...base, '--max-attempt', '3'])
    expect(await unknown.exited).toBe(1)
    expect(unknown.stderr()).toMatch(/Unknown arguments?: max-attempt/)
    const choice = cli([...base, '--exhausted-policy', 'drop'])
    expect(await choice.exited).toBe(1)
    expect(choice.stderr()).toMatch(/Invalid values:[\s\S]*exhausted-policy[\s\S]*"hold", "release"/)
    const cross = cli([...base, '--initial-delay-ms', '5000', '--max-delay-ms', '100'])
    expect(await cross.exited).toBe(1)
    expect(cross.stderr()).toMatch(/--initial-delay-ms \(5000\) must not exceed --max-delay-ms \(100\)/)
    const timing = cli([...base, '--session-timeout-ms', '1000', '--heartbeat-interval-ms', '1000'])
    expect(await timing.exited).toBe(1)
    expect(timing.stderr()).toMatch(/--heartbeat-interval-ms \(1000\) must be below --session-timeout-ms \(1000\)/)
    // Flags the worker needs as integers are refused as flags, before anything starts.
    for (const flag of ['--max-retry-duration-ms', '--shutdown-timeout-ms']) {
      const fraction = cli([...base, flag, '1.5'])
      expect(await fraction.exited).toBe(1)
      expect(fraction.stderr()).toContain(`detour-retry: ${flag} must be an integer, got 1.5`)
      expect(fraction.stderr()).not.toContain('Starting the Detour retry worker')
    }
    const missing = cli(['run', '--brokers', '127.0.0.1:1'])
    expect(await missing.exited).toBe(1)
    expect(missing.stderr()).toMatch(/Missing required arguments?: group-id, topics, handler/)
    const same = cli([...base, '--worker-group-id', 'g'])
    expect(await same.exited).toBe(1)
    expect(same.stderr()).toMatch(/--worker-group-id must differ from --group-id/)
  })

  it('keeps --consumer-group as a deprecated alias: --group-id then keeps its old meaning (the worker\'s group)', async () => {
    const run = cli(['run', '--consumer-group', 'orders-app', '--group-id', 'old-worker-group', '--topics', 't', '--handler', 'missing-handler.mjs'], {
      DETOUR_BROKERS: '127.0.0.1:1',
    })
    expect(await run.exited).toBe(1)
    const lines = logLines(run.stderr())
    expect(lines[0]).toMatchObject({ config: { groupId: 'orders-app', workerGroupId: 'old-worker-group' } })
    expect(lines.find((l) => l.level === 'warn')).toMatchObject({
      message: expect.stringMatching(/--consumer-group \(DETOUR_CONSUMER_GROUP\) is deprecated: use --group-id orders-app --worker-group-id old-worker-group/) as unknown,
    })
    // From the environment too.
    const env = cli(['run', '--topics', 't', '--handler', 'missing-handler.mjs'], { DETOUR_BROKERS: '127.0.0.1:1', DETOUR_CONSUMER_GROUP: 'orders-app' })
    expect(await env.exited).toBe(1)
    expect(logLines(env.stderr())[0]).toMatchObject({ config: { groupId: 'orders-app', workerGroupId: 'orders-app-detour-retry' } })
  })

  it('never logs the SASL password and exits 1 when start-up fails', async () => {
    const run = cli(['run', '--group-id', 'g', '--topics', 't', '--handler', 'missing-handler.mjs', '--sasl-mechanism', 'plain', '--sasl-username', 'svc'], {
      DETOUR_BROKERS: '127.0.0.1:1',
      DETOUR_SASL_PASSWORD: 'hunter2-secret',
      DETOUR_ADMIN_TOKEN: 'admin-secret-token',
      DETOUR_BROKER: 'unrelated variable of the test kit',
    })
    expect(await run.exited).toBe(1)
    expect(run.stderr()).not.toContain('hunter2-secret')
    expect(run.stderr()).not.toContain('admin-secret-token')
    const [config] = logLines(run.stderr())
    expect(config).toMatchObject({
      message: 'Starting the Detour retry worker',
      config: { saslPassword: '[redacted]', adminToken: '[redacted]', saslUsername: 'svc', brokers: ['127.0.0.1:1'], groupId: 'g', workerGroupId: 'g-detour-retry' },
    })
    expect(run.stderr()).toMatch(/cannot import the handler module/)
  })

  describe('against the test broker', () => {
    let broker: TestBroker
    let kafka: Kafka
    let producer: Producer
    let admin: Admin
    let workDir: string

    beforeAll(async () => {
      broker = await startBroker()
      kafka = testKafka(broker)
      producer = kafka.producer()
      admin = kafka.admin()
      await Promise.all([producer.connect(), admin.connect()])
      workDir = mkdtempSync(join(tmpdir(), 'detour-cli-'))
    })

    afterAll(async () => {
      await Promise.all([producer?.disconnect(), admin?.disconnect()])
      await broker?.stop()
      rmSync(workDir, { recursive: true, force: true })
    })

    it('runs the worker: processes records, answers /readyz and /metrics, and exits 0 on SIGTERM', async () => {
      const scenario = await createScenario(broker, 2)
      const ids = await redirect(producer, scenario, [
        { partition: 0, offset: 1, key: 'a' },
        { partition: 1, offset: 2, key: 'b', value: 'fail' },
        { partition: 0, offset: 3, key: 'a' },
      ])
      const calls = join(workDir, 'calls.jsonl')
      const run = cli(
        [
          'run',
          '--brokers', broker.brokers.join(','),
          '--group-id', scenario.groupId,
          '--topics', scenario.topics.source,
          '--handler', 'test-fixtures/recording-handler.mjs',
          '--create-topics', 'false',
          '--backoff', 'constant',
          '--initial-delay-ms', '50',
          '--metrics-port', '0',
          '--metrics-host', '127.0.0.1',
          '--exhausted-policy', 'release',
          '--shutdown-timeout-ms', '5000',
        ],
        { RETRY_FIXTURE_CALLS_FILE: calls, DETOUR_MAX_ATTEMPTS: '2', DETOUR_COMMIT_INTERVAL_MS: '100', DETOUR_MAX_WAIT_TIME_MS: '100' },
      )
      try {
        await waitFor(() => logLines(run.stderr()).some((l) => l.message === 'HTTP server listening'), 'the HTTP server', 15_000)
        const url = String(logLines(run.stderr()).find((l) => l.message === 'HTTP server listening')!.url)
        const [config] = logLines(run.stderr())
        expect(config).toMatchObject({ config: { maxAttempts: 2, createTopics: false, commitIntervalMs: 100 } })

        await waitFor(() => existsSync(calls) && readFileSync(calls, 'utf8').trim().split('\n').length === 4, 'four handler calls', 20_000)
        const seen = readFileSync(calls, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { id: string; topic: string; offset: string })
        expect(seen.filter((c) => c.id !== ids[1]).map((c) => c.id)).toEqual([ids[0], ids[2]])
        expect(seen.filter((c) => c.id === ids[1])).toHaveLength(2)
        expect(seen[0]).toMatchObject({ topic: scenario.topics.source, offset: expect.stringMatching(/^[123]$/) as unknown })

        await waitFor(async () => (await fetch(`${url}/readyz`)).status === 200, '/readyz', 15_000)
        expect((await fetch(`${url}/healthz`)).status).toBe(200)
        const groupId = `${scenario.groupId}-detour-retry`
        await waitFor(
          async () =>
            (await committedOffset(admin, groupId, scenario.topics.retry, 0)) === '2' && (await committedOffset(admin, groupId, scenario.topics.retry, 1)) === '1',
          'the commits',
          10_000,
        )
        const metrics = await (await fetch(`${url}/metrics`)).text()
        expect(metrics).toMatch(new RegExp(`^detour_retry_tombstones_written_total\\{topic="${scenario.topics.source}"\\} 3$`, 'm'))
        expect(metrics).toMatch(/^detour_retry_dead_lettered_total\{topic="[^"]+",reason="exhausted"\} 1$/m)
        expect(metrics).toMatch(/^process_cpu_user_seconds_total /m)
        // The topics were created as Detour creates them: the settings check passes without a word.
        expect(logLines(run.stderr()).filter((l) => /topic settings|cleanup\.policy|retention/.test(String(l.message)))).toEqual([])

        const stopping = Date.now()
        run.child.kill('SIGTERM')
        expect(await run.exited).toBe(0)
        expect(Date.now() - stopping).toBeLessThan(5000)
        expect(logLines(run.stderr()).find((l) => l.message === 'Retry worker stopped')).toMatchObject({ clean: true, abandoned: 0 })
      } finally {
        run.child.kill('SIGKILL')
      }
    })

    it('exits 1 with an explanation when a Detour topic is missing and creation is off', async () => {
      const source = `cli-missing-${Date.now()}`
      await broker.createTopic(source, 1)
      const run = cli(['run', '--brokers', broker.brokers.join(','), '--group-id', 'g1', '--topics', source, '--handler', 'test-fixtures/recording-handler.mjs', '--create-topics', 'false', '--metrics-port', '0', '--metrics-host', '127.0.0.1'])
      expect(await run.exited).toBe(1)
      expect(run.stderr()).toMatch(new RegExp(`The retry topic \\\\"${source}-g1-retry\\\\" does not exist`))
    })

    it('held and release call a running worker; admin routes need loopback or the admin token', async () => {
      const scenario = await createScenario(broker)
      const [held] = await redirect(producer, scenario, [{ offset: 4, key: 'k', value: 'fail' }])
      const token = 'cli-admin-token-0123456789'
      const run = cli(
        [
          'run',
          '--brokers', broker.brokers.join(','),
          '--group-id', scenario.groupId,
          '--topics', scenario.topics.source,
          '--handler', 'test-fixtures/recording-handler.mjs',
          '--create-topics', 'false',
          '--backoff', 'constant',
          '--initial-delay-ms', '20',
          '--max-attempts', '1',
          '--metrics-port', '0',
          '--metrics-host', external ?? '127.0.0.1',
        ],
        { RETRY_FIXTURE_CALLS_FILE: join(workDir, 'held.jsonl'), DETOUR_MAX_WAIT_TIME_MS: '100', DETOUR_ADMIN_TOKEN: token },
      )
      try {
        await waitFor(() => logLines(run.stderr()).some((l) => l.message === 'HTTP server listening'), 'the HTTP server', 15_000)
        const url = String(logLines(run.stderr()).find((l) => l.message === 'HTTP server listening')!.url)
        const auth = { authorization: `Bearer ${token}` }
        await waitFor(async () => ((await (await fetch(`${url}/groups/held`, { headers: auth })).json()) as unknown[]).length === 1, 'the held group', 15_000)
        if (external !== undefined) {
          // Not loopback: the token is needed.
          expect((await fetch(`${url}/groups/held`)).status).toBe(401)
          const anonymous = cli(['held', '--url', url])
          expect(await anonymous.exited).toBe(1)
          expect(anonymous.stderr()).toMatch(/401/)
        }
        expect((await fetch(`${url}/metrics`)).status).toBe(200)
        const list = cli(['held', '--url', url], { DETOUR_ADMIN_TOKEN: token })
        expect(await list.exited).toBe(0)
        expect(JSON.parse(list.stdout())).toEqual([expect.objectContaining({ id: held, groupKey: 'k' })])
        const missing = cli(['release', '--url', url, '--id', 'x/0/0', '--admin-token', token])
        expect(await missing.exited).toBe(1)
        expect(missing.stderr()).toMatch(/404/)
        const release = cli(['release', '--id', held!], { DETOUR_URL: url, DETOUR_ADMIN_TOKEN: token })
        expect(await release.exited).toBe(0)
        expect(JSON.parse(release.stdout())).toMatchObject({ released: true })
        expect(await (await fetch(`${url}/groups/held`, { headers: auth })).json()).toEqual([])
        run.child.kill('SIGTERM')
        expect(await run.exited).toBe(0)
      } finally {
        run.child.kill('SIGKILL')
      }
    })
  })
})

import { afterEach, describe, expect, it } from 'vitest'
import { resolveScope } from '../model/scope.js'
import { AdminService } from '../service/admin-service.js'
import { WorkerClient } from '../worker/worker-client.js'
import { scenario, T0, type Scenario } from '../test-support/scenario.js'
import { runCli } from './cli.js'
import type { ServiceSettings } from './service-factory.js'

const BASE = ['--brokers', 'kafka:9092', '--group-id', 'orders-app', '--topics', 'orders']

function cli(s: Scenario, confirm: (question: string) => Promise<boolean | undefined> = async () => undefined) {
  const out = { stdout: '', stderr: '', settings: [] as ServiceSettings[], questions: [] as string[] }
  const run = (args: string[]) =>
    runCli(args, {
      stdout: { write: (text: string) => (out.stdout += text) },
      stderr: { write: (text: string) => (out.stderr += text) },
      confirm: async (question) => {
        out.questions.push(question)
        return confirm(question)
      },
      serviceFactory: (settings) => {
        out.settings.push(settings)
        const unreachable = (async () => Promise.reject(new Error('connect ECONNREFUSED'))) as unknown as typeof fetch
        const worker = settings.workerUrl === undefined ? undefined : new WorkerClient({ url: settings.workerUrl, fetch: unreachable })
        return new AdminService({ scope: resolveScope(settings.scope), log: s.kafka, writer: s.kafka, worker, clientId: settings.connection.clientId, now: () => T0, sleep: async () => {} })
      },
    })
  return { out, run }
}

const saved = { ...process.env }
afterEach(() => {
  for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key]
  Object.assign(process.env, saved)
})

describe('detour CLI', () => {
  it('prints complete help with exit code 0, and rejects bad usage with 2', async () => {
    const s = scenario()
    const { out, run } = cli(s)
    expect(await run(['--help'])).toBe(0)
    expect(out.stdout).toMatch(/Exit codes: 0 done/)
    for (const command of [['inspect'], ['dlt', 'list'], ['dlt', 'show'], ['dlt', 'replay'], ['release'], ['console']]) {
      out.stdout = ''
      expect(await run([...command, '--help'])).toBe(0)
      for (const flag of ['--brokers', '--sasl-mechanism', '--ssl-ca-file', '--group-id', '--worker-group-id', '--topics', '--error-topic-template']) expect(out.stdout, `${command.join(' ')} ${flag}`).toContain(flag)
      // Each flag names the variable it also reads, as `detour-retry run --help` does.
      for (const variable of ['DETOUR_BROKERS', 'DETOUR_SASL_PASSWORD', 'DETOUR_GROUP_ID', 'DETOUR_TOPICS', 'DETOUR_WORKER_URL', 'DETOUR_LOG_LEVEL']) {
        expect(out.stdout, `${command.join(' ')} ${variable}`).toContain(`[env: ${variable}]`)
      }
      expect(out.stdout, command.join(' ')).not.toMatch(/\[env: DETOUR_(HELP|VERSION|COORDINATES)\]/)
      const flags = [...out.stdout.matchAll(/^(?: {6}| {2}-\w, )--([\w-]+) {2}/gm)].map((m) => m[1]!).filter((flag) => flag !== 'help')
      expect(flags.length, command.join(' ')).toBeGreaterThan(15)
      const unwrapped = out.stdout.replace(/\s+/g, ' ')
      for (const flag of flags) expect(unwrapped, `${command.join(' ')} --${flag}`).toContain(`[env: DETOUR_${flag.replace(/-/g, '_').toUpperCase()}]`)
    }
    out.stdout = ''
    await run(['release', '--help'])
    expect(out.stdout).toContain('[env: DETOUR_ADMIN_TOKEN]')
    out.stdout = ''
    await run(['console', '--help'])
    expect(out.stdout).toContain('[env: DETOUR_CONSOLE_TOKEN]')
    // `detour --help` lists the settings every command shares, each with its variable.
    out.stdout = ''
    await run(['--help'])
    expect(out.stdout).toMatch(/Settings shared by inspect, dlt, release and console/)
    for (const [flag, variable] of [['brokers', 'DETOUR_BROKERS'], ['max-wait-time-ms', 'DETOUR_MAX_WAIT_TIME_MS'], ['worker-group-id', 'DETOUR_WORKER_GROUP_ID'], ['admin-token', 'DETOUR_ADMIN_TOKEN']]) {
      expect(out.stdout).toMatch(new RegExp(`^ +--${flag} +${variable}$`, 'm'))
    }
    expect(out.stdout).toMatch(/^ +--consumer-group +DETOUR_CONSUMER_GROUP \(deprecated\)$/m)
    expect(await run(['inspect', ...BASE, '--no-such-flag'])).toBe(2)
    expect(out.stderr).toMatch(/Unknown argument/)
    expect(await run(['inspect', '--brokers', 'k:1'])).toBe(2)
    expect(out.stderr).toMatch(/set --group-id or DETOUR_GROUP_ID/)
    expect(await run(['release', ...BASE, '--id', 'orders/0/1'])).toBe(2)
    expect(out.stderr).toMatch(/--worker-url .* or --direct/)
    expect(await run(['inspect', ...BASE, '--sasl-mechanism', 'plain'])).toBe(2)
    expect(await run(['inspect', ...BASE, '--redirect-topic-template', 'fixed-redirect'])).toBe(2)
    expect(out.stderr).toMatch(/has no \{groupId\}/)
  })

  it('inspect: 0 with a table when something is pending, 3 when nothing is, JSON on request', async () => {
    const s = scenario()
    const { out, run } = cli(s)
    expect(await run(['inspect', ...BASE])).toBe(3)
    s.redirect(0, 5, 'customer-1', { withoutRetry: true, at: T0 - 90_000 })
    expect(await run(['inspect', ...BASE])).toBe(0)
    expect(out.stdout).toMatch(/orders\/0\/5\s+0\s+1m 30s\s+failure\s+no-retry-record/)
    expect(out.stdout).toMatch(/detour release --direct --id <id>/)
    out.stdout = ''
    expect(await run(['inspect', ...BASE, '--json'])).toBe(0)
    expect(JSON.parse(out.stdout)).toMatchObject({ pendingIds: 1, oldest: { id: 'orders/0/5', ageMs: 90_000 } })
    expect(out.settings.at(-1)).toMatchObject({
      connection: { brokers: ['kafka:9092'], clientId: 'detour-admin', ssl: false },
      scope: { consumerGroup: 'orders-app', sourceTopics: ['orders'], workerGroupId: 'orders-app-detour-retry' },
    })
  })

  it('takes the group flags as the worker does: --group-id, --worker-group-id, the deprecated --consumer-group', async () => {
    const s = scenario()
    const { out, run } = cli(s)
    await run(['inspect', '--brokers', 'k:1', '--topics', 'orders', '--group-id', 'orders-app', '--worker-group-id', 'retry-workers'])
    expect(out.settings.at(-1)!.scope).toMatchObject({ consumerGroup: 'orders-app', workerGroupId: 'retry-workers' })
    expect(out.stderr).not.toMatch(/deprecated/)
    await run(['inspect', '--brokers', 'k:1', '--topics', 'orders', '--consumer-group', 'orders-app'])
    expect(out.settings.at(-1)!.scope).toMatchObject({ consumerGroup: 'orders-app', workerGroupId: 'orders-app-detour-retry' })
    expect(out.stderr).toMatch(/--consumer-group \(DETOUR_CONSUMER_GROUP\) is deprecated: use --group-id orders-app\./)
    // The old spelling: --group-id was the worker's own group.
    await run(['inspect', '--brokers', 'k:1', '--topics', 'orders', '--consumer-group', 'orders-app', '--group-id', 'old-worker'])
    expect(out.settings.at(-1)!.scope).toMatchObject({ consumerGroup: 'orders-app', workerGroupId: 'old-worker' })
    expect(await run(['inspect', '--brokers', 'k:1', '--topics', 'orders', '--consumer-group', 'a', '--group-id', 'b', '--worker-group-id', 'c'])).toBe(2)
  })

  it('reads every flag from DETOUR_* variables, and ignores the worker-only ones', async () => {
    const s = scenario()
    Object.assign(process.env, {
      DETOUR_BROKERS: 'a:1,b:2',
      DETOUR_GROUP_ID: 'orders-app',
      DETOUR_TOPICS: 'orders',
      DETOUR_SASL_MECHANISM: 'scram-sha-512',
      DETOUR_SASL_USERNAME: 'ops',
      DETOUR_SASL_PASSWORD: 'hunter2',
      DETOUR_SSL_CA_FILE: '/etc/ca.pem',
      DETOUR_WORKER_URL: 'http://worker:9464',
      DETOUR_ADMIN_TOKEN: 'admin-secret',
      DETOUR_JSON: 'true',
      DETOUR_HANDLER: './handler.js',
      DETOUR_WORKER_GROUP_ID: 'retry-workers',
      DETOUR_MAX_ATTEMPTS: '5',
      DETOUR_PURGE_RESOLVED_RECORDS: 'true',
    })
    const { out, run } = cli(s)
    await run(['inspect', '--no-retry-scan'])
    expect(out.settings[0]).toMatchObject({
      connection: { brokers: ['a:1', 'b:2'], ssl: true, sslCaFile: '/etc/ca.pem', saslMechanism: 'scram-sha-512', saslUsername: 'ops', saslPassword: 'hunter2' },
      scope: { consumerGroup: 'orders-app', sourceTopics: ['orders'], workerGroupId: 'retry-workers' },
      workerUrl: 'http://worker:9464',
      adminToken: 'admin-secret',
    })
    expect(out.stdout).not.toContain('hunter2')
    expect(out.stderr).toMatch(/Cannot reach the worker at http:\/\/worker:9464/)
  })

  it('dlt list / show: 0 when found, 3 when not', async () => {
    const s = scenario()
    const { out, run } = cli(s)
    expect(await run(['dlt', 'list', ...BASE])).toBe(3)
    s.deadLetter(1, 7, 'customer-7', { reason: 'unprocessable' })
    expect(await run(['dlt', 'list', ...BASE, '--reason', 'exhausted'])).toBe(3)
    expect(await run(['dlt', 'list', ...BASE, '--reason', 'unprocessable'])).toBe(0)
    expect(out.stdout).toMatch(/orders-orders-app-dlt\/1\/0 .* unprocessable .*ConnectionError: database down .*customer-7 .*orders\/1\/7/)
    out.stdout = ''
    expect(await run(['dlt', 'show', ...BASE, '1:0'])).toBe(0)
    expect(out.stdout).toMatch(/detour-error-message: database down/)
    expect(out.stdout).toMatch(/value: {2}value-7/)
    expect(await run(['dlt', 'show', ...BASE, '1:9'])).toBe(3)
    expect(await run(['dlt', 'show', ...BASE, 'nonsense'])).toBe(2)
  })

  it('dlt replay: a dry run by default, confirmation before writing, exit codes for each outcome', async () => {
    const s = scenario()
    s.deadLetter(0, 3, 'k')
    let answer: boolean | undefined
    const { out, run } = cli(s, async () => answer)
    expect(await run(['dlt', 'replay', ...BASE])).toBe(2)
    expect(out.stderr).toMatch(/Select dead letters to replay/)
    expect(await run(['dlt', 'replay', ...BASE, '0:0'])).toBe(0)
    expect(out.stdout).toMatch(/Dry run: would replay 1 of 1/)
    expect(s.kafka.records('orders')).toHaveLength(0)
    expect(await run(['dlt', 'replay', ...BASE, '0:0', '--execute'])).toBe(2)
    expect(out.stderr).toMatch(/add --yes/)
    answer = false
    expect(await run(['dlt', 'replay', ...BASE, '--reason', 'exhausted', '--execute'])).toBe(4)
    expect(s.kafka.records('orders')).toHaveLength(0)
    answer = true
    expect(await run(['dlt', 'replay', ...BASE, '--reason', 'exhausted', '--execute'])).toBe(0)
    expect(out.questions.at(-1)).toBe('Replay 1 dead letter to source (their original topics)?')
    expect(s.kafka.records('orders')).toHaveLength(1)
    expect(await run(['dlt', 'replay', ...BASE, '--all', '--execute', '--yes'])).toBe(3)
    expect(await run(['dlt', 'replay', ...BASE, '--all', '--execute', '--yes', '--force', '--json'])).toBe(0)
    expect(JSON.parse(out.stdout.slice(out.stdout.lastIndexOf('\n{') + 1))).toMatchObject({ dryRun: false, replayed: 1 })
    expect(s.kafka.records('orders')).toHaveLength(2)
  })

  it('release --direct: shows what it releases, refuses risky ids, 3 when not pending', async () => {
    const s = scenario()
    s.redirect(2, 1, 'k', { withoutRetry: true, at: T0 - 120_000 })
    s.redirect(2, 2, 'j')
    const { out, run } = cli(s, async () => true)
    expect(await run(['release', ...BASE, '--direct', '--id', 'orders/2/9'])).toBe(3)
    expect(await run(['release', ...BASE, '--direct', '--id', 'orders/2/2'])).toBe(1)
    expect(out.stderr).toMatch(/unresolved retry record.*--force releases it anyway/)
    expect(await run(['release', ...BASE, '--direct', '--id', 'orders/2/1'])).toBe(0)
    expect(out.stdout).toMatch(/Direct release of orders\/2\/1: writes its tombstone to orders-orders-app-redirect\/2/)
    expect(out.stdout).toMatch(/Released orders\/2\/1: tombstone at orders-orders-app-redirect\/2\/2/)
    expect(out.questions).toEqual(['Write the tombstone of orders/2/1 to orders-orders-app-redirect/2?'])
  })
})

import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTombstone, decodeRedirectRecord, decodeRetryRecord, headerString } from '@detour/core'
import { startBroker, type TestBroker } from '@detour/testkit'
import { ledgerTopicFor } from '../replay/replay-ledger.js'
import { brokerScenario, fakeWorker, heldGroup, type BrokerScenario, type FakeWorker } from '../test-support/broker-scenario.js'
import { runCli } from './cli.js'

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const repoDir = resolve(packageDir, '../..')
const bin = join(packageDir, 'dist/cli/bin.js')
const TOKEN = 'worker-admin-token'

/** Builds the package when dist is missing or older than a source file (`pnpm test` builds first anyway). */
function ensureBuilt(): void {
  const newest = (dir: string): number =>
    readdirSync(dir, { withFileTypes: true }).reduce((max, entry) => {
      const path = join(dir, entry.name)
      return Math.max(max, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs)
    }, 0)
  if (existsSync(bin) && statSync(bin).mtimeMs >= newest(join(packageDir, 'src'))) return
  const tsc = spawnSync(process.execPath, [join(repoDir, 'node_modules/typescript/bin/tsc'), '-b', join(packageDir, 'tsconfig.build.json')], { cwd: repoDir, encoding: 'utf8' })
  if (tsc.status !== 0) throw new Error(`tsc -b failed:\n${tsc.stdout}${tsc.stderr}`)
}

async function detour(args: string[], answer?: boolean): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = ''
  let stderr = ''
  const code = await runCli(args, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    confirm: async () => answer,
  })
  return { code, stdout, stderr }
}

describe('detour against the broker: find a stuck key, see why, release it, replay a dead letter', () => {
  let broker: TestBroker
  let s: BrokerScenario
  let worker: FakeWorker

  beforeAll(async () => {
    broker = await startBroker()
    s = await brokerScenario(broker, 2)
    worker = await fakeWorker(s, TOKEN)
  })
  afterAll(async () => {
    await worker?.close()
    await s?.close()
    await broker?.stop()
  })

  it('walks the 3 a.m. path from the command line', async () => {
    const source = s.topics.source
    // The main app: customer-1 failed at offset 10 (the worker exhausted it and holds the group), offset 11
    // waits behind it; customer-2's retry record was lost; customer-3 was released by the worker.
    await s.redirect(0, 10, 'customer-1', { at: new Date(Date.now() - 3_600_000) })
    await s.redirect(0, 11, 'customer-1')
    await s.redirect(1, 5, 'customer-2', { withoutRetry: true, at: new Date(Date.now() - 600_000) })
    await s.redirect(1, 6, 'customer-3')
    await s.tombstone(1, 6, 'customer-3')
    await s.deadLetter(0, 10, 'customer-1', { headers: { trace: Buffer.from([0xca, 0xfe]), tenant: 'acme' } })
    await s.deadLetter(1, 2, 'customer-4', { reason: 'unprocessable', error: new TypeError('order.total is undefined') })
    worker.held = [heldGroup(s, 0, 10, 'customer-1')]
    const withWorker = [...s.flags, '--worker-url', worker.url, '--admin-token', TOKEN]

    // 1. What is stuck, and why.
    const inspected = await detour(['inspect', ...withWorker, '--json'])
    expect(inspected.code, inspected.stderr).toBe(0)
    const report = JSON.parse(inspected.stdout) as { pendingIds: number; oldest: { id: string }; topics: Array<{ partitions: Array<{ groups: Array<{ groupKey: string; ids: Array<{ id: string; state: string; ageMs: number }> }> }> }> }
    expect(report.pendingIds).toBe(3)
    expect(report.oldest.id).toBe(`${source}/0/10`)
    const states = Object.fromEntries(report.topics[0]!.partitions.flatMap((p) => p.groups.flatMap((g) => g.ids.map((id) => [id.id, [g.groupKey, id.state]]))))
    expect(states).toEqual({
      [`${source}/0/10`]: ['customer-1', 'held'],
      [`${source}/0/11`]: ['customer-1', 'waiting'],
      [`${source}/1/5`]: ['customer-2', 'no-retry-record'],
    })
    expect(worker.requests[0]).toMatchObject({ method: 'GET', path: '/groups/held', authorization: `Bearer ${TOKEN}` })
    const table = await detour(['inspect', ...withWorker])
    expect(table.stdout).toMatch(new RegExp(`${source}/0/10\\s+0\\s+1h 0\\dm\\s+failure\\s+held\\s+held after 5 attempts: payment service timed out`))

    // 2. Release the held group through the worker (bearer token, JSON body) and the stuck id directly.
    expect((await detour(['release', ...withWorker, '--id', `${source}/0/10`])).code).toBe(2)
    expect((await detour(['release', ...withWorker, '--id', `${source}/0/10`], false)).code).toBe(4)
    const released = await detour(['release', ...withWorker, '--id', `${source}/0/10`, '--yes'])
    expect(released.code, released.stderr).toBe(0)
    expect(worker.requests.find((r) => r.method === 'POST')).toMatchObject({ path: '/groups/release', authorization: `Bearer ${TOKEN}`, contentType: 'application/json', body: JSON.stringify({ id: `${source}/0/10` }) })
    expect((await detour(['release', ...withWorker, '--id', `${source}/0/10`, '--yes'])).code).toBe(3)
    const refused = await detour(['release', ...s.flags, '--direct', '--id', `${source}/0/11`, '--yes'])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/unresolved retry record/)
    const direct = await detour(['release', ...s.flags, '--direct', '--id', `${source}/1/5`, '--yes'])
    expect(direct.code, direct.stderr).toBe(0)
    expect(direct.stdout).toMatch(/state: {8}no-retry-record/)
    const redirect = await s.collect(s.topics.redirect, 7)
    const tombstone = redirect.find((m) => m.partition === 1 && m.message.value === null && decodeRedirectRecord(m.message).id === `${source}/1/5`)!
    expect(tombstone.message.key).toEqual(buildTombstone({ partition: 1, id: `${source}/1/5`, groupKey: Buffer.from('customer-2'), consumerGroup: s.consumerGroup }).key)
    expect(headerString(tombstone.message.headers, 'detour-consumer-group')).toBe(s.consumerGroup)
    const after = JSON.parse((await detour(['inspect', ...s.flags, '--json'])).stdout) as { pendingIds: number; topics: Array<{ partitions: Array<{ groups: Array<{ ids: Array<{ id: string; state: string }> }> }> }> }
    expect(after.pendingIds).toBe(1)
    expect(after.topics[0]!.partitions[0]!.groups[0]!.ids[0]).toMatchObject({ id: `${source}/0/11`, state: 'retrying' })

    // 3. The dead letters: list, show, replay (dry run, then for real), and not twice.
    const listed = await detour(['dlt', 'list', ...s.flags, '--reason', 'exhausted'])
    expect(listed.code).toBe(0)
    expect(listed.stdout).toMatch(/1 of 2 dead letters/)
    const shown = await detour(['dlt', 'show', ...s.flags, `${s.topics.error}/0/0`])
    expect(shown.stdout).toMatch(/detour-error-name: TimeoutError/)
    expect(shown.stdout).toMatch(/trace: base64:yv4=/)
    const dry = await detour(['dlt', 'replay', ...s.flags, '--reason', 'exhausted'])
    expect(dry.code).toBe(0)
    expect(dry.stdout).toMatch(/its group has 1 pending id in .*: the replay waits behind it/)
    const replayed = await detour(['dlt', 'replay', ...s.flags, '--reason', 'exhausted', '--execute', '--yes'])
    expect(replayed.code, replayed.stderr).toBe(0)
    const [onSource] = await s.collect(source, 1)
    expect(onSource).toMatchObject({ partition: 0 })
    expect(onSource!.message.key).toEqual(Buffer.from('customer-1'))
    expect(onSource!.message.value).toEqual(Buffer.from('{"order":10}'))
    expect(onSource!.message.headers).toEqual({ trace: Buffer.from([0xca, 0xfe]), tenant: Buffer.from('acme'), 'detour-replayed-from': Buffer.from(`${s.topics.error}/0/0`) })
    expect((await detour(['dlt', 'replay', ...s.flags, '--reason', 'exhausted', '--execute', '--yes'])).code).toBe(3)
    const [ledger] = await s.collect(ledgerTopicFor(s.topics.error), 1)
    expect(ledger!.message.key!.toString()).toBe(`${s.topics.error}/0/0`)
    const admin = s.kafka.admin()
    await admin.connect()
    try {
      const config = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: ledgerTopicFor(s.topics.error), configNames: ['cleanup.policy'] }] })
      expect(config.resources[0]!.configEntries[0]!.configValue).toBe('compact')
    } finally {
      await admin.disconnect()
    }

    // 4. Into the retry flow under the original id, behind the group's pending ids.
    const intoRetry = await detour(['dlt', 'replay', ...s.flags, `${s.topics.error}/1/0`, '--to', 'retry', '--execute', '--yes', '--json'])
    expect(intoRetry.code, intoRetry.stderr).toBe(0)
    const retryRecords = await s.collect(s.topics.retry, 4)
    const replayedRetry = retryRecords.find((m) => headerString(m.message.headers, 'detour-id') === `${source}/1/2`)!
    expect(decodeRetryRecord(replayedRetry.message)).toMatchObject({ id: `${source}/1/2`, consumerGroup: s.consumerGroup, groupKey: Buffer.from('customer-4') })
    expect(headerString(replayedRetry.message.headers, 'detour-replayed-from')).toBe(`${s.topics.error}/1/0`)
    const pending = JSON.parse((await detour(['inspect', ...s.flags, '--json'])).stdout) as { pendingIds: number }
    expect(pending.pendingIds).toBe(2)
  })

  it('runs as the detour program with DETOUR_* variables and scriptable exit codes', async () => {
    ensureBuilt()
    const run = (args: string[]) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
        const child = spawn(process.execPath, [bin, ...args], {
          env: {
            PATH: process.env.PATH ?? '',
            DETOUR_BROKERS: broker.brokers.join(','),
            DETOUR_GROUP_ID: s.consumerGroup,
            DETOUR_TOPICS: s.topics.source,
            DETOUR_MAX_WAIT_TIME_MS: '100',
            DETOUR_HANDLER: './handler.js',
          },
        })
        let stdout = ''
        let stderr = ''
        child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
        child.on('close', (code) => done({ code, stdout, stderr }))
      })
    const inspect = await run(['inspect', '--json'])
    expect(inspect.code, inspect.stderr).toBe(0)
    expect((JSON.parse(inspect.stdout) as { consumerGroup: string }).consumerGroup).toBe(s.consumerGroup)
    const missing = await run(['dlt', 'show', `${s.topics.error}/0/999`])
    expect(missing.code).toBe(3)
    expect(missing.stderr).toMatch(/No dead letter at/)
  })
})

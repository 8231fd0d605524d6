import { describe, expect, it } from 'vitest'
import { decodeRedirectRecord, decodeRetryRecord, headerString } from '@detour/core'
import { decodeDeadLetter } from '../dlt/dead-letter.js'
import { RedirectTail } from '../inspect/redirect-tail.js'
import { scenario, T0, type Scenario } from '../test-support/scenario.js'
import { ReplayLedger, ledgerTopicFor, replayTransactionalId } from './replay-ledger.js'
import { planReplay, type ReplayTarget } from './replay-plan.js'
import { Replayer } from './replayer.js'

async function plan(s: Scenario, to: ReplayTarget, options: { force?: boolean } = {}) {
  const tail = new RedirectTail(s.kafka, s.scope)
  await tail.catchUp()
  const ledger = await new ReplayLedger(s.kafka, s.topics.error).load()
  const deadLetters = s.kafka.records(s.topics.error).map(decodeDeadLetter)
  return planReplay({ deadLetters, to, force: options.force, scope: s.scope, ledger, pending: tail.index, now: new Date(T0) })
}

function replayer(s: Scenario, sleeps: number[] = []) {
  return new Replayer({ log: s.kafka, writer: s.kafka, clientId: 'ops-laptop', sleep: async (ms) => void sleeps.push(ms), now: () => new Date(T0 + 5000) })
}

describe('replay to the source topic', () => {
  it('forwards key, value and user headers byte for byte to the original partition, plus detour-replayed-from', async () => {
    const s = scenario()
    const value = Buffer.from([0x00, 0xff, 0x7c])
    s.deadLetter(2, 40, 'customer-1', { value, headers: { trace: Buffer.from([0xfe, 0x01]), tenant: Buffer.from('acme') }, errorPartition: 0 })
    const replay = await plan(s, 'source')
    expect(replay.decisions.map((d) => [d.action, d.note])).toEqual([['replay', undefined]])
    const execution = await replayer(s).execute(replay)
    expect(execution).toMatchObject({ replayed: 1, skipped: 0 })
    expect(execution.outcomes[0]!.written).toEqual([{ topic: 'orders', partition: 2, offset: '0' }])
    const [record] = s.kafka.records('orders', 2)
    expect(record!.key).toEqual(Buffer.from('customer-1'))
    expect(record!.value).toEqual(value)
    expect(record!.headers).toEqual({ trace: Buffer.from([0xfe, 0x01]), tenant: Buffer.from('acme'), 'detour-replayed-from': Buffer.from(`${s.topics.error}/0/0`) })
  })

  it('writes the ledger in the same commit, after claiming the transactional id, and skips what the ledger lists', async () => {
    const s = scenario()
    s.deadLetter(0, 1, 'a')
    s.deadLetter(0, 2, 'b')
    await replayer(s).execute(await plan(s, 'source'))
    expect(s.kafka.calls.filter((c) => /^(createTopic|claim|commit)/.test(c))).toEqual([
      `createTopic ${ledgerTopicFor(s.topics.error)}`,
      `claim ${replayTransactionalId(s.topics.error)}`,
      `commit orders + ${s.topics.error}-replays`,
      `commit orders + ${s.topics.error}-replays`,
    ])
    expect(s.kafka.topics.get(`${s.topics.error}-replays`)?.compact).toBe(true)
    const ledger = await new ReplayLedger(s.kafka, s.topics.error).load()
    expect(ledger.get(`${s.topics.error}/0/1`)).toEqual({
      deadLetter: `${s.topics.error}/0/1`,
      replayedAt: new Date(T0 + 5000).toISOString(),
      to: 'source',
      target: { topic: 'orders', partition: 0 },
      count: 1,
      by: 'ops-laptop',
    })
    const again = await plan(s, 'source')
    expect(again.decisions.map((d) => d.action)).toEqual(['skip', 'skip'])
    expect(again.decisions[0]!.note).toMatch(/^already replayed at .* to source \(orders\/0\); --force replays it again$/)
    const forced = await replayer(s).execute(await plan(s, 'source', { force: true }))
    expect(forced.replayed).toBe(2)
    expect((await new ReplayLedger(s.kafka, s.topics.error).load()).get(`${s.topics.error}/0/1`)?.count).toBe(2)
    expect(s.kafka.records('orders', 0)).toHaveLength(4)
  })

  it('skips a dead letter replayed by someone else between the plan and the claim', async () => {
    const s = scenario()
    s.deadLetter(0, 1, 'a')
    const replay = await plan(s, 'source')
    await replayer(s).execute(replay)
    const late = await replayer(s).execute(replay)
    expect(late.outcomes.map((o) => [o.action, o.note])).toEqual([['skipped', `replayed meanwhile at ${new Date(T0 + 5000).toISOString()} (by ops-laptop)`]])
    expect(s.kafka.records('orders', 0)).toHaveLength(1)
  })

  it('paces replays at --rate and stops with a clear error when fenced or when a write fails', async () => {
    const s = scenario()
    for (let i = 0; i < 3; i++) s.deadLetter(0, i, 'a')
    const sleeps: number[] = []
    await replayer(s, sleeps).execute(await plan(s, 'source'), { rate: 2 })
    expect(sleeps).toHaveLength(2)
    for (const ms of sleeps) expect(ms).toBeGreaterThan(400)

    const t = scenario()
    t.deadLetter(0, 1, 'a')
    t.kafka.failNext = Object.assign(new Error('Producer attempted an operation with an old epoch'), { type: 'INVALID_PRODUCER_EPOCH' })
    await expect(replayer(t).execute(await plan(t, 'source'))).rejects.toMatchObject({ code: 'DETOUR_ADMIN_REPLAY_FENCED' })
    t.kafka.failNext = new Error('broker down')
    await expect(replayer(t).execute(await plan(t, 'source'))).rejects.toMatchObject({ code: 'DETOUR_ADMIN_WRITE_FAILED', message: expect.stringMatching(/broker down/) })
    expect(t.kafka.records('orders')).toHaveLength(0)
    expect(await new ReplayLedger(t.kafka, t.topics.error).load()).toEqual(new Map())
  })

  it('says when the replay waits behind pending ids of its group, and refuses what cannot be replayed', async () => {
    const s = scenario()
    s.redirect(0, 50, 'customer-1')
    s.redirect(0, 51, 'customer-1')
    s.deadLetter(0, 10, 'customer-1')
    s.deadLetter(0, 11, 'customer-1', { reason: 'record-too-large', withoutValue: true })
    s.deadLetter(0, 12, 'customer-1', { reason: 'malformed' })
    s.kafka.append(s.topics.error, { partition: 0, key: null, value: Buffer.from('x'), headers: { 'detour-reason': 'exhausted' } })
    s.deadLetter(0, 13, null, { value: null })
    const decisions = (await plan(s, 'source')).decisions.map((d) => [d.action, d.pendingAhead, d.note])
    expect(decisions).toEqual([
      ['replay', 2, 'its group has 2 pending ids in orders/0: the replay waits behind them'],
      ['skip', 0, 'the dead letter has no value (record-too-large): the original is at orders/0/11'],
      ['skip', 0, 'a malformed retry record: its bytes are not the original message; replay the original from its source topic'],
      ['skip', 0, 'the dead letter does not name its source message (no detour-original-topic/-partition/-offset headers)'],
      // A null value that was the original's (a tombstone message) is replayed as it was.
      ['replay', 0, undefined],
    ])
  })
})

describe('replay into the retry flow', () => {
  it('writes a redirect record and a retry record under the original id, both decodable, with the ledger entry, in one commit', async () => {
    const s = scenario()
    s.redirect(1, 5, 'customer-9')
    s.deadLetter(1, 3, 'customer-9', { headers: { trace: Buffer.from('t-9') } })
    const replay = await plan(s, 'retry')
    expect(replay.decisions[0]).toMatchObject({ action: 'replay', pendingAhead: 1 })
    const execution = await replayer(s).execute(replay)
    expect(s.kafka.calls.filter((c) => c.startsWith('commit'))).toEqual([`commit ${s.topics.redirect} + ${s.topics.retry} + ${s.topics.error}-replays`])
    expect(execution.outcomes[0]!.written).toEqual([
      { topic: s.topics.redirect, partition: 1, offset: '1' },
      { topic: s.topics.retry, partition: 1, offset: '1' },
    ])
    const redirect = s.kafka.records(s.topics.redirect, 1)[1]!
    expect(decodeRedirectRecord(redirect)).toEqual({ kind: 'pending', groupKey: Buffer.from('customer-9'), id: 'orders/1/3', consumerGroup: 'orders-app' })
    expect(headerString(redirect.headers, 'detour-replayed-from')).toBe(`${s.topics.error}/1/0`)
    const retry = s.kafka.records(s.topics.retry, 1)[1]!
    expect(decodeRetryRecord(retry)).toMatchObject({ id: 'orders/1/3', reason: 'failure', groupKey: Buffer.from('customer-9'), firstErrorMessage: 'database down', sourceTimestamp: String(T0 - 60_000) })
    expect(retry.value).toEqual(Buffer.from('value-3'))
    expect(headerString(retry.headers, 'trace')).toBe('t-9')
    expect(headerString(retry.headers, 'detour-replayed-from')).toBe(`${s.topics.error}/1/0`)
    // Now the id is pending again, behind the group's earlier id.
    const tail = new RedirectTail(s.kafka, s.scope)
    await tail.catchUp()
    expect(tail.index.groups()[0]!.ids.map((e) => e.id)).toEqual(['orders/1/5', 'orders/1/3'])
  })

  it('refuses an id that is still pending (held): releasing one would release both', async () => {
    const s = scenario()
    s.redirect(0, 7, 'k')
    s.deadLetter(0, 7, 'k')
    const [decision] = (await plan(s, 'retry')).decisions
    expect(decision).toMatchObject({ action: 'skip' })
    expect(decision!.note).toMatch(/^orders\/0\/7 is still pending \(held\?\).*release it first \(detour release --id orders\/0\/7\) or replay --to source$/)
  })
})

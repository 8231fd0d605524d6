import { describe, expect, it } from 'vitest'
import { RedirectTail } from './redirect-tail.js'
import { Inspector } from './inspector.js'
import { scenario, T0 } from '../test-support/scenario.js'
import type { WorkerClient, HeldGroup } from '../worker/worker-client.js'

function inspector(s: ReturnType<typeof scenario>, worker?: Partial<WorkerClient>) {
  const tail = new RedirectTail(s.kafka, s.scope)
  return { tail, inspector: new Inspector({ log: s.kafka, scope: s.scope, tail, worker: worker as WorkerClient | undefined, now: () => T0 + 3_600_000 }) }
}

const held = (id: string): HeldGroup => ({
  id,
  topic: 'orders',
  partition: 0,
  groupKey: 'customer-1',
  retryTopic: 'orders-orders-app-retry',
  retryPartition: 0,
  retryOffset: '0',
  attempts: 5,
  since: '2024-05-01T12:30:00.000Z',
  lastError: 'database down',
})

describe('Inspector', () => {
  it('shows pending ids per partition and group, the oldest and its age, and the state of each id', async () => {
    const s = scenario()
    s.redirect(0, 10, 'customer-1', { at: T0, error: Object.assign(new Error('database down'), { name: 'ConnectionError' }) })
    s.redirect(0, 11, 'customer-1', { reason: 'ordering', at: T0 + 60_000 })
    s.redirect(0, 12, 'customer-2', { at: T0 + 120_000, withoutRetry: true })
    s.redirect(1, 3, 'customer-3', { at: T0 + 600_000 })
    s.tombstone(1, 3, 'customer-3')
    const { inspector: subject } = inspector(s, { url: 'http://worker', held: async () => [held('orders/0/10'), held('other/0/1')] })
    const report = await subject.inspect()
    expect(report.pendingIds).toBe(3)
    expect(report.groups).toBe(2)
    expect(report.oldest).toEqual({ id: 'orders/0/10', redirectedAt: new Date(T0).toISOString(), ageMs: 3_600_000 })
    const [topic] = report.topics
    expect(topic!.partitions.map((p) => [p.partition, p.pendingIds, p.groups.length, p.redirectEnd])).toEqual([
      [0, 3, 2, '3'],
      [1, 0, 0, '2'],
      [2, 0, 0, '0'],
    ])
    const [first, second] = topic!.partitions[0]!.groups
    expect(first!.groupKey).toBe('customer-1')
    expect(first!.groupKeyBase64).toBe(Buffer.from('customer-1').toString('base64'))
    expect(first!.ids.map((id) => [id.id, id.position, id.state, id.reason])).toEqual([
      ['orders/0/10', 0, 'held', 'failure'],
      ['orders/0/11', 1, 'waiting', 'ordering'],
    ])
    expect(first!.ids[0]!.held?.lastError).toBe('database down')
    expect(first!.ids[0]!.retry).toEqual({ offset: '0', errorName: 'ConnectionError', errorMessage: 'database down' })
    expect(second!.ids.map((id) => [id.id, id.state, id.ageMs])).toEqual([['orders/0/12', 'no-retry-record', 3_480_000]])
    expect(report.worker?.heldNotPending.map((g) => g.id)).toEqual(['other/0/1'])
  })

  it("reads the retry partition from the worker's committed offset: what it resolved is not a retry record any more", async () => {
    const s = scenario()
    s.redirect(2, 1, 'k', { at: T0 })
    s.redirect(2, 2, 'k', { at: T0 })
    // The worker resolved the first one (committed past it) but its tombstone never landed: a stuck id.
    s.kafka.commit('orders-app-detour-retry', s.topics.retry, 2, 1n)
    const { inspector: subject } = inspector(s)
    const report = await subject.inspect()
    const ids = report.topics[0]!.partitions[2]!.groups[0]!.ids
    expect(ids.map((id) => [id.id, id.state])).toEqual([
      ['orders/2/1', 'no-retry-record'],
      ['orders/2/2', 'waiting'],
    ])
    expect(report.topics[0]!.partitions[2]!.workerCommitted).toBe('1')
    expect(s.kafka.calls.filter((call) => call.startsWith('read ') && call.includes('retry'))).toEqual([`read ${s.topics.retry}/0[0,0) ${s.topics.retry}/1[0,0) ${s.topics.retry}/2[1,2)`])
    // The retry topic's bounds are taken after the redirect topic's.
    const bounds = s.kafka.calls.filter((call) => call.startsWith('bounds '))
    expect(bounds.indexOf(`bounds ${s.topics.retry}`)).toBeGreaterThan(bounds.indexOf(`bounds ${s.topics.redirect}`))
  })

  it('without the retry scan, states are unknown and the retry topic is not read', async () => {
    const s = scenario()
    s.redirect(0, 1, 'k')
    const { inspector: subject } = inspector(s)
    const report = await subject.inspect({ retryScan: false })
    expect(report.topics[0]!.partitions[0]!.groups[0]!.ids[0]!.state).toBe('unknown')
    expect(s.kafka.calls.some((call) => call.includes('retry'))).toBe(false)
  })

  it('reads only what is new on the next call, and says when the redirect topic or the worker is missing', async () => {
    const s = scenario()
    s.redirect(0, 1, 'k')
    const { inspector: subject } = inspector(s, { url: 'http://worker', held: async () => Promise.reject(new Error('Cannot reach the worker')) })
    await subject.inspect({ retryScan: false })
    s.tombstone(0, 1, 'k')
    const report = await subject.inspect({ retryScan: false })
    expect(report.pendingIds).toBe(0)
    expect(s.kafka.calls.filter((call) => call.startsWith('read'))[1]).toBe(`read ${s.topics.redirect}/0[1,2) ${s.topics.redirect}/1[0,0) ${s.topics.redirect}/2[0,0)`)
    expect(report.warnings).toEqual(['Cannot reach the worker'])
    expect(report.worker?.error).toBe('Cannot reach the worker')
    s.kafka.topics.delete(s.topics.redirect)
    const missing = await new Inspector({ log: s.kafka, scope: s.scope, tail: new RedirectTail(s.kafka, s.scope) }).inspect()
    expect(missing.topics[0]!.redirectExists).toBe(false)
    expect(missing.warnings[0]).toMatch(/does not exist/)
  })
})

import { describe, expect, it } from 'vitest'
import { buildTombstone } from '@detour/core'
import { Inspector } from '../inspect/inspector.js'
import { RedirectTail } from '../inspect/redirect-tail.js'
import { scenario, T0 } from '../test-support/scenario.js'
import type { WorkerClient } from '../worker/worker-client.js'
import { DirectRelease } from './direct-release.js'

function subject(s: ReturnType<typeof scenario>, heldIds: string[] = []) {
  const worker = { url: 'http://worker', held: async () => heldIds.map((id) => ({ id, topic: 'orders', partition: 0, groupKey: 'k', retryTopic: '', retryPartition: 0, retryOffset: '0', attempts: 3, since: '', lastError: 'e' })) }
  const inspector = new Inspector({ log: s.kafka, scope: s.scope, tail: new RedirectTail(s.kafka, s.scope), worker: worker as unknown as WorkerClient, now: () => T0 })
  return new DirectRelease(s.scope, inspector, s.kafka)
}

describe('DirectRelease', () => {
  it('previews a stuck id, writes exactly core buildTombstone with the consumer group, and verifies it is gone', async () => {
    const s = scenario()
    s.redirect(1, 8, 'customer-1', { withoutRetry: true, at: T0 - 120_000 })
    s.redirect(1, 9, 'customer-1', { reason: 'ordering' })
    const release = subject(s)
    const preview = await release.preview('orders/1/8')
    expect(preview).toMatchObject({ id: 'orders/1/8', sourceTopic: 'orders', partition: 1, groupKey: 'customer-1', redirectTopic: s.topics.redirect, risk: undefined, groupIds: ['orders/1/8', 'orders/1/9'] })
    expect(preview.pending.state).toBe('no-retry-record')
    const result = await release.release(preview)
    expect(result).toEqual({ id: 'orders/1/8', tombstone: { topic: s.topics.redirect, partition: 1, offset: '2' }, verified: true })
    const written = s.kafka.records(s.topics.redirect, 1)[2]!
    const expected = buildTombstone({ partition: 1, id: 'orders/1/8', groupKey: Buffer.from('customer-1'), consumerGroup: 'orders-app' })
    expect(written.key).toEqual(expected.key)
    expect(written.value).toBeNull()
    expect(Object.keys(written.headers).sort()).toEqual(Object.keys(expected.headers!).sort())
  })

  it('refuses a held id (release it through the worker) and an id with an unresolved retry record unless forced', async () => {
    const s = scenario()
    s.redirect(0, 1, 'a')
    s.redirect(0, 2, 'b')
    const release = subject(s, ['orders/0/1'])
    const held = await release.preview('orders/0/1')
    await expect(release.release(held, { force: true })).rejects.toThrow(/The worker holds orders\/0\/1: release it through the worker/)
    const retrying = await release.preview('orders/0/2')
    expect(retrying.risk).toMatch(/unresolved retry record .*the worker will still process it/)
    await expect(release.release(retrying)).rejects.toMatchObject({ code: 'DETOUR_ADMIN_REFUSED' })
    expect(s.kafka.records(s.topics.redirect, 0)).toHaveLength(2)
    expect((await release.release(retrying, { force: true })).verified).toBe(true)
  })

  it('refuses, unless forced, an id too young to tell: its retry record may still be on its way', async () => {
    const s = scenario()
    s.redirect(0, 1, 'a', { withoutRetry: true, at: T0 - 20_000 })
    const release = subject(s)
    const preview = await release.preview('orders/0/1')
    expect(preview.pending.state).toBe('no-retry-record')
    expect(preview.risk).toMatch(/^orders\/0\/1 was redirected 20 s ago: .*look again in a minute$/)
    await expect(release.release(preview)).rejects.toMatchObject({ code: 'DETOUR_ADMIN_REFUSED' })
  })

  it('says when the id is not pending', async () => {
    const s = scenario()
    await expect(subject(s).preview('orders/0/99')).rejects.toMatchObject({ code: 'DETOUR_ADMIN_NOT_FOUND' })
  })
})

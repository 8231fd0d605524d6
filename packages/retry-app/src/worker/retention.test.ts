import { describe, expect, it } from 'vitest'
import { noopLogger } from '@detour/core'
import { RetryRetention } from './retention.js'

function setup(options: { purge?: boolean; intervalMs?: number; fail?: () => Error | undefined; logStart?: Map<number, bigint> } = {}) {
  let now = 1000
  const deleted: Array<[string, number, string]> = []
  const counts = { purged: 0, failed: 0, unread: 0n }
  const errors: Error[] = []
  const warnings: string[] = []
  const retention = new RetryRetention({
    admin: {
      deleteRecords: async (topic, partition, offset) => {
        const error = options.fail?.()
        if (error) throw error
        deleted.push([topic, partition, offset])
      },
      logStartOffsets: async () => options.logStart ?? new Map(),
    },
    purge: options.purge ?? true,
    intervalMs: options.intervalMs ?? 60_000,
    logger: { ...noopLogger, warn: (message) => void warnings.push(message), error: () => {} },
    metrics: {
      purged: () => counts.purged++,
      purgeFailed: () => counts.failed++,
      deletedUnread: (_topic, records) => (counts.unread += records),
    },
    onDeletedUnread: (error) => errors.push(error),
    now: () => now,
  })
  return { retention, deleted, counts, errors, warnings, advance: (ms: number) => (now += ms) }
}

describe('RetryRetention', () => {
  it('deletes up to the committed offset, at most every interval per partition', async () => {
    const { retention, deleted, advance } = setup({ intervalMs: 1000 })
    await retention.purge('r', 'orders', 0, '5')
    await retention.purge('r', 'orders', 0, '8')
    await retention.purge('r', 'orders', 1, '2')
    advance(1000)
    await retention.purge('r', 'orders', 0, '8')
    await retention.purge('r', 'orders', 0, '8')
    expect(deleted).toEqual([
      ['r', 0, '5'],
      ['r', 1, '2'],
      ['r', 0, '8'],
    ])
  })

  it('warns once and stops purging when it may not delete records', async () => {
    const denied = Object.assign(new Error('denied'), { type: 'TOPIC_AUTHORIZATION_FAILED' })
    const { retention, deleted, counts, warnings, advance } = setup({ intervalMs: 0, fail: () => denied })
    await retention.purge('r', 'orders', 0, '5')
    advance(10)
    await retention.purge('r', 'orders', 0, '9')
    expect(deleted).toEqual([])
    expect(counts.failed).toBe(1)
    expect(retention.purging).toBe(false)
    expect(warnings.filter((w) => w.includes('purging stops'))).toHaveLength(1)
  })

  it('retries after a transient failure at the next interval', async () => {
    let failures = 1
    const { retention, deleted, advance } = setup({ intervalMs: 100, fail: () => (failures-- > 0 ? new Error('timeout') : undefined) })
    await retention.purge('r', 'orders', 0, '5')
    await retention.purge('r', 'orders', 0, '5')
    advance(100)
    await retention.purge('r', 'orders', 0, '5')
    expect(deleted).toEqual([['r', 0, '5']])
    expect(retention.purging).toBe(true)
  })

  it('does nothing when purging is off', async () => {
    const { retention, deleted } = setup({ purge: false })
    await retention.purge('r', 'orders', 0, '5')
    expect(deleted).toEqual([])
  })

  it('reports records deleted before they were read: committed offset below the log start offset', async () => {
    const { retention, counts, errors } = setup({ logStart: new Map([[0, 10n], [1, 3n], [2, 0n]]) })
    await retention.checkAssigned('r', 'orders', new Map<number, string | undefined>([[0, '4'], [1, '3'], [2, undefined]]))
    expect(counts.unread).toBe(6n)
    expect(errors).toHaveLength(1)
    expect(errors[0]!.message).toMatch(/r\/0 was committed at 4 but starts at 10 \(6 records lost\)/)
  })
})

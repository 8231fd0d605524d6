import { describe, expect, it } from 'vitest'
import { noopLogger } from '@detour/core'
import { WorkAbortedError } from './abort.js'
import { formatOwnerMetadata } from './owner-metadata.js'
import { Takeover } from './takeover.js'
import type { CommittedOffset } from './worker-admin.js'

/** The committed offsets of a worker group, changed by the test while a takeover polls. */
class CommittedOffsets {
  value: CommittedOffset | undefined
  reads = 0
  failures = 0
  async committedOffsets(): Promise<Map<number, CommittedOffset>> {
    this.reads++
    if (this.failures > 0) {
      this.failures--
      throw new Error('coordinator not available')
    }
    return new Map(this.value ? [[0, this.value]] : [])
  }
}

function takeover(admin: CommittedOffsets, handlerTimeoutMs = 200): Takeover {
  return new Takeover({ admin, instanceId: 'me', handlerTimeoutMs, graceMs: 50, pollIntervalMs: 10, logger: noopLogger })
}

const signal = new AbortController().signal

describe('Takeover', () => {
  it('starts at once when never committed, committed by this instance, or released', async () => {
    const admin = new CommittedOffsets()
    expect(await takeover(admin).whenFree('t', 0, signal)).toEqual({ waited: false, committed: undefined })
    admin.value = { offset: '-1', metadata: null }
    expect(await takeover(admin).whenFree('t', 0, signal)).toMatchObject({ waited: false })
    admin.value = { offset: '4', metadata: null }
    expect(await takeover(admin).whenFree('t', 0, signal)).toMatchObject({ waited: false })
    admin.value = { offset: '4', metadata: formatOwnerMetadata('me', 'active') }
    expect(await takeover(admin).whenFree('t', 0, signal)).toMatchObject({ waited: false })
    admin.value = { offset: '4', metadata: formatOwnerMetadata('other', 'released') }
    expect(await takeover(admin).whenFree('t', 0, signal)).toMatchObject({ waited: false, committed: { offset: '4' } })
  })

  it('waits while the previous owner is active, until it commits released', async () => {
    const admin = new CommittedOffsets()
    admin.value = { offset: '4', metadata: formatOwnerMetadata('other', 'active') }
    const waiting = takeover(admin, 5000).whenFree('t', 0, signal)
    // It keeps reading the committed metadata (however slow this machine is today).
    for (const deadline = Date.now() + 4000; admin.reads <= 2 && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 5))
    expect(admin.reads).toBeGreaterThan(2)
    admin.value = { offset: '6', metadata: formatOwnerMetadata('other', 'released') }
    const result = await waiting
    expect(result).toMatchObject({ waited: true, outcome: 'released', previousOwner: 'other', committed: { offset: '6' } })
    expect(result.waited && result.waitedMs).toBeGreaterThan(0)
  })

  it('starts after handlerTimeoutMs + grace when the previous owner never releases', async () => {
    const admin = new CommittedOffsets()
    admin.value = { offset: '4', metadata: formatOwnerMetadata('gone', 'active') }
    const started = Date.now()
    const result = await takeover(admin, 100).whenFree('t', 0, signal)
    expect(result).toMatchObject({ waited: true, outcome: 'timeout', previousOwner: 'gone' })
    expect(Date.now() - started).toBeGreaterThanOrEqual(140)
  })

  it('keeps reading through errors, and ends when revoked', async () => {
    const admin = new CommittedOffsets()
    admin.failures = 2
    expect(await takeover(admin).whenFree('t', 0, signal)).toMatchObject({ waited: false })
    expect(admin.reads).toBe(3)
    admin.value = { offset: '4', metadata: formatOwnerMetadata('other', 'active') }
    const revoked = new AbortController()
    const waiting = takeover(admin, 5000).whenFree('t', 0, revoked.signal)
    revoked.abort()
    await expect(waiting).rejects.toThrow()
  })

  it('ends with a WorkAbortedError, not the read error, when revoked during a failing read', async () => {
    const revoked = new AbortController()
    const admin = {
      committedOffsets: async (): Promise<Map<number, CommittedOffset>> => {
        revoked.abort()
        throw new Error('KafkaJSNumberOfRetriesExceeded: coordinator not available')
      },
    }
    const error: unknown = await new Takeover({ admin, instanceId: 'me', handlerTimeoutMs: 200, logger: noopLogger }).whenFree('t', 0, revoked.signal).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(WorkAbortedError)
  })

  it("F3: a late release by an older owner does not free a partition another owner claimed; that owner's release does", async () => {
    const admin = new CommittedOffsets()
    // B claimed the partition (after A's revocation timed out) and went on to offset 9.
    admin.value = { offset: '9', metadata: formatOwnerMetadata('B', 'active') }
    const waiting = takeover(admin, 300).whenFree('t', 0, signal)
    await new Promise((resolve) => setTimeout(resolve, 30))
    // A's release lands now (retried by kafkajs, delayed by a coordinator move): it overwrites B's claim.
    admin.value = { offset: '5', metadata: formatOwnerMetadata('A', 'released') }
    let done = false
    void waiting.then(() => (done = true))
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(done).toBe(false)
    // B's handlers settled: its own release frees the partition.
    admin.value = { offset: '9', metadata: formatOwnerMetadata('B', 'released') }
    expect(await waiting).toMatchObject({ waited: true, outcome: 'released', previousOwner: 'B', committed: { offset: '9' } })
  })

  it('F3: a late release by an older owner that B never follows with its own ends in the timeout, not at once', async () => {
    const admin = new CommittedOffsets()
    admin.value = { offset: '9', metadata: formatOwnerMetadata('B', 'active') }
    const waiting = takeover(admin, 100).whenFree('t', 0, signal)
    await new Promise((resolve) => setTimeout(resolve, 20))
    admin.value = { offset: '5', metadata: formatOwnerMetadata('A', 'released') }
    expect(await waiting).toMatchObject({ waited: true, outcome: 'timeout', previousOwner: 'B' })
  })
})

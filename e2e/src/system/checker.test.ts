import type { KafkaMessage } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { checkRun, invariantFailures } from './checker.js'
import { Observations } from './observations.js'
import { generateWorkload, type Workload } from './workload.js'

const topics = { source: 'src', output: 'out', error: 'dlt', redirect: 'redirect', retry: 'retry' }

/** A workload of one key `k0` with `n` messages (and one poison if asked). */
function oneKey(n: number, poison: string[] = []): Workload {
  return generateWorkload({ messages: n, keys: 1, seed: 1, run: 'r', poisonRefs: poison })
}

class Feed {
  readonly obs: Observations
  private readonly offsets = new Map<string, number>()
  private clock = 1_000

  constructor(run = 'r') {
    this.obs = new Observations(topics, run)
  }

  private next(topic: string): string {
    const offset = this.offsets.get(topic) ?? 0
    this.offsets.set(topic, offset + 1)
    return String(offset)
  }

  private message(topic: string, fields: Partial<KafkaMessage>): KafkaMessage {
    return { key: null, value: null, timestamp: String(this.clock++), attributes: 0, offset: this.next(topic), headers: {}, ...fields } as KafkaMessage
  }

  output(seq: number, by = 'main-0', run = 'r', key = 'k0'): this {
    this.obs.apply('out', 0, [this.message('out', { value: Buffer.from(JSON.stringify({ run, key, seq, by })) })])
    return this
  }

  deadLetter(seq: number, reason: string, key = 'k0'): this {
    this.obs.apply('dlt', 0, [
      this.message('dlt', { value: Buffer.from(JSON.stringify({ run: 'r', key, seq })), headers: { 'detour-reason': reason } }),
    ])
    return this
  }

  /** A source record of this run (`src/0/<offset>`), as the producer wrote it. */
  source(seq: number, key = 'k0'): this {
    this.obs.apply('src', 0, [this.message('src', { key: Buffer.from(key), value: Buffer.from(JSON.stringify({ run: 'r', key, seq })), headers: { 'x-demo-ref': `${key}:${seq}` } })])
    return this
  }

  /** A dead letter without value or user headers (what `record-too-large` writes). */
  valuelessDeadLetter(id: string, reason: string): this {
    this.obs.apply('dlt', 0, [this.message('dlt', { value: null, headers: { 'detour-reason': reason, 'detour-id': id } })])
    return this
  }

  redirect(id: string, tombstone = false): this {
    this.obs.apply('redirect', 0, [this.message('redirect', { value: tombstone ? null : Buffer.from(id), headers: { 'detour-id': id, 'detour-group-key': 'k0' } })])
    return this
  }

  retry(id: string, reason: string): this {
    this.obs.apply('retry', 0, [this.message('retry', { key: Buffer.from('k0'), value: Buffer.from('{}'), headers: { 'detour-id': id, 'detour-reason': reason } })])
    return this
  }
}

describe('checkRun', () => {
  it('accepts an in-order run and counts duplicates of at-least-once delivery', () => {
    const feed = new Feed().output(1).output(2).output(1).output(2, 'worker').output(3)
    const report = checkRun(oneKey(3), feed.obs)
    expect(report).toMatchObject({ processed: 3, expected: 3, duplicates: 2, orderViolations: 0, lost: 0, pendingIds: 0 })
    expect(report.processedBy).toEqual({ 'main-0': 3 })
    expect(invariantFailures(report)).toEqual([])
  })

  it('flags a message first processed after a later message of its key', () => {
    const report = checkRun(oneKey(4), new Feed().output(2).output(3).output(4).output(1).obs)
    expect(report.orderViolations).toBe(1)
    expect(report.orderViolationSamples[0]).toMatch(/^k0:1 \(processed by main-0.*resolved after k0:2/)
    expect(invariantFailures(report)[0]).toMatch(/1 per-key order violation/)
  })

  it('flags a message processed before an earlier message of its key was dead-lettered', () => {
    const report = checkRun(oneKey(3, ['k0:2']), new Feed().output(1).output(3).deadLetter(2, 'unprocessable').obs)
    expect(report.orderViolations).toBe(1)
    expect(report.orderViolationSamples[0]).toMatch(/k0:2 \(dead-lettered.*resolved after k0:3/)
  })

  it('accepts a dead letter before the later messages, and a late duplicate of a dead-lettered message', () => {
    const feed = new Feed().output(1).deadLetter(2, 'exhausted').output(3).output(2, 'worker')
    const report = checkRun(oneKey(3), feed.obs)
    expect(report).toMatchObject({ orderViolations: 0, lost: 0, duplicates: 0, processed: 3, exhausted: ['k0:2'] })
    expect(invariantFailures(report)).toEqual([])
  })

  it('counts lost messages and poison that was processed or never dead-lettered', () => {
    const workload = oneKey(4, ['k0:3', 'k0:4'])
    const report = checkRun(workload, new Feed().output(1).output(4).obs)
    expect(report.lost).toBe(1)
    expect(report.lostSamples).toEqual(['k0:2'])
    expect(report.poison).toEqual({ expected: 2, deadLettered: 0, processed: 1, missing: ['k0:3', 'k0:4'] })
    const failures = invariantFailures(report)
    expect(failures.some((f) => f.includes('1 message(s) lost'))).toBe(true)
    expect(failures.some((f) => f.includes('poison message(s) not dead-lettered'))).toBe(true)
    expect(failures.some((f) => f.includes('poison message(s) were processed'))).toBe(true)
  })

  it('flags dead letters for the wrong reason', () => {
    const report = checkRun(oneKey(2, ['k0:2']), new Feed().deadLetter(1, 'unprocessable').deadLetter(2, 'exhausted').obs)
    expect(report.unexpectedDeadLetters).toBe(2)
    expect(report.deadLettered).toEqual({ unprocessable: 1, exhausted: 1 })
  })

  it('counts ids whose last redirect record is not a tombstone as pending', () => {
    const feed = new Feed()
      .redirect('t/0/1')
      .redirect('t/0/2')
      .redirect('t/0/1', true)
      .redirect('t/0/3')
      .redirect('t/0/3', true)
      .redirect('t/0/3') // a resumed hand-off after its tombstone: pending again
      .redirect('t/0/9', true) // unknown tombstone
      .retry('t/0/1', 'failure')
      .retry('t/0/2', 'ordering')
      .retry('t/0/1', 'failure')
    const report = checkRun(oneKey(1), feed.output(1).obs)
    expect(report.pendingIds).toBe(2)
    expect(report.pendingSamples.map((s) => s.split(' ')[0])).toEqual(['t/0/2', 't/0/3'])
    expect(report.unknownTombstones).toBe(1)
    expect(report.redirected).toEqual({ failure: 1, ordering: 1 })
    expect(report.retryRecords).toBe(3)
  })

  it('ignores records of other runs and applies each offset once', () => {
    const feed = new Feed().output(1, 'main-0', 'other-run').output(1)
    const batch = [{ key: null, value: Buffer.from(JSON.stringify({ run: 'r', key: 'k0', seq: 2, by: 'worker' })), timestamp: '5', attributes: 0, offset: '7', headers: {} }] as unknown as KafkaMessage[]
    feed.obs.apply('out', 0, batch)
    feed.obs.apply('out', 0, batch) // re-read after a rejoin
    const report = checkRun(oneKey(2), feed.obs)
    expect(report).toMatchObject({ processed: 2, duplicates: 0, unknownOutputs: 0 })
  })

  it('attributes a dead letter without value by its id, and flags one that names no message', () => {
    // k0:1 → src/0/0, k0:2 → src/0/1, k0:3 → src/0/2 (the dead letter is seen before its source record).
    const feed = new Feed().source(1).valuelessDeadLetter('src/0/1', 'record-too-large').source(2).source(3).output(1).output(3)
    expect(feed.obs.isDeadLettered('k0:2')).toBe(true)
    const report = checkRun(oneKey(3), feed.obs)
    expect(report.lost).toBe(0)
    expect(report.deadLettered).toEqual({ 'record-too-large': 1 })
    expect(report.unexpectedDeadLetters).toBe(1)
    expect(report.unexpectedDeadLetterSamples[0]).toMatch(/^k0:2 \(plain\) dead-lettered as record-too-large/)

    const unknown = new Feed().source(1).output(1).valuelessDeadLetter('src/0/7', 'record-too-large').valuelessDeadLetter('other-topic/0/1', 'malformed')
    const second = checkRun(oneKey(1), unknown.obs)
    expect(second.unexpectedDeadLetters).toBe(1)
    expect(second.unexpectedDeadLetterSamples[0]).toMatch(/src\/0\/7\) has no readable value/)
  })
})

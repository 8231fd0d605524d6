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

/** A workload with the given number of messages per key (`{ a: 3, b: 2 }`: a:1..3, b:1..2), produced key by key. */
function keys(counts: Record<string, number>): Workload {
  const messages = Object.entries(counts).flatMap(([key, n]) => Array.from({ length: n }, (_, i) => ({ run: 'r', key, seq: i + 1, ref: `${key}:${i + 1}` })))
  return { run: 'r', seed: 1, keys: Object.keys(counts), messages, byRef: new Map(messages.map((m) => [m.ref, m])), transient: 0, poison: 0 }
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

  /** An output record; `id` is the source id it names (`src/0/<offset>`), none when not given. */
  output(seq: number, by = 'main-0', run = 'r', key = 'k0', id?: string): this {
    this.obs.apply('out', 0, [this.message('out', { value: Buffer.from(JSON.stringify({ run, key, seq, by, id })) })])
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
    expect(report).toMatchObject({ processed: 3, expected: 3, duplicates: 2, firstProcessingViolations: 0, staleReplays: 0, lost: 0, pendingIds: 0 })
    expect(report.processedBy).toEqual({ 'main-0': 3 })
    expect(invariantFailures(report)).toEqual([])
  })

  it('flags a message first processed after a later message of its key', () => {
    const report = checkRun(oneKey(4), new Feed().output(2).output(3).output(4).output(1).obs)
    expect(report.firstProcessingViolations).toBe(1)
    expect(report.firstProcessingViolationSamples[0]).toMatch(/^k0:1 \(processed by main-0.*resolved after k0:2/)
    // A first processing is judged once, as such, not also as a stale replay.
    expect(report.staleReplays).toBe(0)
    expect(invariantFailures(report)).toEqual([expect.stringMatching(/^1 per-key order violation\(s\) at first processing/)])
  })

  it('flags a message processed before an earlier message of its key was dead-lettered', () => {
    const report = checkRun(oneKey(3, ['k0:2']), new Feed().output(1).output(3).deadLetter(2, 'unprocessable').obs)
    expect(report.firstProcessingViolations).toBe(1)
    expect(report.firstProcessingViolationSamples[0]).toMatch(/k0:2 \(dead-lettered.*resolved after k0:3/)
  })

  it('accepts a dead letter before the later messages', () => {
    const feed = new Feed().output(1).deadLetter(2, 'exhausted').output(3)
    const report = checkRun(oneKey(3), feed.obs)
    expect(report).toMatchObject({ firstProcessingViolations: 0, staleReplays: 0, lost: 0, duplicates: 0, processed: 2, exhausted: ['k0:2'] })
    expect(invariantFailures(report)).toEqual([])
  })

  it('flags a dead-lettered message processed after a later message of its key as a stale replay', () => {
    // k0:2 was resolved (dead-lettered) in order, but its processing after k0:3 leaves k0:2's state behind.
    const feed = new Feed().output(1).deadLetter(2, 'exhausted').output(3).output(2, 'worker')
    const report = checkRun(oneKey(3), feed.obs)
    expect(report).toMatchObject({ firstProcessingViolations: 0, staleReplays: 1, processed: 3 })
    expect(report.staleReplaySamples[0]).toMatch(/^k0:2 \(by worker, output p0@2\) replayed after k0:3 \(by main-0, output p0@1\); not processed again after it: k0:3$/)
    expect(invariantFailures(report)).toEqual([expect.stringMatching(/^1 stale replay\(s\)/)])
  })

  describe('stale replays (output-topic order per key)', () => {
    /** Outputs `[key, seq]` in this order, all by main-0 unless `by` is given as a third element. */
    const run = (counts: Record<string, number>, outputs: ReadonlyArray<readonly [string, number, string?]>): ReturnType<typeof checkRun> => {
      const feed = new Feed()
      for (const [key, seq, by] of outputs) feed.output(seq, by ?? 'main-0', 'r', key)
      return checkRun(keys(counts), feed.obs)
    }

    it('flags a message processed again after a later one when the later one is not processed again', () => {
      const report = run({ a: 3 }, [['a', 1], ['a', 2], ['a', 3], ['a', 2, 'worker']])
      expect(report).toMatchObject({ staleReplays: 1, firstProcessingViolations: 0, duplicates: 1 })
      expect(report.staleReplaySamples).toEqual(['a:2 (by worker, output p0@3) replayed after a:3 (by main-0, output p0@2); not processed again after it: a:3'])
      // The evidence: every output of the key, in output-topic order, with who wrote it and when.
      expect(Object.keys(report.evidence)).toEqual(['a'])
      expect(report.evidence.a).toEqual([
        expect.stringMatching(/^output p0@0: a:1 by main-0, source id \?, written 1970-/),
        expect.stringMatching(/^output p0@1: a:2 by main-0,/),
        expect.stringMatching(/^output p0@2: a:3 by main-0,/),
        expect.stringMatching(/^output p0@3: a:2 by worker,/),
      ])
    })

    it('gives no evidence when the order held', () => {
      expect(run({ a: 2 }, [['a', 1], ['a', 2], ['a', 2]]).evidence).toEqual({})
    })

    it('counts a replay that goes forward in order as duplicates only', () => {
      const report = run({ a: 4 }, [['a', 1], ['a', 2], ['a', 3], ['a', 2], ['a', 3], ['a', 4], ['a', 4]])
      expect(report).toMatchObject({ staleReplays: 0, firstProcessingViolations: 0, duplicates: 3 })
      expect(invariantFailures(report)).toEqual([])
    })

    it('accepts the replay of a whole suffix, even several times and from the start', () => {
      const report = run({ a: 4 }, [['a', 1], ['a', 2], ['a', 3], ['a', 4], ['a', 2], ['a', 3], ['a', 4], ['a', 1], ['a', 2], ['a', 3], ['a', 4]])
      expect(report).toMatchObject({ staleReplays: 0, firstProcessingViolations: 0, duplicates: 7 })
    })

    it('flags a replayed suffix whose messages come back out of order, at the message that ends it stale', () => {
      // 2, 4 and 3 all come back, but 3 after 4: the state ends at 3 although 4 was applied.
      const report = run({ a: 4 }, [['a', 1], ['a', 2], ['a', 3], ['a', 4], ['a', 2], ['a', 4], ['a', 3]])
      expect(report.staleReplays).toBe(1)
      expect(report.staleReplaySamples[0]).toMatch(/^a:3 \(by main-0, output p0@6\) replayed after a:4 .*: a:4$/)
    })

    it('flags a replay that stops short of the latest message, naming every message not processed again', () => {
      const report = run({ a: 5 }, [['a', 1], ['a', 2], ['a', 3], ['a', 4], ['a', 5], ['a', 2], ['a', 3]])
      // a:2 is followed by a:3 but not by a:4 and a:5; a:3 by neither.
      expect(report.staleReplays).toBe(2)
      expect(report.staleReplaySamples.map((text) => text.split('; ')[1])).toEqual(['not processed again after it: a:4, a:5', 'not processed again after it: a:4, a:5'])
    })

    it('does not require again a message that was dead-lettered instead of processed', () => {
      const feed = new Feed().output(1).output(2).deadLetter(3, 'exhausted').output(4).output(2, 'worker').output(4, 'worker')
      const report = checkRun(oneKey(4), feed.obs)
      expect(report).toMatchObject({ staleReplays: 0, firstProcessingViolations: 0, duplicates: 2, exhausted: ['k0:3'] })
    })

    it('judges each key on its own outputs when keys interleave', () => {
      const report = run({ a: 3, b: 3, c: 2 }, [
        ['a', 1], ['b', 1], ['a', 2], ['b', 2], ['c', 1], ['a', 3], ['b', 3],
        ['b', 1], // stale: b:2 and b:3 not again
        ['a', 2], ['c', 2], ['a', 3], // forward replay of a's suffix, c's outputs in between
        ['c', 1], ['c', 2], // forward replay of c
        ['b', 3], // b:3 again: b:2 still not, so b:1 above stays stale
      ])
      expect(report.staleReplays).toBe(1)
      expect(report.staleReplaySamples[0]).toMatch(/^b:1 .* replayed after b:3 .*: b:2$/)
      expect(report).toMatchObject({ firstProcessingViolations: 0, duplicates: 6, processed: 8 })
    })

    it('follows the source log: a copy of an older message written again after a newer one is processed in its place', () => {
      // The producer sent a:1 again after a:2 (a resend after a hung send): the log is a:1@0, a:2@1, a:1@2.
      const inOrder = new Feed().output(1, 'main-0', 'r', 'a', 'src/0/0').output(2, 'main-0', 'r', 'a', 'src/0/1').output(1, 'worker', 'r', 'a', 'src/0/2')
      expect(checkRun(keys({ a: 2 }), inOrder.obs)).toMatchObject({ staleReplays: 0, firstProcessingViolations: 0, duplicates: 1 })
      // The same outputs, but the last one replays the first copy: a stale replay, named by message.
      const stale = new Feed().output(1, 'main-0', 'r', 'a', 'src/0/0').output(2, 'main-0', 'r', 'a', 'src/0/1').output(1, 'worker', 'r', 'a', 'src/0/0')
      const report = checkRun(keys({ a: 2 }), stale.obs)
      expect(report.staleReplays).toBe(1)
      expect(report.staleReplaySamples).toEqual(['a:1 (by worker, output p0@2, source src/0/0) replayed after a:2 (by main-0, output p0@1, source src/0/1); not processed again after it: a:2'])
    })

    it('does not count a late first processing twice: it is a first-processing violation, and what replays after it is judged as usual', () => {
      const report = run({ a: 3 }, [['a', 2], ['a', 3], ['a', 1], ['a', 2], ['a', 3], ['a', 1]])
      expect(report.firstProcessingViolations).toBe(1)
      // the second a:1 comes after a:3 with nothing after it
      expect(report.staleReplays).toBe(1)
      expect(invariantFailures(report)).toHaveLength(2)
    })
  })

  it('measures the end-to-end delay of retried messages, from the source record to the first output', () => {
    // Feed timestamps: source k0:1 1000, k0:2 1001, k0:3 1002; retry records 1003-1004; outputs 1005-1008.
    const feed = new Feed().source(1).source(2).source(3).retry('src/0/1', 'failure').retry('src/0/2', 'ordering')
    feed.output(1).output(2, 'worker').output(3, 'worker').output(2, 'worker')
    const report = checkRun(oneKey(3), feed.obs)
    expect(report.retriedDelay).toEqual({ count: 2, p50Ms: 5, p99Ms: 5, maxMs: 5, maxRef: 'k0:3' })
    expect(checkRun(oneKey(1), new Feed().source(1).output(1).obs).retriedDelay).toBeUndefined()
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

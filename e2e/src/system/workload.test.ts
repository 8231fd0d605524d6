import { describe, expect, it } from 'vitest'
import { seededRandom } from './prng.js'
import { encodeValue, generateWorkload } from './workload.js'

describe('seededRandom', () => {
  it('repeats its sequence for a seed and differs between seeds', () => {
    const a = seededRandom(7)
    const b = seededRandom(7)
    const c = seededRandom(8)
    const first = Array.from({ length: 5 }, () => a.next())
    expect(Array.from({ length: 5 }, () => b.next())).toEqual(first)
    expect(Array.from({ length: 5 }, () => c.next())).not.toEqual(first)
    for (const x of first) expect(x >= 0 && x < 1).toBe(true)
  })
})

describe('generateWorkload', () => {
  it('numbers each key 1, 2, 3… in production order and marks exact counts', () => {
    const w = generateWorkload({ messages: 1000, keys: 37, failureRate: 0.1, poison: 4, seed: 3 })
    expect(w.messages).toHaveLength(1000)
    expect(w.transient).toBe(100)
    expect(w.poison).toBe(4)
    expect(w.messages.filter((m) => m.transient && m.poison)).toEqual([])
    const last = new Map<string, number>()
    for (const m of w.messages) {
      expect(m.seq).toBe((last.get(m.key) ?? 0) + 1)
      last.set(m.key, m.seq)
      expect(m.ref).toBe(`${m.key}:${m.seq}`)
    }
    expect(new Set(w.messages.map((m) => m.key)).size).toBeGreaterThan(30)
  })

  it('is deterministic for a seed', () => {
    const a = generateWorkload({ messages: 300, keys: 20, seed: 11 })
    const b = generateWorkload({ messages: 300, keys: 20, seed: 11 })
    expect(a.messages).toEqual(b.messages)
    expect(generateWorkload({ messages: 300, keys: 20, seed: 12 }).messages).not.toEqual(a.messages)
  })

  it('marks exactly the refs it is given and rejects refs that do not exist', () => {
    const w = generateWorkload({ messages: 100, keys: 5, seed: 1, transientRefs: ['k0:2'], poisonRefs: ['k1:1'] })
    expect(w.messages.filter((m) => m.transient).map((m) => m.ref)).toEqual(['k0:2'])
    expect(w.messages.filter((m) => m.poison).map((m) => m.ref)).toEqual(['k1:1'])
    expect(() => generateWorkload({ messages: 10, keys: 5, seed: 1, transientRefs: ['k0:99'] })).toThrow(/k0:99/)
  })

  it('encodes the value the handler reads', () => {
    const w = generateWorkload({ messages: 5, keys: 1, seed: 1, poisonRefs: ['k0:3'], run: 'r1' })
    expect(JSON.parse(encodeValue(w.messages[2]!))).toEqual({ run: 'r1', key: 'k0', seq: 3, poison: true })
  })
})

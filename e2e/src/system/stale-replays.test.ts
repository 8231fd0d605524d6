import { describe, expect, it } from 'vitest'
import { findStaleReplays } from './stale-replays.js'

const seqs = (...values: number[]): Array<{ seq: number }> => values.map((seq) => ({ seq }))
const every = (): boolean => true

describe('findStaleReplays', () => {
  it('finds nothing in order, nor in forward replays', () => {
    expect(findStaleReplays(seqs(1, 2, 3), every)).toEqual([])
    expect(findStaleReplays(seqs(1, 2, 3, 1, 2, 3, 3), every)).toEqual([])
    expect(findStaleReplays(seqs(1, 1, 2, 2, 3), every)).toEqual([])
  })

  it('names the position, the latest message before it and what was not processed again', () => {
    expect(findStaleReplays(seqs(1, 2, 3, 4, 2, 3), every)).toEqual([
      { index: 4, latestIndex: 3, notReplayed: [4] },
      { index: 5, latestIndex: 3, notReplayed: [4] },
    ])
  })

  it('skips messages never processed (dead-lettered) and those first processed later', () => {
    // 3 never processed, then 3 first processed after the replay of 2 (a first-processing matter, not this one).
    expect(findStaleReplays(seqs(1, 2, 4, 2, 4), every)).toEqual([])
    expect(findStaleReplays(seqs(1, 2, 4, 2, 3, 4), every)).toEqual([])
  })

  it('leaves out what the caller does not count as a replay', () => {
    expect(findStaleReplays(seqs(2, 3, 1), (index) => index !== 2)).toEqual([])
    expect(findStaleReplays(seqs(2, 3, 1), every)).toEqual([{ index: 2, latestIndex: 1, notReplayed: [2, 3] }])
  })
})

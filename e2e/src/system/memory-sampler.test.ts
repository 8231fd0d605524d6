import { describe, expect, it } from 'vitest'
import { memoryTimeline, type MemorySample } from './memory-sampler.js'

const sample = (at: number, process: string, rssMb: number, incarnation = 1, held = 0): MemorySample => ({
  at,
  process,
  incarnation,
  rssBytes: rssMb * 1024 * 1024,
  heapUsedBytes: 1,
  externalBytes: 2,
  held,
})

describe('memoryTimeline', () => {
  it('keeps the highest value of each process per window, and the incarnations seen in it', () => {
    const rows = memoryTimeline(
      [sample(0, 'main-0', 100), sample(5000, 'main-0', 120, 1, 7), sample(5000, 'worker', 90), sample(10_000, 'main-0', 80, 2), sample(19_000, 'main-0', 140, 2, 3)],
      2,
    )
    expect(rows).toHaveLength(2)
    expect(rows[0]).toMatchObject({ from: 0, to: 9501, byProcess: { 'main-0': { rssBytes: 120 * 1024 * 1024, held: 7, incarnations: [1] }, worker: { rssBytes: 90 * 1024 * 1024 } } })
    expect(rows[1]).toMatchObject({ from: 9501, byProcess: { 'main-0': { rssBytes: 140 * 1024 * 1024, held: 3, incarnations: [2] } } })
    expect(rows[1]!.byProcess.worker).toBeUndefined()
  })

  it('gives nothing without samples', () => {
    expect(memoryTimeline([], 10)).toEqual([])
  })
})

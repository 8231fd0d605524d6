import { describe, expect, it } from 'vitest'
import { noopLogger, type TopicPartition } from '@detour/core'
import { BufferGate } from './buffer-gate.js'

function setup(max: number): { gate: BufferGate; paused: TopicPartition[][]; resumed: TopicPartition[][]; blocked: { n: number }; gauge: { n: number } } {
  const paused: TopicPartition[][] = []
  const resumed: TopicPartition[][] = []
  const blocked = { n: 0 }
  const gauge = { n: 0 }
  const gate = new BufferGate({
    max,
    control: { pause: (p) => paused.push([...p]), resume: (p) => resumed.push([...p]) },
    blocked: () => blocked.n,
    heldGroups: () => 1,
    onBufferedChange: (delta) => (gauge.n += delta),
    logger: noopLogger,
    onError: () => {},
  })
  return { gate, paused, resumed, blocked, gauge }
}

const p0 = { topic: 't', partition: 0 }
const p1 = { topic: 't', partition: 1 }

describe('BufferGate', () => {
  it('pauses a partition that delivers while the buffer is full, and resumes at half', () => {
    const { gate, resumed, gauge } = setup(4)
    let pauses = 0
    gate.added(3)
    gate.afterBatch(p0, () => pauses++)
    expect(pauses).toBe(0)
    gate.added(1)
    gate.afterBatch(p0, () => pauses++)
    gate.afterBatch(p0, () => pauses++)
    // Paused again in kafkajs each time (a restarted consumer forgets pauses), registered once.
    expect(pauses).toBe(2)
    expect(gate.pausedPartitions).toBe(1)
    gate.removed(1)
    expect(resumed).toEqual([])
    gate.removed(1)
    expect(resumed).toEqual([[p0]])
    expect(gate.pausedPartitions).toBe(0)
    expect(gauge.n).toBe(2)
  })

  it('does not wait for held records to drain: resumes at half of the room they leave', () => {
    const { gate, resumed, blocked } = setup(4)
    gate.added(4)
    gate.afterBatch(p1, () => {})
    blocked.n = 3
    // 4 buffered, 3 blocked: 1 movable, room (4-3)/2 = 0.
    gate.resumeIfDrained()
    expect(resumed).toEqual([])
    gate.removed(1)
    expect(resumed).toEqual([[p1]])
  })

  it('keeps everything paused while held records alone fill the buffer', () => {
    const { gate, resumed, blocked } = setup(2)
    gate.added(2)
    gate.afterBatch(p0, () => {})
    blocked.n = 2
    gate.resumeIfDrained()
    expect(resumed).toEqual([])
    blocked.n = 0
    gate.removed(2)
    expect(resumed).toEqual([[p0]])
  })

  it('re-applies pauses after a join, forgets revoked partitions, and resumes nothing once closed', () => {
    const { gate, paused, resumed } = setup(1)
    gate.added(1)
    gate.afterBatch(p0, () => {})
    gate.afterBatch(p1, () => {})
    gate.reapply()
    expect(paused).toEqual([[p0, p1]])
    gate.forget('t', 1)
    expect(resumed).toEqual([[p1]])
    expect(gate.isPaused('t', 1)).toBe(false)
    gate.close()
    gate.removed(1)
    expect(resumed).toEqual([[p1]])
  })
})

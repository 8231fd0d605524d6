import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Kafka } from 'kafkajs'
import { DetourHeaders, decodeRetryRecord, headerString, parseRedirectKey } from '@detour/core'
import { collectMessages, startBroker, testKafka, waitFor, type TestBroker } from '@detour/testkit'
import { UnprocessableMessageError } from './index.js'
import { entry, produce, setupTopics, startApp, startFakeWorker, type LogEntry } from './test-support/harness.js'

describe('ordered redirect (main app SDK)', () => {
  let broker: TestBroker
  let kafka: Kafka

  beforeAll(async () => {
    broker = await startBroker()
    kafka = testKafka(broker)
  })
  afterAll(async () => {
    await broker.stop()
  })

  it('holds back later messages of a failed key, lets other keys flow, and processes the key directly once released', async () => {
    const { topic, groupId, topics } = await setupTopics(broker, 1)
    const log: LogEntry[] = []
    const app = await startApp(broker, kafka, {
      topic,
      groupId,
      handler: async (payload) => {
        if (payload.message.value?.toString() === 'A') throw new Error('dependency down')
        log.push(entry('main', payload))
      },
    })
    try {
      await produce(kafka, topic, [
        { key: 'k1', value: 'A' },
        { key: 'k1', value: 'B' },
        { key: 'k2', value: 'D' },
        { key: 'k1', value: 'C' },
        { key: 'k2', value: 'E' },
      ])
      await waitFor(() => log.length === 2 && app.detour.stats().pendingIds === 3, 'k2 processed and 3 ids pending')
      expect(log.map((e) => e.value)).toEqual(['D', 'E'])

      const retry = await collectMessages(kafka, topics.retry, (c) => c.length >= 3)
      expect(retry.map((r) => [r.message.value?.toString(), headerString(r.message.headers, DetourHeaders.REASON)])).toEqual([
        ['A', 'failure'],
        ['B', 'ordering'],
        ['C', 'ordering'],
      ])
      const envelopes = retry.map((r) => decodeRetryRecord(r.message))
      expect(envelopes.map((e) => e.id)).toEqual([`${topic}/0/0`, `${topic}/0/1`, `${topic}/0/3`])
      expect(retry[0]!.message.key?.toString()).toBe('k1')
      expect(headerString(retry[0]!.message.headers, DetourHeaders.ERROR_MESSAGE)).toBe('dependency down')

      const redirect = await collectMessages(kafka, topics.redirect, (c) => c.length >= 3)
      expect(redirect.map((r) => parseRedirectKey(r.message.key).id)).toEqual(envelopes.map((e) => e.id))
      expect(redirect.every((r) => r.partition === 0 && r.message.value !== null)).toBe(true)
      expect(app.detour.pendingIds(topic, 0, 'k1')).toEqual(envelopes.map((e) => e.id))

      // The retry worker succeeds with A, B, C and writes tombstones: the group empties.
      const worker = await startFakeWorker(broker, kafka, topics, (payload) => {
        log.push(entry('worker', payload))
        return true
      })
      await waitFor(() => app.detour.stats().pendingIds === 0, 'tombstones to release k1')
      await worker.stop()
      await produce(kafka, topic, [{ key: 'k1', value: 'F' }])
      await waitFor(() => log.some((e) => e.value === 'F'), 'F to be processed')
      expect(log.map((e) => `${e.by}:${e.value}`)).toEqual(['main:D', 'main:E', 'worker:A', 'worker:B', 'worker:C', 'main:F'])
      const retryAfter = await collectMessages(kafka, topics.retry, (c) => c.length >= 3)
      expect(retryAfter).toHaveLength(3)
    } finally {
      await app.stop()
    }
  })

  it('rebuilds pending groups from the redirect topic after a restart', async () => {
    const { topic, groupId, topics } = await setupTopics(broker, 2)
    const log: LogEntry[] = []
    const handler = async (payload: Parameters<Parameters<typeof startApp>[2]['handler']>[0]): Promise<void> => {
      if (payload.message.value?.toString() === 'A') throw new Error('transient')
      log.push(entry('main', payload))
    }
    const first = await startApp(broker, kafka, { topic, groupId, handler })
    await produce(kafka, topic, [
      { key: 'k1', value: 'A', partition: 1 },
      { key: 'k1', value: 'B', partition: 1 },
      { key: 'k2', value: 'X', partition: 1 },
    ])
    await waitFor(() => log.length === 1 && first.detour.stats().pendingIds === 2, 'A and B redirected')
    await first.stop()

    const second = await startApp(broker, kafka, { topic, groupId, handler })
    try {
      await waitFor(() => second.detour.ready, 'the restarted instance to be ready')
      expect(second.detour.pendingIds(topic, 1, 'k1')).toEqual([`${topic}/1/0`, `${topic}/1/1`])
      expect(second.detour.stats().lastRebuildMs).toBeTypeOf('number')
      await produce(kafka, topic, [
        { key: 'k1', value: 'C', partition: 1 },
        { key: 'k2', value: 'Y', partition: 1 },
      ])
      await waitFor(() => log.some((e) => e.value === 'Y') && second.detour.stats().pendingIds === 3, 'C redirected behind A, B; Y processed')
      expect(log.map((e) => e.value)).toEqual(['X', 'Y'])
      const retry = await collectMessages(kafka, topics.retry, (c) => c.length >= 3)
      expect(retry.map((r) => r.message.value?.toString())).toEqual(['A', 'B', 'C'])
      const metrics = await second.detour.registry.getSingleMetricAsString('detour_rebuild_duration_seconds')
      expect(metrics).toMatch(/detour_rebuild_duration_seconds_count 1/)
    } finally {
      await second.stop()
    }
  })

  it('dead-letters unprocessable and undecodable messages with full context, without blocking their key', async () => {
    const { topic, groupId, topics } = await setupTopics(broker, 1)
    const log: LogEntry[] = []
    const app = await startApp(broker, kafka, {
      topic,
      groupId,
      handler: async (payload) => {
        const value = payload.message.value?.toString() ?? ''
        if (value === 'poison') throw new UnprocessableMessageError('schema violation: missing field "amount"')
        JSON.parse(value)
        log.push(entry('main', payload))
      },
    })
    try {
      await produce(kafka, topic, [
        { key: 'k1', value: 'poison', headers: { trace: 'abc' } },
        { key: 'k1', value: '{not json' },
        { key: 'k1', value: '{"ok":true}' },
      ])
      await waitFor(() => log.length === 1, 'the valid message')
      expect(app.detour.stats().pendingIds).toBe(0)
      const dlt = await collectMessages(kafka, topics.error, (c) => c.length >= 2)
      const h = (i: number, name: string): string | undefined => headerString(dlt[i]!.message.headers, name)
      expect([h(0, DetourHeaders.REASON), h(1, DetourHeaders.REASON)]).toEqual(['unprocessable', 'deserialization'])
      expect(dlt[0]!.message.key?.toString()).toBe('k1')
      expect(dlt[0]!.message.value?.toString()).toBe('poison')
      expect(h(0, 'trace')).toBe('abc')
      expect(h(0, DetourHeaders.ERROR_NAME)).toBe('UnprocessableMessageError')
      expect(h(0, DetourHeaders.ERROR_MESSAGE)).toBe('schema violation: missing field "amount"')
      expect(h(0, DetourHeaders.ERROR_STACK)).toMatch(/UnprocessableMessageError/)
      expect([h(0, DetourHeaders.ORIGINAL_TOPIC), h(0, DetourHeaders.ORIGINAL_PARTITION), h(0, DetourHeaders.ORIGINAL_OFFSET)]).toEqual([topic, '0', '0'])
      expect(h(0, DetourHeaders.CONSUMER_GROUP)).toBe(groupId)
      expect(Date.parse(h(0, DetourHeaders.FAILED_AT) ?? '')).toBeGreaterThan(Date.now() - 60_000)
      expect(h(1, DetourHeaders.ERROR_NAME)).toBe('SyntaxError')
    } finally {
      await app.stop()
    }
  })

  it('gives keyless messages a group of one and keeps non-UTF-8 keys apart', async () => {
    const { topic, groupId, topics } = await setupTopics(broker, 1)
    const log: LogEntry[] = []
    const app = await startApp(broker, kafka, {
      topic,
      groupId,
      handler: async (payload) => {
        if (payload.message.value?.toString().startsWith('fail')) throw new Error('transient')
        log.push(entry('main', payload))
      },
    })
    const binA = Buffer.from([0xff, 0xfe])
    const binB = Buffer.from([0xff, 0xfd])
    try {
      await produce(kafka, topic, [
        { key: null, value: 'fail-nokey' },
        { key: null, value: 'nokey-ok' },
        { key: binA, value: 'fail-bin' },
        { key: binA, value: 'bin-a-later' },
        { key: binB, value: 'bin-b' },
      ])
      await waitFor(() => log.length === 2 && app.detour.stats().pendingIds === 3, 'keyless and binB processed; 3 pending')
      expect(log.map((e) => e.value)).toEqual(['nokey-ok', 'bin-b'])
      const redirect = await collectMessages(kafka, topics.redirect, (c) => c.length >= 3)
      const keys = redirect.map((r) => parseRedirectKey(r.message.key))
      expect(keys[0]).toEqual({ groupKey: null, id: `${topic}/0/0` })
      expect(keys[1]!.groupKey).toEqual(binA)
      expect(keys[2]!.groupKey).toEqual(binA)
      const retry = await collectMessages(kafka, topics.retry, (c) => c.length >= 3)
      expect(retry[1]!.message.key).toEqual(binA)
      expect(retry.map((r) => headerString(r.message.headers, DetourHeaders.REASON))).toEqual(['failure', 'failure', 'ordering'])
    } finally {
      await app.stop()
    }
  })

  it('forwards large user headers untouched and bounds the headers it writes itself', async () => {
    const { topic, groupId, topics } = await setupTopics(broker, 1)
    const big = Buffer.alloc(200_000, 0x61)
    const app = await startApp(broker, kafka, {
      topic,
      groupId,
      handler: async () => {
        const error = new Error('x'.repeat(100_000))
        throw error
      },
    })
    try {
      await produce(kafka, topic, [{ key: 'k', value: 'v', headers: { big } }])
      const retry = await collectMessages(kafka, topics.retry, (c) => c.length >= 1)
      expect(retry[0]!.message.headers!.big).toEqual(big)
      const message = headerString(retry[0]!.message.headers, DetourHeaders.ERROR_MESSAGE)!
      expect(Buffer.byteLength(message)).toBeLessThanOrEqual(1024)
      expect(message).toMatch(/truncated/)
    } finally {
      await app.stop()
    }
  })

  it('eachBatch: the same order and outcome, with the hand-offs of a batch in one transaction', async () => {
    const { topic, groupId, topics } = await setupTopics(broker, 1)
    const log: LogEntry[] = []
    const app = await startApp(broker, kafka, {
      topic,
      groupId,
      batches: true,
      handler: async (payload) => {
        if (payload.message.value?.toString() === 'k1-1') throw new Error('dependency down')
        log.push(entry('main', payload))
      },
    })
    try {
      await waitFor(() => app.detour.ready, 'ready')
      const messages = Array.from({ length: 60 }, (_, i) => ({ key: i % 3 === 0 ? 'k2' : 'k1', value: `${i % 3 === 0 ? 'k2' : 'k1'}-${i}` }))
      await produce(kafka, topic, messages)
      const k1 = messages.filter((m) => m.key === 'k1').map((m) => m.value)
      const k2 = messages.filter((m) => m.key === 'k2').map((m) => m.value)
      await waitFor(() => log.length === k2.length && app.detour.stats().pendingIds === k1.length, 'k2 processed and every k1 message pending', 30_000)
      expect(log.map((e) => e.value)).toEqual(k2)
      const retry = await collectMessages(kafka, topics.retry, (c) => c.length >= k1.length)
      expect(retry.map((r) => r.message.value?.toString())).toEqual(k1)
      const transactions = await app.detour.registry.getSingleMetricAsString('detour_messages_redirected_total')
      expect(transactions).toMatch(/reason="ordering"} 39/)
    } finally {
      await app.stop()
    }
  })
})

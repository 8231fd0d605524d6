import { describe, expect, it } from 'vitest'
import { AdminUsageError } from '../errors/index.js'
import { scenario, T0 } from '../test-support/scenario.js'
import { DeadLetterBrowser } from './dead-letter-browser.js'
import { deadLetterJson, decodeDeadLetter, parseCoordinates } from './dead-letter.js'
import { matchesFilter, parseTime } from './dead-letter-filter.js'

describe('dead letters', () => {
  it('decodes every Detour header and shows bytes as UTF-8 or base64', () => {
    const s = scenario()
    s.deadLetter(1, 42, 'customer-1', { value: Buffer.from([0xde, 0xad, 0xbe, 0xef]), headers: { trace: Buffer.from('t-1'), bin: Buffer.from([0xff]), many: [Buffer.from('a'), Buffer.from('b')] } })
    const deadLetter = decodeDeadLetter(s.kafka.records(s.topics.error, 1)[0]!)
    expect(deadLetter).toMatchObject({
      reason: 'exhausted',
      errorName: 'ConnectionError',
      errorMessage: 'database down',
      consumerGroup: 'orders-app',
      component: 'retry-worker',
      id: 'orders/1/42',
      source: { topic: 'orders', partition: 1, offset: '42' },
      failedAt: new Date(T0).toISOString(),
    })
    const json = deadLetterJson(deadLetter)
    expect(json.coordinates).toBe(`${s.topics.error}/1/0`)
    expect(json.value).toEqual({ encoding: 'base64', data: '3q2+7w==', bytes: 4 })
    expect(json.key).toEqual({ encoding: 'utf8', data: 'customer-1', bytes: 10 })
    expect(json.detourHeaders).toMatchObject({ 'detour-attempts': '5', 'detour-group-key': 'customer-1', 'detour-original-offset': '42' })
    expect(json.detourHeaders['detour-error-stack']).toMatch(/^ConnectionError: database down/)
    expect(json.userHeaders).toEqual({
      trace: { encoding: 'utf8', data: 't-1', bytes: 3 },
      bin: { encoding: 'base64', data: '/w==', bytes: 1 },
      many: [
        { encoding: 'utf8', data: 'a', bytes: 1 },
        { encoding: 'utf8', data: 'b', bytes: 1 },
      ],
    })
    expect(deadLetterJson(deadLetter, { withValue: false }).value).toBeNull()
  })

  it('parses coordinates in both forms', () => {
    expect(parseCoordinates('3:17', 'dlt')).toEqual({ topic: 'dlt', partition: 3, offset: '17' })
    expect(parseCoordinates('orders-x-dlt/2/9223372036854775807', undefined)).toEqual({ topic: 'orders-x-dlt', partition: 2, offset: '9223372036854775807' })
    expect(() => parseCoordinates('3:17', undefined)).toThrow(/several/)
    expect(() => parseCoordinates('3-17', 'dlt')).toThrow(AdminUsageError)
  })

  it('filters by reason, error name, key, time range and source coordinates', () => {
    const s = scenario()
    s.deadLetter(0, 1, 'a', { reason: 'unprocessable', at: T0 })
    s.deadLetter(0, 2, 'b', { reason: 'exhausted', at: T0 + 1000, error: new TypeError('x') })
    s.deadLetter(1, 3, null, { reason: 'exhausted', at: T0 + 2000 })
    const all = s.kafka.records(s.topics.error).map(decodeDeadLetter)
    const pick = (filter: Parameters<typeof matchesFilter>[1]): string[] => all.filter((dl) => matchesFilter(dl, filter)).map((dl) => dl.id!)
    expect(pick({ reasons: ['exhausted'] })).toEqual(['orders/0/2', 'orders/1/3'])
    expect(pick({ errorNames: ['TypeError'] })).toEqual(['orders/0/2'])
    expect(pick({ keys: ['b'] })).toEqual(['orders/0/2'])
    expect(pick({ keys: ['(none)'] })).toEqual(['orders/1/3'])
    expect(pick({ keys: [`base64:${Buffer.from('a').toString('base64')}`] })).toEqual(['orders/0/1'])
    expect(pick({ since: T0 + 1000, until: T0 + 2000 })).toEqual(['orders/0/2'])
    expect(pick({ sourcePartition: 1 })).toEqual(['orders/1/3'])
    expect(pick({ sourceOffset: '1' })).toEqual(['orders/0/1'])
    expect(pick({ sourceTopics: ['payments'] })).toEqual([])
  })

  it('parses times: ISO, epoch ms, durations ago', () => {
    const now = T0
    expect(parseTime('2024-05-01T11:00:00Z', now)).toBe(T0 - 3_600_000)
    expect(parseTime(String(T0), now)).toBe(T0)
    expect(parseTime('90s', now)).toBe(T0 - 90_000)
    expect(parseTime('2h', now)).toBe(T0 - 7_200_000)
    expect(parseTime('7d', now)).toBe(T0 - 7 * 86_400_000)
    expect(() => parseTime('yesterday', now)).toThrow(/not a time/)
  })

  it('lists newest first with a limit, reads from --since by timestamp, shows one record or says it is not there', async () => {
    const s = scenario()
    for (let i = 0; i < 6; i++) s.deadLetter(i % 3, i, `k${i}`, { at: T0 + i * 1000 })
    const browser = new DeadLetterBrowser(s.kafka, s.scope)
    const page = await browser.list({}, { limit: 2 })
    expect(page.matched).toBe(6)
    expect(page.deadLetters.map((dl) => dl.id)).toEqual(['orders/2/5', 'orders/1/4'])
    const since = await browser.list({ since: T0 + 4000 })
    expect(since.deadLetters.map((dl) => dl.id)).toEqual(['orders/2/5', 'orders/1/4'])
    expect(since.scanned).toBe(2)
    expect((await browser.show({ topic: s.topics.error, partition: 1, offset: '1' })).id).toBe('orders/1/4')
    await expect(browser.show({ topic: s.topics.error, partition: 1, offset: '7' })).rejects.toMatchObject({ code: 'DETOUR_ADMIN_NOT_FOUND' })
    await expect(browser.show({ topic: 'elsewhere', partition: 0, offset: '0' })).rejects.toBeInstanceOf(AdminUsageError)
  })
})

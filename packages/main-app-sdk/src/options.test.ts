import { describe, expect, it } from 'vitest'
import { Kafka, logLevel } from 'kafkajs'
import { createDetour, DetourConfigError, ErrorCodes } from './index.js'

const kafka = new Kafka({ brokers: ['127.0.0.1:1'], logLevel: logLevel.NOTHING })
const consumer = kafka.consumer({ groupId: 'g' })
const base = { kafka, consumer, groupId: 'g', topics: ['t'] }

function configError(options: unknown): DetourConfigError {
  let error: unknown
  try {
    createDetour(options as never)
  } catch (e) {
    error = e
  }
  expect(error).toBeInstanceOf(DetourConfigError)
  expect((error as DetourConfigError).code).toBe(ErrorCodes.INVALID_OPTION)
  return error as DetourConfigError
}

describe('options are validated at construction', () => {
  it.each([
    [{ ...base, kafka: undefined }, 'kafka'],
    [{ ...base, consumer: {} }, 'consumer'],
    [{ ...base, groupId: '' }, 'groupId'],
    [{ ...base, topics: [] }, 'topics'],
    [{ ...base, topics: ['t', 't'] }, 'topics'],
    [{ ...base, inPlaceRetries: -1 }, 'inPlaceRetries'],
    [{ ...base, inPlaceRetries: 11 }, 'inPlaceRetries'],
    [{ ...base, maxPendingIds: 0 }, 'maxPendingIds'],
    [{ ...base, groupKey: 'key' }, 'groupKey'],
    [{ ...base, groupId: 'has space' }, 'topicNaming.retry'],
    [{ ...base, handOff: 'eventually' }, 'handOff'],
    [{ ...base, transactionalIdPrefix: '' }, 'transactionalIdPrefix'],
    [{ ...base, transactionTimeoutMs: 10 }, 'transactionTimeoutMs'],
    [{ ...base, replicationFactor: 0 }, 'replicationFactor'],
    [{ ...base, inPlaceBackoff: { type: 'linear' } }, 'backoff.type'],
  ])('rejects %#', (options, option) => {
    expect(configError(options).option).toBe(option)
  })

  it('refuses a producer instance with transactional hand-offs, and says what to use', () => {
    const error = configError({ ...base, producer: kafka.producer() })
    expect(error.option).toBe('producer')
    expect(error.message).toMatch(/producerConfig/)
    expect(error.message).toMatch(/handOff: "sequential"/)
    expect(() => createDetour({ ...base, producer: kafka.producer(), handOff: 'sequential' })).not.toThrow()
  })

  it('requires {groupId} in the retry and redirect topic names, unless told that one group uses them', () => {
    const error = configError({ ...base, topicNaming: { retry: '{topic}.retry' } })
    expect(error.option).toBe('topicNaming.retry')
    expect(error.message).toMatch(/Add \{groupId\}/)
    const detour = createDetour({ ...base, topicNaming: { retry: '{topic}.retry', redirect: '{topic}.redirect', allowWithoutGroupId: true } })
    expect(detour.topics.get('t')).toMatchObject({ retry: 't.retry', redirect: 't.redirect' })
  })

  it('refuses topic names that collide between source topics', () => {
    const error = configError({ ...base, topics: ['a', 'b'], topicNaming: { retry: 'shared-{groupId}-retry' } })
    expect(error.message).toMatch(/would be both the retry topic of "a" and the retry topic of "b"/)
    // A shared error topic is fine.
    expect(() => createDetour({ ...base, topics: ['a', 'b'], topicNaming: { error: 'all-{groupId}-dlt' } })).not.toThrow()
  })

  it('accepts the minimal options and derives topic names that include the group id', () => {
    const detour = createDetour(base)
    expect(detour.topics.get('t')).toEqual({ source: 't', retry: 't-g-retry', redirect: 't-g-redirect', error: 't-g-dlt' })
    expect(detour.state).toBe('idle')
  })

  it('refuses to consume before start()', async () => {
    const detour = createDetour(base)
    const handler = detour.eachMessage(async () => {})
    await expect(
      handler({ topic: 't', partition: 0, message: { key: null, value: null, offset: '0', timestamp: '0', attributes: 0, size: 0, headers: {} } as never, heartbeat: async () => {}, pause: () => () => {} }),
    ).rejects.toMatchObject({ code: ErrorCodes.NOT_RUNNING })
  })

  it('refuses to start again after stop()', async () => {
    const detour = createDetour(base)
    await expect(detour.stop()).resolves.toEqual({ clean: true, abandoned: 0 })
    await expect(detour.start()).rejects.toMatchObject({ code: ErrorCodes.NOT_RUNNING })
    expect(detour.state).toBe('stopped')
  })
})

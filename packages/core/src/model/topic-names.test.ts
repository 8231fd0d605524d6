import { describe, expect, it } from 'vitest'
import { DetourConfigError } from '../errors/index.js'
import { defaultTopicNaming, detourTopics, type TopicNaming } from './topic-names.js'

function configError(fn: () => unknown): DetourConfigError {
  let caught: unknown
  try {
    fn()
  } catch (error) {
    caught = error
  }
  expect(caught).toBeInstanceOf(DetourConfigError)
  const error = caught as DetourConfigError
  expect(error.code).toBe('DETOUR_INVALID_OPTION')
  return error
}

describe('detourTopics', () => {
  it('derives {topic}-{groupId}-retry/-redirect/-dlt by default', () => {
    expect(detourTopics('orders', 'billing')).toEqual({
      source: 'orders',
      retry: 'orders-billing-retry',
      redirect: 'orders-billing-redirect',
      error: 'orders-billing-dlt',
    })
    expect(defaultTopicNaming).toEqual({
      retry: '{topic}-{groupId}-retry',
      redirect: '{topic}-{groupId}-redirect',
      error: '{topic}-{groupId}-dlt',
    })
  })

  it('gives two groups reading the same topic disjoint topics', () => {
    const groups = ['billing', 'shipping', 'a', 'a-retry', 'a-redirect', 'a-dlt', 'retry', 'billing.v2', 'billing_v2']
    const seen = new Map<string, string>()
    for (const group of groups) {
      const topics = detourTopics('orders', group)
      for (const name of [topics.retry, topics.redirect, topics.error]) {
        expect(seen.get(name), `${name} of ${group}`).toBeUndefined()
        seen.set(name, group)
      }
    }
    expect(seen.size).toBe(groups.length * 3)
    expect(detourTopics('orders', 'billing').retry).not.toBe(detourTopics('orders', 'shipping').retry)
  })

  it('renders custom templates, every occurrence of a placeholder', () => {
    const naming: TopicNaming = { retry: 'detour.{groupId}.{topic}.retry', redirect: '{topic}.{topic}.{groupId}.pending', error: 'dead-{groupId}' }
    expect(detourTopics('orders', 'g1', naming)).toEqual({
      source: 'orders',
      retry: 'detour.g1.orders.retry',
      redirect: 'orders.orders.g1.pending',
      error: 'dead-g1',
    })
  })

  it('keeps defaults for templates that are not given (including explicit undefined)', () => {
    expect(detourTopics('orders', 'g', { error: 'all-dead-letters' })).toEqual({
      source: 'orders',
      retry: 'orders-g-retry',
      redirect: 'orders-g-redirect',
      error: 'all-dead-letters',
    })
    expect(detourTopics('orders', 'g', { retry: undefined, redirect: undefined, error: undefined })).toEqual(detourTopics('orders', 'g'))
  })

  it('accepts fixed names without placeholders', () => {
    expect(detourTopics('orders', 'g', { retry: 'r', redirect: 'p', error: 'e' })).toEqual({ source: 'orders', retry: 'r', redirect: 'p', error: 'e' })
  })

  it('rejects a group id with spaces, naming the role, the name and the fix', () => {
    const error = configError(() => detourTopics('orders', 'my group'))
    expect(error.option).toBe('topics.retry')
    expect(error.message).toBe(
      'Invalid option "topics.retry": "orders-my group-retry" is not a valid Kafka topic name ' +
        '(only [a-zA-Z0-9._-], at most 249 characters); choose a shorter group id or set the topic name template explicitly',
    )
  })

  it('rejects names longer than 249 characters and accepts exactly 249', () => {
    const source = 'o'
    // 'o-' + group + '-redirect' is the longest default name: 2 + n + 9
    const longest = 'g'.repeat(249 - 11)
    expect(detourTopics(source, longest).redirect).toHaveLength(249)
    const error = configError(() => detourTopics(source, `${longest}g`))
    expect(error.option).toBe('topics.redirect')
    expect(error.message).toContain('at most 249 characters')
    expect(error.message).toContain('choose a shorter group id')
  })

  it('reports the failing role for an invalid custom template', () => {
    expect(configError(() => detourTopics('orders', 'g', { error: '{topic}/dead' })).option).toBe('topics.error')
    expect(configError(() => detourTopics('orders', 'g', { redirect: '{groupId}:{topic}' })).option).toBe('topics.redirect')
    expect(configError(() => detourTopics('orders', 'g', { retry: '.' })).option).toBe('topics.retry')
  })

  it('rejects identical retry and redirect templates', () => {
    const error = configError(() => detourTopics('orders', 'g', { retry: '{topic}-{groupId}-x', redirect: '{topic}-{groupId}-x' }))
    expect(error.option).toBe('topics')
    expect(error.message).toBe('Invalid option "topics": retry, redirect and source topics must be distinct: orders, orders-g-x, orders-g-x')
  })

  it('rejects a retry or redirect topic equal to the source', () => {
    expect(configError(() => detourTopics('orders', 'g', { retry: '{topic}' })).option).toBe('topics')
    expect(configError(() => detourTopics('orders', 'g', { redirect: 'orders' })).option).toBe('topics')
  })

  it('rejects an error topic equal to any other topic', () => {
    for (const error of ['{topic}', '{topic}-{groupId}-retry', '{topic}-{groupId}-redirect']) {
      const thrown = configError(() => detourTopics('orders', 'g', { error }))
      expect(thrown.option).toBe('topics.error')
      expect(thrown.message).toContain('must differ from the other topics')
    }
  })
})

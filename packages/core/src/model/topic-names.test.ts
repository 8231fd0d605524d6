import { describe, expect, it } from 'vitest'
import { DetourConfigError } from '../errors/index.js'
import { defaultTopicNaming, detourTopics, detourTopicsFor, type TopicNaming } from './topic-names.js'

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

  it('accepts fixed names without placeholders only with allowWithoutGroupId', () => {
    const naming = { retry: 'r', redirect: 'p', error: 'e', allowWithoutGroupId: true }
    expect(detourTopics('orders', 'g', naming)).toEqual({ source: 'orders', retry: 'r', redirect: 'p', error: 'e' })
    expect(configError(() => detourTopics('orders', 'g', { ...naming, allowWithoutGroupId: false })).option).toBe('topicNaming.retry')
  })

  it('requires {groupId} in the retry template, naming the option and the fix', () => {
    const error = configError(() => detourTopics('orders', 'g', { retry: '{topic}-retry' }))
    expect(error.option).toBe('topicNaming.retry')
    expect(error.message).toBe(
      'Invalid option "topicNaming.retry": "{topic}-retry" has no {groupId}: two consumer groups of "orders" would share the retry topic, ' +
        "and one group's tombstones would release the other's pending ids. Add {groupId} to the template, or set " +
        'topicNaming.allowWithoutGroupId if exactly one consumer group uses these names.',
    )
  })

  it('requires {groupId} in the redirect template, naming the option and the fix', () => {
    const error = configError(() => detourTopics('orders', 'g', { redirect: 'pending-{topic}' }))
    expect(error.option).toBe('topicNaming.redirect')
    expect(error.message).toBe(
      'Invalid option "topicNaming.redirect": "pending-{topic}" has no {groupId}: two consumer groups of "orders" would share the redirect topic, ' +
        "and one group's tombstones would release the other's pending ids. Add {groupId} to the template, or set " +
        'topicNaming.allowWithoutGroupId if exactly one consumer group uses these names.',
    )
  })

  it('allows an error template without {groupId} (dead letters may be shared)', () => {
    expect(detourTopics('orders', 'g', { error: 'all-dead-letters' }).error).toBe('all-dead-letters')
  })

  it('does not take a group id that merely looks like the placeholder for the placeholder', () => {
    // The check is on the template, not on the rendered name.
    expect(configError(() => detourTopics('orders', 'groupId', { retry: '{topic}-groupId-retry' })).option).toBe('topicNaming.retry')
  })

  it('rejects a group id with spaces, naming the role, the name and the fix', () => {
    const error = configError(() => detourTopics('orders', 'my group'))
    expect(error.option).toBe('topicNaming.retry')
    expect(error.message).toBe(
      'Invalid option "topicNaming.retry": "orders-my group-retry" is not a valid Kafka topic name ' +
        '(only [a-zA-Z0-9._-], at most 249 characters); choose a shorter group id or set the topic name template explicitly',
    )
  })

  it('rejects names longer than 249 characters and accepts exactly 249', () => {
    const source = 'o'
    // 'o-' + group + '-redirect' is the longest default name: 2 + n + 9
    const longest = 'g'.repeat(249 - 11)
    expect(detourTopics(source, longest).redirect).toHaveLength(249)
    const error = configError(() => detourTopics(source, `${longest}g`))
    expect(error.option).toBe('topicNaming.redirect')
    expect(error.message).toContain('at most 249 characters')
    expect(error.message).toContain('choose a shorter group id')
  })

  it('reports the failing role for an invalid custom template', () => {
    expect(configError(() => detourTopics('orders', 'g', { error: '{topic}/dead' })).option).toBe('topicNaming.error')
    expect(configError(() => detourTopics('orders', 'g', { redirect: '{groupId}:{topic}' })).option).toBe('topicNaming.redirect')
    const dot = configError(() => detourTopics('orders', 'g', { retry: '.', allowWithoutGroupId: true }))
    expect(dot.option).toBe('topicNaming.retry')
    expect(dot.message).toContain('"." is not a valid Kafka topic name')
  })

  it('rejects identical retry and redirect templates', () => {
    const error = configError(() => detourTopics('orders', 'g', { retry: '{topic}-{groupId}-x', redirect: '{topic}-{groupId}-x' }))
    expect(error.option).toBe('topicNaming')
    expect(error.message).toBe('Invalid option "topicNaming": retry, redirect and source topics must be distinct: orders, orders-g-x, orders-g-x')
  })

  it('rejects a retry or redirect topic equal to the source', () => {
    const retry = configError(() => detourTopics('orders', 'g', { retry: '{topic}', allowWithoutGroupId: true }))
    expect(retry.option).toBe('topicNaming')
    expect(retry.message).toBe('Invalid option "topicNaming": retry, redirect and source topics must be distinct: orders, orders, orders-g-redirect')
    expect(configError(() => detourTopics('orders', 'g', { redirect: 'orders', allowWithoutGroupId: true })).option).toBe('topicNaming')
    // With {groupId} in the template, the group id can still make the name equal to the source.
    expect(configError(() => detourTopics('orders', 'orders', { retry: '{groupId}' })).option).toBe('topicNaming')
  })

  it('rejects an error topic equal to any other topic', () => {
    for (const error of ['{topic}', '{topic}-{groupId}-retry', '{topic}-{groupId}-redirect']) {
      const thrown = configError(() => detourTopics('orders', 'g', { error }))
      expect(thrown.option).toBe('topicNaming.error')
      expect(thrown.message).toBe(`Invalid option "topicNaming.error": the error topic "${error.replace('{topic}', 'orders').replace('{groupId}', 'g')}" must differ from the other topics`)
    }
  })
})

describe('detourTopicsFor', () => {
  it('derives the topics of every source topic, in the order given', () => {
    const all = detourTopicsFor(['orders', 'payments'], 'billing')
    expect([...all.keys()]).toEqual(['orders', 'payments'])
    expect(all.get('orders')).toEqual(detourTopics('orders', 'billing'))
    expect(all.get('payments')).toEqual({
      source: 'payments',
      retry: 'payments-billing-retry',
      redirect: 'payments-billing-redirect',
      error: 'payments-billing-dlt',
    })
    expect(detourTopicsFor([], 'billing').size).toBe(0)
  })

  it('applies the {groupId} rule to every source topic', () => {
    expect(configError(() => detourTopicsFor(['orders'], 'g', { redirect: '{topic}-pending' })).option).toBe('topicNaming.redirect')
  })

  it('refuses a source topic listed twice', () => {
    const error = configError(() => detourTopicsFor(['orders', 'payments', 'orders'], 'g'))
    expect(error.option).toBe('topics')
    expect(error.message).toBe('Invalid option "topics": lists "orders" twice')
  })

  it('refuses two source topics sharing a retry topic', () => {
    const error = configError(() => detourTopicsFor(['orders', 'payments'], 'g', { retry: 'detour-{groupId}-retry' }))
    expect(error.option).toBe('topicNaming')
    expect(error.message).toBe(
      'Invalid option "topicNaming": "detour-g-retry" would be both the retry topic of "orders" and the retry topic of "payments"; ' +
        'include {topic} in the templates so that every source topic gets its own retry and redirect topics',
    )
  })

  it('refuses two source topics sharing a redirect topic', () => {
    const error = configError(() => detourTopicsFor(['orders', 'payments'], 'g', { redirect: 'detour-{groupId}-redirect' }))
    expect(error.message).toBe(
      'Invalid option "topicNaming": "detour-g-redirect" would be both the redirect topic of "orders" and the redirect topic of "payments"; ' +
        'include {topic} in the templates so that every source topic gets its own retry and redirect topics',
    )
  })

  it("refuses a retry topic that is another source topic", () => {
    const error = configError(() => detourTopicsFor(['orders', 'orders-g-retry'], 'g'))
    expect(error.option).toBe('topicNaming')
    expect(error.message).toMatch(/^Invalid option "topicNaming": "orders-g-retry" would be both the source topic "orders-g-retry" and the retry topic of "orders"; /)
    // Whatever the order of the list.
    expect(configError(() => detourTopicsFor(['orders-g-retry', 'orders'], 'g')).message).toContain(
      '"orders-g-retry" would be both the source topic "orders-g-retry" and the retry topic of "orders"',
    )
  })

  it("refuses a redirect topic that is another source's retry topic", () => {
    // g-b → retry g-b-g; b-g → redirect g-b-g
    const naming = { retry: '{topic}-{groupId}', redirect: '{groupId}-{topic}' }
    const error = configError(() => detourTopicsFor(['g-b', 'b-g'], 'g', naming))
    expect(error.message).toContain('"g-b-g" would be both the retry topic of "g-b" and the redirect topic of "b-g"')
  })

  it('allows source topics of one group to share an error topic', () => {
    const all = detourTopicsFor(['orders', 'payments', 'refunds'], 'g', { error: 'dead-letters-{groupId}' })
    expect([...all.values()].map((t) => t.error)).toEqual(['dead-letters-g', 'dead-letters-g', 'dead-letters-g'])
    expect([...all.values()].map((t) => t.retry)).toEqual(['orders-g-retry', 'payments-g-retry', 'refunds-g-retry'])
  })

  it("refuses an error topic that is another source topic", () => {
    const error = configError(() => detourTopicsFor(['orders', 'orders-g-dlt'], 'g'))
    expect(error.option).toBe('topicNaming.error')
    expect(error.message).toBe('Invalid option "topicNaming.error": "orders-g-dlt" would be both the source topic "orders-g-dlt" and the error topic of "orders"')
  })

  it("refuses an error topic that is another source's retry topic", () => {
    // a → error a-g.g; a-g → retry a-g.g
    const error = configError(() => detourTopicsFor(['a', 'a-g'], 'g', { retry: '{topic}.{groupId}', error: '{topic}-{groupId}.{groupId}' }))
    expect(error.option).toBe('topicNaming.error')
    expect(error.message).toBe('Invalid option "topicNaming.error": "a-g.g" would be both the retry topic of "a-g" and the error topic of "a"')
  })

  it('refuses fixed names for two source topics even with allowWithoutGroupId', () => {
    const naming = { retry: 'r', redirect: 'p', error: 'e', allowWithoutGroupId: true }
    expect(detourTopicsFor(['orders'], 'g', naming).get('orders')).toEqual({ source: 'orders', retry: 'r', redirect: 'p', error: 'e' })
    expect(configError(() => detourTopicsFor(['orders', 'payments'], 'g', naming)).message).toContain('"r" would be both the retry topic of "orders" and the retry topic of "payments"')
  })
})

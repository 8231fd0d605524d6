import { describe, expect, it } from 'vitest'
import { DetourConfigError } from '../errors/detour-error.js'
import { legacyGroupArguments, resolveGroupIdFlags, resolveGroupIds } from './group-ids.js'

/** The flags as yargs hands them over: the legacy middleware first. */
function flags(args: Record<string, string>) {
  const argv: Record<string, unknown> = { ...args }
  legacyGroupArguments(argv)
  return resolveGroupIdFlags(argv)
}

describe('group ids: one rule for options and flags', () => {
  it("groupId is the main app's group; the worker's defaults to <groupId>-detour-retry and must differ", () => {
    expect(resolveGroupIds({ groupId: 'orders-app' })).toEqual({ groupId: 'orders-app', workerGroupId: 'orders-app-detour-retry', deprecation: undefined })
    expect(resolveGroupIds({ groupId: 'orders-app', workerGroupId: 'retries' })).toMatchObject({ workerGroupId: 'retries' })
    expect(() => resolveGroupIds({ groupId: 'g', workerGroupId: 'g' })).toThrow(/Invalid option "workerGroupId": must differ from groupId "g"/)
    expect(() => resolveGroupIds({})).toThrow(DetourConfigError)
    expect(() => resolveGroupIds({ groupId: ' ' })).toThrow(/groupId.*non-empty string/)
  })

  it('the deprecated consumerGroup is the main app\'s group; groupId then keeps its old meaning', () => {
    const legacy = resolveGroupIds({ consumerGroup: 'orders-app', groupId: 'old-worker' })
    expect(legacy).toMatchObject({ groupId: 'orders-app', workerGroupId: 'old-worker' })
    expect(legacy.deprecation).toMatch(/consumerGroup is deprecated: set groupId to the main app's group \("orders-app"\) and workerGroupId to the worker's own group \("old-worker"\)/)
    expect(() => resolveGroupIds({ consumerGroup: 'a', groupId: 'b', workerGroupId: 'c' })).toThrow(/cannot be combined/)
    expect(() => resolveGroupIds({ consumerGroup: 'a', groupId: 'a' })).toThrow(/Invalid option "groupId": must differ from consumerGroup "a"/)
  })

  it('speaks in flags for the command lines, after the legacy middleware', () => {
    expect(flags({ 'group-id': 'orders-app' })).toEqual({ groupId: 'orders-app', workerGroupId: 'orders-app-detour-retry', deprecation: undefined })
    const onlyLegacy = flags({ 'consumer-group': 'orders-app' })
    expect(onlyLegacy).toMatchObject({ groupId: 'orders-app', workerGroupId: 'orders-app-detour-retry' })
    expect(onlyLegacy.deprecation).toMatch(/^--consumer-group \(DETOUR_CONSUMER_GROUP\) is deprecated: use --group-id orders-app\./)
    expect(flags({ 'consumer-group': 'orders-app', 'group-id': 'old-worker' }).deprecation).toMatch(/use --group-id orders-app --worker-group-id old-worker\./)
    const error = (() => {
      try {
        flags({ 'group-id': 'g', 'worker-group-id': 'g' })
      } catch (caught) {
        return caught as DetourConfigError
      }
    })()
    expect(`${error?.option} ${error?.reason}`).toBe("--worker-group-id must differ from --group-id (the worker must not join the main app's group)")
    expect(() => flags({ 'consumer-group': 'a', 'group-id': 'b', 'worker-group-id': 'c' })).toThrow(/--consumer-group.*cannot be combined with both --group-id and --worker-group-id/)
  })
})

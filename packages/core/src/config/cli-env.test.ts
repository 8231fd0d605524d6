import { describe, expect, it } from 'vitest'
import { dropForeignEnvArguments } from './cli-env.js'

describe('dropForeignEnvArguments', () => {
  it('drops arguments that came only from DETOUR_* variables the command does not know, keeps known and typed ones', () => {
    const argv: Record<string, unknown> = { brokers: 'k:9092', handler: './h.js', groupId: 'g', 'group-id': 'g', url: 'http://w' }
    const env = { DETOUR_BROKERS: 'k:9092', DETOUR_HANDLER: './h.js', DETOUR_GROUP_ID: 'g', DETOUR_URL: 'http://w', PATH: '/bin' }
    dropForeignEnvArguments(argv, { key: { brokers: true, 'group-id': true }, alias: {} }, ['inspect', '--url=http://w'], env)
    expect(argv).toEqual({ brokers: 'k:9092', groupId: 'g', 'group-id': 'g', url: 'http://w' })
  })
})

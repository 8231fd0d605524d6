import { describe, expect, it } from 'vitest'
import yargs from 'yargs'
import { defaultOptions, resolveSettings, type RetryWorkerSettings } from '../worker/retry-worker-options.js'
import { envName, type SettingDefinition } from './setting.js'
import { WORKER_SETTINGS } from './worker-settings.js'
import { SettingsError, redactedSettings, toRunSettings } from './run-settings.js'
import { settingOptions } from './yargs-options.js'

const SETTINGS: readonly SettingDefinition[] = WORKER_SETTINGS
const REQUIRED = ['--brokers', 'kafka:9092', '--group-id', 'orders-app', '--topics', 'orders', '--handler', 'h.js']

/** Parses like `detour-retry run` (without the environment), then converts. */
function parse(argv: readonly string[]) {
  return toRunSettings(settingOptions(yargs([...argv])).strict().exitProcess(false).parseSync())
}

function get(object: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], object)
}

describe('the settings table', () => {
  it('declares each flag once, its variable as yargs .env("DETOUR") reads it, and its aliases apart', () => {
    const names = SETTINGS.flatMap((s) => [s.flag, ...(s.aliases ?? [])])
    expect(new Set(names).size).toBe(names.length)
    for (const setting of SETTINGS) expect(setting.env, setting.flag).toBe(envName(setting.flag))
  })

  it('defaults of worker options are the worker\'s own defaults', () => {
    const settings = parse(REQUIRED)
    expect(settings.worker).toMatchObject({
      maxAttempts: defaultOptions.maxAttempts,
      maxInFlight: defaultOptions.maxInFlight,
      handlerTimeoutMs: defaultOptions.handlerTimeoutMs,
      purgeResolvedRecords: defaultOptions.purgeResolvedRecords,
      exhaustedPolicy: defaultOptions.exhaustedPolicy,
      consumerConfig: { maxWaitTimeInMs: defaultOptions.consumerConfig.maxWaitTimeInMs },
    })
  })

  it('ranges of worker options are the ones the worker enforces (the Helm schema carries them)', () => {
    const base = parse(REQUIRED).worker
    for (const setting of SETTINGS) {
      const min = setting.min
      if (!('option' in setting.target) || min === undefined) continue
      const path = setting.target.option
      const at = (value: number): RetryWorkerSettings => {
        const copy = structuredClone(base) as Record<string, unknown>
        const keys = path.split('.')
        const parent = keys.slice(0, -1).reduce<Record<string, unknown>>((node, key) => node[key] as Record<string, unknown>, copy)
        parent[keys.at(-1)!] = value
        // The cross-field rules must not be what rejects the value.
        if (path === 'backoff.initialDelayMs') (copy.backoff as Record<string, number>).maxDelayMs = value
        if (path === 'backoff.maxDelayMs') (copy.backoff as Record<string, number>).initialDelayMs = value
        return copy as RetryWorkerSettings
      }
      // (The least session timeout is a heartbeat interval above the least heartbeat interval.)
      if (path !== 'consumerConfig.sessionTimeout') expect(() => resolveSettings(at(min)), `--${setting.flag} ${min}`).not.toThrow()
      const below = setting.type === 'integer' ? min - 1 : min - 0.5
      expect(() => resolveSettings(at(below)), `--${setting.flag} ${below}`).toThrow()
      if (setting.max !== undefined) expect(() => resolveSettings(at(setting.max! + 1)), `--${setting.flag} above max`).toThrow()
    }
  })

  it('converts flags to the worker\'s options, the connection and the command line\'s own settings', () => {
    const settings = parse([
      ...REQUIRED,
      '--backoff', 'constant',
      '--initial-delay-ms', '250',
      '--session-timeout-ms', '6000',
      '--heartbeat-interval-ms', '500',
      '--retry-topic-template', '{topic}.{groupId}.retry',
      '--sasl-mechanism', 'plain', '--sasl-username', 'u', '--sasl-password', 'secret-password',
      '--admin-token', 'secret-token',
      '--no-purge-resolved-records',
      '--close-timeout-ms', '2000',
    ])
    expect(settings.worker).toMatchObject({
      groupId: 'orders-app',
      workerGroupId: 'orders-app-detour-retry',
      topics: ['orders'],
      backoff: { type: 'constant', delayMs: 250 },
      consumerConfig: { sessionTimeout: 6000, heartbeatInterval: 500 },
      topicNaming: { retry: '{topic}.{groupId}.retry' },
      purgeResolvedRecords: false,
      closeTimeoutMs: 2000,
    })
    expect(settings.worker).not.toHaveProperty('consumerGroup')
    expect(settings.connection).toMatchObject({ brokers: ['kafka:9092'], clientId: 'detour-retry', saslMechanism: 'plain', saslUsername: 'u' })
    expect(settings.cli).toMatchObject({ handlerPath: 'h.js', metricsPort: 9464, adminToken: 'secret-token', logLevel: 'info' })
    const logged = JSON.stringify(redactedSettings(settings))
    expect(logged).not.toContain('secret-password')
    expect(logged).not.toContain('secret-token')
    expect(redactedSettings(settings)).toMatchObject({ saslPassword: '[redacted]', adminToken: '[redacted]', groupId: 'orders-app', maxAttempts: 10 })
  })

  it('reports wrong values in flag terms: types and the command line\'s ranges from the table, the rest from the worker', () => {
    const error = (argv: readonly string[]): string => {
      try {
        parse([...REQUIRED, ...argv])
      } catch (caught) {
        expect(caught).toBeInstanceOf(SettingsError)
        return (caught as Error).message
      }
      throw new Error(`accepted ${argv.join(' ')}`)
    }
    expect(error(['--max-attempts', '1.5'])).toBe('--max-attempts must be an integer, got 1.5')
    expect(error(['--metrics-port', '70000'])).toBe('--metrics-port must be at most 65535, got 70000')
    expect(error(['--admin-token', ' '])).toBe('--admin-token must not be empty')
    expect(error(['--max-attempts', '0'])).toBe('--max-attempts must be an integer >= 1, got 0')
    expect(error(['--initial-delay-ms', '5000', '--max-delay-ms', '100'])).toBe('--initial-delay-ms (5000) must not exceed --max-delay-ms (100)')
    expect(error(['--heartbeat-interval-ms', '1000', '--session-timeout-ms', '1000'])).toBe('--heartbeat-interval-ms (1000) must be below --session-timeout-ms (1000)')
    expect(error(['--worker-group-id', 'orders-app'])).toMatch(/^--worker-group-id must differ from --group-id/)
    expect(error(['--sasl-username', 'u'])).toMatch(/^--sasl-username\/--sasl-password need --sasl-mechanism/)
    expect(error(['--error-topic-template', '{topic}/dlt'])).toMatch(/^--error-topic-template "orders\/dlt" is not a valid Kafka topic name/)
  })

  it('keeps the deprecated --consumer-group: --group-id then names the worker\'s group', () => {
    const settings = parse(['--brokers', 'k:1', '--topics', 'orders', '--handler', 'h.js', '--consumer-group', 'orders-app', '--group-id', 'old-worker'])
    expect(settings.worker).toMatchObject({ groupId: 'orders-app', workerGroupId: 'old-worker' })
    expect(settings.deprecations).toEqual([expect.stringMatching(/^--consumer-group \(DETOUR_CONSUMER_GROUP\) is deprecated: use --group-id orders-app --worker-group-id old-worker/) as unknown])
  })

  it('sets every worker option that has a default, at the path the worker reads', () => {
    const worker = parse(REQUIRED).worker
    for (const setting of SETTINGS) {
      if ('option' in setting.target && setting.default !== undefined) expect(get(worker, setting.target.option), setting.flag).toBe(setting.default)
    }
  })
})

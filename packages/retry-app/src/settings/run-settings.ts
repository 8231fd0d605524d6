import {
  DetourConfigError,
  checkConnectionSettings,
  resolveGroupIdFlags,
  type KafkaConnectionSettings,
} from '@detour/core'
import { resolveSettings, type RetryWorkerSettings } from '../worker/retry-worker-options.js'
import { FORMAT_PATTERNS, type CliSettings, type SettingDefinition } from './setting.js'
import { WORKER_SETTINGS } from './worker-settings.js'

const SETTINGS: readonly SettingDefinition[] = WORKER_SETTINGS

/** Settings of `detour-retry run`, from its flags and `DETOUR_*` variables (after validation). */
export interface RunSettings {
  /** For core's `createKafka`. */
  readonly connection: KafkaConnectionSettings
  /** The worker's options, but the kafkajs client, the handler, the logger and the registry. */
  readonly worker: RetryWorkerSettings
  readonly cli: CliSettings
  /** Deprecated flags that were used, with what to do instead (logged at start). */
  readonly deprecations: readonly string[]
}

/** A flag or variable with a wrong value: the message names the flag and says what to change. */
export class SettingsError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'SettingsError'
  }
}

/** Option path (`maxAttempts`, `backoff.initialDelayMs`) → `--flag`, for the worker's messages. */
const FLAG_OF_OPTION: ReadonlyMap<string, string> = new Map([
  ...SETTINGS.flatMap((s) => ('option' in s.target ? [[s.target.option, `--${s.flag}`] as const] : [])),
  // A constant backoff's delay is --initial-delay-ms.
  ['backoff.delayMs', '--initial-delay-ms'],
  ['backoff', '--backoff'],
])
const OPTION_PATHS = [...FLAG_OF_OPTION.keys()].filter((path) => /[A-Z.]/.test(path)).sort((a, b) => b.length - a.length)

/** The worker's message about an option, in the command line's words: option names become flags. */
export function inFlagTerms(error: DetourConfigError): string {
  let reason = error.reason
  for (const path of OPTION_PATHS) {
    reason = reason.replace(new RegExp(`(?<![\\w.{-])${path.replace(/\./g, '\\.')}(?![\\w}])`, 'g'), FLAG_OF_OPTION.get(path) ?? path)
  }
  return `${FLAG_OF_OPTION.get(error.option) ?? error.option} ${reason}`
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.')
  let node = target
  for (const key of keys.slice(0, -1)) node = (node[key] ??= {}) as Record<string, unknown>
  node[keys.at(-1) ?? path] = value
}

/** Type, range and format checks of one value, from the table. */
function checkValue(setting: SettingDefinition, value: unknown, range: boolean): void {
  const flag = `--${setting.flag}`
  if (value === undefined) return
  if (setting.type === 'integer' || setting.type === 'number') {
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new SettingsError(`${flag} must be a number, got ${JSON.stringify(value)}`)
    if (setting.type === 'integer' && !Number.isInteger(value)) throw new SettingsError(`${flag} must be an integer, got ${value}`)
    if (!range) return
    if (setting.min !== undefined && value < setting.min) throw new SettingsError(`${flag} must be at least ${setting.min}, got ${value}`)
    if (setting.max !== undefined && value > setting.max) throw new SettingsError(`${flag} must be at most ${setting.max}, got ${value}`)
    return
  }
  if (setting.type === 'list') {
    const items = value as readonly string[]
    if (setting.required && items.length === 0) throw new SettingsError(`${flag} must list at least one value`)
    if (range && setting.format) {
      const bad = items.find((item) => !new RegExp(FORMAT_PATTERNS[setting.format!]).test(item))
      if (bad !== undefined) throw new SettingsError(`${flag}: "${bad}" is not a ${setting.format}`)
    }
    return
  }
  if (range && setting.format && typeof value === 'string' && !new RegExp(FORMAT_PATTERNS[setting.format]).test(value)) {
    throw new SettingsError(setting.format === 'non-empty' ? `${flag} must not be empty` : `${flag}: "${value}" is not a ${setting.format}`)
  }
}

/**
 * Parsed flags (yargs, with the table's defaults) → the connection, the worker's options and the command
 * line's own settings, validated: types from the table for every setting; ranges and formats from the
 * table for the command line's own settings and the connection (core's `checkConnectionSettings`); the
 * worker's options by the worker's own validation (`resolveSettings`), its messages naming the flags.
 * Throws a {@link SettingsError}.
 */
export function toRunSettings(args: Readonly<Record<string, unknown>>): RunSettings {
  const worker: Record<string, unknown> = {}
  const connection: Record<string, unknown> = {}
  const cli: Record<string, unknown> = {}
  for (const setting of SETTINGS) {
    const value = args[setting.flag]
    const own = !('option' in setting.target)
    checkValue(setting, value, own)
    if ('option' in setting.target) setPath(worker, setting.target.option, value)
    else if ('connection' in setting.target) connection[setting.target.connection] = value
    else cli[setting.target.cli] = value
  }
  const deprecations: string[] = []
  try {
    checkConnectionSettings(connection as unknown as KafkaConnectionSettings)
    // core's group rule, in flag terms (the legacy middleware copied --consumer-group into --group-id).
    const groups = resolveGroupIdFlags({
      'group-id': args['group-id'] as string | undefined,
      'worker-group-id': args['worker-group-id'] as string | undefined,
      'consumer-group': args['consumer-group'] as string | undefined,
    })
    if (groups.deprecation !== undefined) deprecations.push(groups.deprecation)
    worker.groupId = groups.groupId
    worker.workerGroupId = groups.workerGroupId
    delete worker.consumerGroup
    const backoff = worker.backoff as { type: string; initialDelayMs: number }
    if (backoff.type === 'constant') worker.backoff = { type: 'constant', delayMs: backoff.initialDelayMs }
    resolveSettings(worker as RetryWorkerSettings)
  } catch (error) {
    if (error instanceof DetourConfigError) throw new SettingsError(inFlagTerms(error))
    throw error
  }
  return {
    connection: connection as unknown as KafkaConnectionSettings,
    worker: worker as RetryWorkerSettings,
    cli: cli as unknown as CliSettings,
    deprecations,
  }
}

/** The effective configuration for the start-up log line: secret settings replaced by `[redacted]`. */
export function redactedSettings(settings: RunSettings): Record<string, unknown> {
  const flat: Record<string, unknown> = { ...settings.worker, ...settings.connection, ...settings.cli }
  for (const setting of SETTINGS) {
    if (!setting.secret) continue
    const key = 'connection' in setting.target ? setting.target.connection : 'cli' in setting.target ? setting.target.cli : undefined
    if (key !== undefined && flat[key] !== undefined) flat[key] = '[redacted]'
  }
  return flat
}

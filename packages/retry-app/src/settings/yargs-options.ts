import type { Argv, Options } from 'yargs'
import { legacyGroupArguments } from '@detour/core'
import { envName, type SettingDefinition, type SettingSection } from './setting.js'
import { WORKER_SETTINGS } from './worker-settings.js'

const SECTIONS: Readonly<Record<SettingSection, string>> = {
  kafka: 'Kafka connection:',
  worker: 'Worker:',
  retry: 'Retries and backoff:',
  operations: 'Operations:',
}

/** Splits `a,b c` style lists (flags may repeat; environment variables hold one string). */
export function list(values: unknown): string[] {
  const raw = Array.isArray(values) ? (values as unknown[]) : [values]
  return raw
    .flatMap((value) => (typeof value === 'string' || typeof value === 'number' ? String(value).split(/[\s,]+/) : []))
    .map((value) => value.trim())
    .filter((value) => value.length > 0)
}

/** The yargs option of a setting: type, choices, default, requirement and help (with its variables). */
export function yargsOption(setting: SettingDefinition): Options {
  const variables = [setting.env, ...(setting.aliases ?? []).map((alias) => `${envName(alias)} (deprecated)`)]
  const type = setting.type === 'boolean' ? 'boolean' : setting.type === 'integer' || setting.type === 'number' ? 'number' : setting.type === 'list' ? 'array' : 'string'
  return {
    type,
    ...(setting.type === 'list' ? { string: true, coerce: list } : {}),
    ...(setting.choices !== undefined ? { choices: [...setting.choices] } : {}),
    ...(setting.default !== undefined ? { default: setting.default } : {}),
    ...(setting.defaultDescription !== undefined ? { defaultDescription: setting.defaultDescription } : {}),
    ...(setting.required ? { demandOption: `set --${setting.flag} or ${setting.env}` } : {}),
    ...(setting.deprecated !== undefined ? { deprecated: setting.deprecated } : {}),
    ...(setting.aliases?.length ? { alias: [...setting.aliases] } : {}),
    describe: `${setting.description} [env: ${variables.join(', ')}]`,
    group: SECTIONS[setting.section],
  }
}

/** The flags of `detour-retry run`, from the settings table. Each one also reads its `DETOUR_*` variable. */
export function settingOptions<T>(yargs: Argv<T>): Argv<T> {
  let y = yargs.middleware(legacyGroupArguments, true)
  for (const setting of WORKER_SETTINGS as readonly SettingDefinition[]) y = y.option(setting.flag, yargsOption(setting))
  return y
}

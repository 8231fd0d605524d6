import type { KafkaConnectionSettings } from '@detour/core'

/**
 * The value type of a setting. `list` is a comma- or space-separated list (a flag may repeat; an
 * environment variable holds one string).
 */
export type SettingType = 'string' | 'integer' | 'number' | 'boolean' | 'enum' | 'list'

/** The `detour-retry run --help` section a setting is listed in. */
export type SettingSection = 'kafka' | 'worker' | 'retry' | 'operations'

/** Formats a string (or each list item) must have; the Helm schema carries them as patterns. */
export type SettingFormat = 'host-port' | 'topic' | 'topic-template' | 'non-empty'

/** Settings of the command line that are not worker options. */
export interface CliSettings {
  readonly handlerPath: string
  readonly metricsPort: number
  readonly metricsHost: string
  readonly adminToken: string | undefined
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent'
}

/** Where a setting's value goes. */
export type SettingTarget =
  /** A path into `RetryWorkerOptions` (`maxAttempts`, `backoff.initialDelayMs`, `consumerConfig.sessionTimeout`). */
  | { readonly option: string }
  /** A field of core's `KafkaConnectionSettings` (given to `createKafka`). */
  | { readonly connection: keyof KafkaConnectionSettings }
  /** A setting of the command line itself (the handler module, the HTTP server, logging). */
  | { readonly cli: keyof CliSettings }

/**
 * How the Helm chart (`deploy/helm/detour-retry-worker`) sets a setting. Every setting has one, so a new
 * flag cannot be forgotten in the chart.
 */
export type HelmMapping =
  /**
   * A value at `path` in values.yaml, put into the ConfigMap as the setting's variable. Its schema comes from
   * the setting. `nullable`: null (or "" for a string) leaves the variable out, so the worker's default
   * applies. `minimum`: a stricter least value for the chart (a container port cannot be 0).
   */
  | { readonly kind: 'value'; readonly path: string; readonly nullable?: boolean; readonly minimum?: number }
  /** Always this value (the chart decides it, e.g. the HTTP server listens on every interface). */
  | { readonly kind: 'fixed'; readonly value: string; readonly why: string }
  /**
   * Derived from chart values that are not the setting itself (`values` lists them): the ConfigMap lines are
   * `lines` (Go template), the values' schema is the chart's own.
   */
  | { readonly kind: 'derived'; readonly values: readonly string[]; readonly lines: readonly string[] }
  /** Read from a Kubernetes Secret by the Deployment (`secretKeyRef`), never put into the ConfigMap. */
  | { readonly kind: 'secret'; readonly values: readonly string[] }

/**
 * One setting of the retry worker, declared once: its flag and environment variable, type, default,
 * description, validation, where the value goes and how the Helm chart sets it.
 */
export interface SettingDefinition {
  /** The flag without its dashes: `max-attempts` is `--max-attempts`. */
  readonly flag: string
  /** Old flag names that still work (each with its own `DETOUR_*` variable); shown as deprecated. */
  readonly aliases?: readonly string[]
  /** The environment variable: always `DETOUR_` + the flag in upper snake case (yargs' `.env('DETOUR')`). */
  readonly env: string
  readonly type: SettingType
  /** The values of an `enum` setting. */
  readonly choices?: readonly string[]
  /** The default shown in `--help` and applied by the command line; absent: unset (or required). */
  readonly default?: string | number | boolean
  /** Shown instead of the default when the default is computed (`<group-id>-detour-retry`). */
  readonly defaultDescription?: string
  readonly required?: boolean
  readonly description: string
  readonly section: SettingSection
  /** Least value of a number (inclusive). */
  readonly min?: number
  /** Greatest value of a number (inclusive). */
  readonly max?: number
  readonly format?: SettingFormat
  /** A credential: never logged, and the chart reads it from a Secret. */
  readonly secret?: boolean
  /** The setting itself is deprecated: what to use instead. */
  readonly deprecated?: string
  readonly target: SettingTarget
  readonly helm: HelmMapping
}

/** `max-attempts` → `DETOUR_MAX_ATTEMPTS`. */
export function envName(flag: string): string {
  return `DETOUR_${flag.replace(/-/g, '_').toUpperCase()}`
}

/** The patterns of the formats, for the Helm schema (the command line checks them through the worker). */
export const FORMAT_PATTERNS: Readonly<Record<SettingFormat, string>> = {
  'host-port': '^[^\\s,:]+:[0-9]{1,5}$',
  topic: '^[a-zA-Z0-9._-]{1,249}$',
  'topic-template': '^([a-zA-Z0-9._-]|\\{topic\\}|\\{groupId\\})*$',
  'non-empty': '\\S',
}

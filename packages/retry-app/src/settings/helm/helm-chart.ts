import { FORMAT_PATTERNS, type HelmMapping, type SettingDefinition } from '../setting.js'
import { WORKER_SETTINGS } from '../worker-settings.js'
import { CHART_SCHEMA_BASE } from './chart-schema.js'

/**
 * The Helm chart's files that follow from the settings table, and the settings reference: written by
 * `pnpm gen:helm`, compared with the checked-in files by `helm-chart.test.ts` (so CI fails when one of
 * them was edited by hand or the table changed without them).
 */

type Json = Record<string, unknown>
type ValueMapping = Extract<HelmMapping, { kind: 'value' }>

const SETTINGS: readonly SettingDefinition[] = WORKER_SETTINGS
const GENERATED_BY = 'packages/retry-app/src/settings/worker-settings.ts (pnpm gen:helm)'

function valueSettings(): Array<[SettingDefinition, ValueMapping]> {
  return SETTINGS.flatMap((s) => (s.helm.kind === 'value' ? [[s, s.helm] as [SettingDefinition, ValueMapping]] : []))
}

function describe(setting: SettingDefinition, mapping: ValueMapping): string {
  const parts = [`${setting.description} (${setting.env}, --${setting.flag}).`]
  if (setting.deprecated !== undefined) parts.push(`Deprecated: ${setting.deprecated}.`)
  if (mapping.nullable) {
    parts.push(setting.default !== undefined ? `null or empty: the worker's default (${JSON.stringify(setting.default)}).` : 'null or empty: not set.')
  }
  return parts.join(' ')
}

/** The JSON schema of one setting's value in values.yaml. */
export function settingSchema(setting: SettingDefinition, mapping: ValueMapping): Json {
  const nullable = mapping.nullable === true
  const range = {
    ...(mapping.minimum ?? setting.min) !== undefined ? { minimum: mapping.minimum ?? setting.min } : {},
    ...(setting.max !== undefined ? { maximum: setting.max } : {}),
  }
  const pattern = setting.format === undefined ? undefined : FORMAT_PATTERNS[setting.format]
  const description = describe(setting, mapping)
  switch (setting.type) {
    case 'integer':
    case 'number':
      return { type: nullable ? [setting.type, 'null'] : setting.type, ...range, description }
    case 'boolean':
      return { type: nullable ? ['boolean', 'null'] : 'boolean', description }
    case 'enum':
      return { enum: [...(nullable ? ['', null] : []), ...(setting.choices ?? [])], description }
    case 'string':
      return {
        type: nullable ? ['string', 'null'] : 'string',
        ...(pattern !== undefined ? { pattern: nullable ? `^$|${pattern}` : pattern } : {}),
        description,
      }
    case 'list':
      return { type: 'array', items: { type: 'string', ...(pattern !== undefined ? { pattern } : {}) }, uniqueItems: true, description }
  }
}

/** values.schema.json: the chart's own schema with each setting's schema at its value path. */
export function valuesSchema(): Json {
  const schema = structuredClone(CHART_SCHEMA_BASE)
  for (const [setting, mapping] of valueSettings()) {
    const keys = mapping.path.split('.')
    let node = schema
    for (const key of keys.slice(0, -1)) {
      const properties = node.properties as Json | undefined
      node = properties?.[key] as Json
      if (node === undefined) throw new Error(`values.schema.json: no object for ${mapping.path} (--${setting.flag}) in chart-schema.ts`)
    }
    const properties = node.properties as Json
    const last = keys.at(-1)!
    const placeholder = properties[last] as Json | undefined
    if (placeholder === undefined || Object.keys(placeholder).length > 0) {
      throw new Error(`values.schema.json: chart-schema.ts needs an empty placeholder at ${mapping.path} (--${setting.flag})`)
    }
    properties[last] = settingSchema(setting, mapping)
  }
  const empty = findPlaceholders(schema, '')
  if (empty.length > 0) throw new Error(`values.schema.json: placeholders without a setting: ${empty.join(', ')}`)
  return schema
}

function findPlaceholders(node: unknown, path: string): string[] {
  if (typeof node !== 'object' || node === null || Array.isArray(node)) return []
  const properties = (node as Json).properties as Json | undefined
  if (properties === undefined) return []
  return Object.entries(properties).flatMap(([key, child]) => {
    const here = path === '' ? key : `${path}.${key}`
    if (typeof child === 'object' && child !== null && Object.keys(child).length === 0) return [here]
    return findPlaceholders(child, here)
  })
}

function configMapLines(setting: SettingDefinition): string[] {
  const mapping = setting.helm
  switch (mapping.kind) {
    case 'fixed':
      return [`# ${mapping.why}`, `${setting.env}: ${JSON.stringify(mapping.value)}`]
    case 'derived':
      return [...mapping.lines]
    case 'secret':
      return [`{{- /* ${setting.env}: from a Secret (${mapping.values.join(', ')}), set in deployment.yaml */}}`]
    case 'value': {
      const value = `.Values.${mapping.path}`
      const render = (v: string): string => {
        switch (setting.type) {
          case 'list':
            return `{{ join "," ${v} | quote }}`
          case 'integer':
            return `{{ ${v} | int64 | quote }}`
          case 'number':
            return `{{ ${v} | toString | quote }}`
          default:
            return `{{ ${v} | quote }}`
        }
      }
      if (!mapping.nullable) return [`${setting.env}: ${render(value)}`]
      if (setting.type === 'string' || setting.type === 'enum') return [`{{- with ${value} }}`, `${setting.env}: ${render('.')}`, '{{- end }}']
      return [`{{- if not (kindIs "invalid" ${value}) }}`, `${setting.env}: ${render(value)}`, '{{- end }}']
    }
  }
}

/** templates/configmap.yaml: every setting's variable, from its value (secrets come from deployment.yaml). */
export function configMapTemplate(): string {
  const header = [
    '{{- /*',
    `GENERATED from ${GENERATED_BY}: do not edit.`,
    'The non-secret settings of `detour-retry run` as DETOUR_* environment variables. A nullable value left',
    "null (or a string left empty) is not set, so the worker's default applies. The Deployment's checksum/config",
    'annotation rolls the pods when this changes.',
    '*/ -}}',
    'apiVersion: v1',
    'kind: ConfigMap',
    'metadata:',
    '  name: {{ include "detour-retry-worker.fullname" . }}',
    '  namespace: {{ .Release.Namespace }}',
    '  labels:',
    '    {{- include "detour-retry-worker.labels" . | nindent 4 }}',
    'data:',
  ]
  const body = SETTINGS.flatMap((setting) => configMapLines(setting).map((line) => `  ${line}`))
  return `${[...header, ...body].join('\n')}\n`
}

function helmColumn(setting: SettingDefinition): string {
  const mapping = setting.helm
  switch (mapping.kind) {
    case 'value':
      return `\`${mapping.path}\`${mapping.nullable ? ' (null: default)' : ''}`
    case 'fixed':
      return `always \`${mapping.value}\``
    case 'derived':
      return `from ${mapping.values.map((v) => `\`${v}\``).join(', ')}`
    case 'secret':
      return `Secret: ${mapping.values.map((v) => `\`${v}\``).join(', ')}`
  }
}

/** SETTINGS.md: the reference of every setting (flag, variable, Helm value, default, meaning). */
export function settingsReference(): string {
  const cell = (text: string): string => text.replace(/\|/g, '\\|')
  const rows = SETTINGS.map((s) => {
    const flags = [`\`--${s.flag}\``, ...(s.aliases ?? []).map((a) => `\`--${a}\` (deprecated)`)].join(', ')
    const value = s.required ? 'required' : s.defaultDescription !== undefined ? `\`${s.defaultDescription}\`` : s.default !== undefined ? `\`${String(s.default)}\`` : ''
    const range = [
      s.choices !== undefined ? s.choices.map((c) => `\`${c}\``).join(', ') : '',
      s.min !== undefined || s.max !== undefined ? `${s.min ?? ''}..${s.max ?? ''}` : '',
    ].filter(Boolean)
    const meaning = `${s.deprecated !== undefined ? '**Deprecated**: ' : ''}${s.description}${range.length > 0 ? ` (${range.join('; ')})` : ''}${s.secret ? '. Secret: never logged' : ''}`
    return `| ${flags} | \`${s.env}\` | ${helmColumn(s)} | ${value} | ${cell(meaning)} |`
  })
  return [
    '# `detour-retry run` settings',
    '',
    `<!-- GENERATED from ${GENERATED_BY}: do not edit. -->`,
    '',
    'Each setting is a flag, an environment variable (flags win) and a value of the Helm chart',
    '`deploy/helm/detour-retry-worker`. `detour-retry run --help` shows the same list.',
    '',
    '| Flag | Environment | Helm value | Default | Meaning |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n')
}

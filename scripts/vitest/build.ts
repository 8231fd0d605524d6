/**
 * Global set-up of the `e2e` test project: the suites run the compiled main app, handler and retry worker
 * as child processes, so the workspace is built once (incrementally: fast when up to date) before them.
 * The unit and broker tiers run the TypeScript sources and need no build.
 */
import { spawnSync } from 'node:child_process'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

export default function setup(): void {
  const started = Date.now()
  const tsc = spawnSync(process.execPath, [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-b', join(repoRoot, 'tsconfig.build.json')], {
    cwd: repoRoot,
    encoding: 'utf8',
  })
  if (tsc.status !== 0) throw new Error(`tsc -b tsconfig.build.json failed:\n${tsc.stdout}${tsc.stderr}`)
  console.log(`build: up to date in ${((Date.now() - started) / 1000).toFixed(1)} s`)
}

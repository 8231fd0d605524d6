import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository root (this file is `e2e/src/system/paths.ts` or `e2e/dist/system/paths.js`). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')

/** The compiled programs the orchestrator runs as child processes. */
export const programs = {
  mainApp: join(repoRoot, 'e2e/dist/demo/main-app.js'),
  handler: join(repoRoot, 'e2e/dist/demo/example-handler.js'),
  preload: join(repoRoot, 'e2e/dist/system/child-preload.js'),
  retryWorker: join(repoRoot, 'packages/retry-app/dist/cli/bin.js'),
  stallWatchdogWorker: join(repoRoot, 'e2e/dist/system/stall-watchdog-worker.js'),
  stopRace: join(repoRoot, 'e2e/dist/system/kafkajs-stop-race.js'),
} as const

function newest(dir: string, skip: (name: string) => boolean): number {
  let max = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (skip(entry.name)) continue
    const path = join(dir, entry.name)
    max = Math.max(max, entry.isDirectory() ? newest(path, skip) : statSync(path).mtimeMs)
  }
  return max
}

function stale(): boolean {
  if (Object.values(programs).some((path) => !existsSync(path))) return true
  // tsc -b records a build in the project's build info; outputs it did not need to rewrite keep their old times.
  const buildInfo = join(repoRoot, 'e2e/tsconfig.build.tsbuildinfo')
  if (!existsSync(buildInfo)) return true
  // Only this package's sources: `pnpm test` builds the packages before running the suites.
  return newest(join(repoRoot, 'e2e/src'), (name) => name.endsWith('.test.ts') || name === 'test-support.ts') > statSync(buildInfo).mtimeMs
}

/**
 * The suites run the compiled main app, handler and worker as child processes: build them when they
 * are missing or older than their sources (`pnpm test` builds first anyway). Test files run in
 * parallel, so the build is serialised with a lock directory.
 */
export function ensureBuilt(): void {
  if (!stale()) return
  const lock = join(tmpdir(), `detour-e2e-build-${Buffer.from(repoRoot).toString('hex').slice(-32)}.lock`)
  const deadline = Date.now() + 180_000
  for (;;) {
    try {
      mkdirSync(lock)
      break
    } catch {
      if (Date.now() > deadline) throw new Error(`Timed out waiting for the build lock ${lock} (remove it if no build runs)`)
      spawnSync(process.execPath, ['-e', 'setTimeout(() => {}, 200)'])
    }
  }
  try {
    if (!stale()) return
    const tsc = spawnSync(process.execPath, [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-b', join(repoRoot, 'e2e/tsconfig.build.json')], {
      cwd: repoRoot,
      encoding: 'utf8',
    })
    if (tsc.status !== 0) throw new Error(`tsc -b e2e/tsconfig.build.json failed:\n${tsc.stdout}${tsc.stderr}`)
  } finally {
    rmSync(lock, { recursive: true, force: true })
  }
}

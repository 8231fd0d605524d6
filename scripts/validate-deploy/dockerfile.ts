import { existsSync, readdirSync, statSync } from 'node:fs'
import { posix } from 'node:path'
import type { Report } from './report.js'
import type { Tools } from './tools.js'
import { parseYaml, read, str, asArray, walk } from './util.js'

interface DockerIgnore {
  add(patterns: string[]): DockerIgnore
  ignores(path: string): boolean
}

/** COPY sources exist and pass the Dockerfile's .dockerignore; `--from` stages exist; numeric USER; every workspace manifest copied. */
export async function checkDockerfile(file: string, tools: Tools, report: Report): Promise<void> {
  const text = read(file).replace(/\\\n/g, ' ')
  const ignoreFile = `${file}.dockerignore`
  let ignored = (_path: string): boolean => false
  if (existsSync(ignoreFile)) {
    const { default: dockerignore } = await tools.importTool<{ default: (options: { ignorecase: boolean }) => DockerIgnore }>('@balena/dockerignore')
    const ig = dockerignore({ ignorecase: false }).add(read(ignoreFile).split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')))
    ignored = (path) => ig.ignores(path)
  }
  const before = report.failures
  let count = 0
  const copied: string[] = []
  for (const [, args] of text.matchAll(/^COPY\s+(.+)$/gm)) {
    if (/--from=/.test(args!)) continue
    const parts = args!.split(/\s+/).filter((p) => !p.startsWith('--'))
    for (const src of parts.slice(0, -1)) {
      count++
      copied.push(src)
      if (!existsSync(src)) report.fail(`${file}: COPY source ${src} does not exist`)
      else {
        const files = statSync(src).isDirectory() ? walk(src).slice(0, 50) : [src]
        const dropped = files.filter((p) => ignored(p))
        if (dropped.length > 0) report.fail(`${file}: COPY ${src}: excluded by ${ignoreFile} (${dropped.slice(0, 3).join(', ')})`)
      }
    }
  }
  const stages = [...text.matchAll(/^FROM\s+\S+(?:\s+AS\s+(\S+))?/gim)].map((m) => m[1])
  for (const [, from] of text.matchAll(/--from=(\S+)/g)) if (!stages.includes(from)) report.fail(`${file}: COPY --from=${from}: no such stage`)
  if (!/^USER\s+\d+(:\d+)?\s*$/m.test(text)) report.fail(`${file}: the runtime stage must switch to a numeric non-root USER`)
  // pnpm install --frozen-lockfile needs every workspace project's manifest.
  if (/--frozen-lockfile/.test(text)) {
    const patterns = asArray((parseYaml(read('pnpm-workspace.yaml')) as { packages?: unknown }).packages).map(str)
    const projects = patterns.flatMap((pattern) =>
      pattern.endsWith('/*') ? walkDirs(pattern.slice(0, -2)).filter((dir) => existsSync(posix.join(dir, 'package.json'))) : [pattern],
    )
    for (const project of projects) {
      if (!copied.includes(posix.join(project, 'package.json'))) report.fail(`${file}: pnpm install --frozen-lockfile without ${project}/package.json (every workspace manifest must be copied)`)
    }
  }
  if (report.failures === before) {
    report.ok(`${file}: ${count} COPY sources exist${existsSync(ignoreFile) ? ` and pass ${posix.basename(ignoreFile)}` : ''}; every workspace manifest copied; stages ${stages.filter(Boolean).join(', ')}; numeric USER`)
  }
}

function walkDirs(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => posix.join(dir, entry.name))
}

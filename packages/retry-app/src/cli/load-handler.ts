import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { EachMessageHandler } from 'kafkajs'
import { DetourConfigError, type ErrorClassifier } from '@detour/core'

export interface LoadedHandler {
  readonly handler: EachMessageHandler
  readonly classify: ErrorClassifier | undefined
  /** The absolute path that was imported. */
  readonly path: string
}

type ModuleShape = { handler?: unknown; classify?: unknown; default?: unknown }

/**
 * Imports the user's handler module (a path relative to `cwd`). It must export `handler` (or a default
 * export that is the handler, or a default object with `handler`), and may export `classify`.
 */
export async function loadHandler(modulePath: string, cwd = process.cwd()): Promise<LoadedHandler> {
  const path = resolve(cwd, modulePath)
  let mod: ModuleShape
  try {
    mod = (await import(pathToFileURL(path).href)) as ModuleShape
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    throw new DetourConfigError('handler', `cannot import the handler module ${path}: ${reason}`)
  }
  const fallback = typeof mod.default === 'object' && mod.default !== null ? (mod.default as ModuleShape) : undefined
  const handler = mod.handler ?? (typeof mod.default === 'function' ? mod.default : fallback?.handler)
  if (typeof handler !== 'function') {
    throw new DetourConfigError(
      'handler',
      `${path} must export the main app handler as "handler" or as its default export (async ({ topic, partition, message }) => {...})`,
    )
  }
  const classify = mod.classify ?? fallback?.classify
  if (classify !== undefined && typeof classify !== 'function') {
    throw new DetourConfigError('handler', `${path} exports "classify" but it is not a function`)
  }
  return { handler: handler as EachMessageHandler, classify: classify as ErrorClassifier | undefined, path }
}

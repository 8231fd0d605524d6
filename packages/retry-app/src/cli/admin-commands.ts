import type { CliIo } from './run-command.js'

async function call(url: URL, init: RequestInit): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) })
  const text = await response.text()
  let body: unknown = text
  try {
    body = JSON.parse(text) as unknown
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, body }
}

function endpoint(base: string, path: string): URL {
  return new URL(path, base.endsWith('/') ? base : `${base}/`)
}

function authorization(adminToken: string | undefined): Record<string, string> {
  return adminToken === undefined ? {} : { authorization: `Bearer ${adminToken}` }
}

/** `detour-retry held`: prints the held groups of a running worker as JSON. */
export async function heldCommand(url: string, adminToken: string | undefined, io: CliIo): Promise<number> {
  try {
    const { status, body } = await call(endpoint(url, 'groups/held'), { method: 'GET', headers: authorization(adminToken) })
    if (status !== 200) {
      io.stderr.write(`detour-retry held: ${url} answered ${status}: ${JSON.stringify(body)}\n`)
      return 1
    }
    io.stdout.write(`${JSON.stringify(body, null, 2)}\n`)
    return 0
  } catch (error) {
    io.stderr.write(`detour-retry held: cannot reach ${url}: ${error instanceof Error ? error.message : String(error)}\n`)
    return 1
  }
}

/** `detour-retry release`: asks a running worker to release a held group (writes its tombstone). */
export async function releaseCommand(url: string, id: string, adminToken: string | undefined, io: CliIo): Promise<number> {
  try {
    const { status, body } = await call(endpoint(url, 'groups/release'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...authorization(adminToken) },
      body: JSON.stringify({ id }),
    })
    if (status !== 200) {
      io.stderr.write(`detour-retry release: ${url} answered ${status}: ${JSON.stringify(body)}\n`)
      return 1
    }
    io.stdout.write(`${JSON.stringify(body, null, 2)}\n`)
    return 0
  } catch (error) {
    io.stderr.write(`detour-retry release: cannot reach ${url}: ${error instanceof Error ? error.message : String(error)}\n`)
    return 1
  }
}

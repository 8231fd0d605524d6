import type { IHeaders } from 'kafkajs'

type HeaderValue = IHeaders[string]

function first(value: HeaderValue): Buffer | string | undefined {
  if (Array.isArray(value)) return value[0]
  return value ?? undefined
}

/** A header as a UTF-8 string (the first value when repeated), or `undefined`. */
export function headerString(headers: IHeaders | undefined, name: string): string | undefined {
  if (!headers) return undefined
  const value = first(headers[name])
  if (value === undefined) return undefined
  return typeof value === 'string' ? value : value.toString('utf8')
}

/** A header as bytes (the first value when repeated), or `undefined`. */
export function headerBuffer(headers: IHeaders | undefined, name: string): Buffer | undefined {
  if (!headers) return undefined
  const value = first(headers[name])
  if (value === undefined) return undefined
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : value
}

/**
 * Truncates a string to at most `maxBytes` UTF-8 bytes without splitting a character,
 * marking the cut with `…[truncated N bytes]`.
 */
export function truncateUtf8(text: string, maxBytes: number): string {
  const bytes = Buffer.byteLength(text, 'utf8')
  if (bytes <= maxBytes) return text
  const marker = `…[truncated ${bytes - maxBytes} bytes]`
  const budget = Math.max(0, maxBytes - Buffer.byteLength(marker, 'utf8'))
  let cut = Buffer.from(text, 'utf8').subarray(0, budget).toString('utf8')
  // A split multi-byte character decodes to U+FFFD at the end: drop it.
  if (cut.endsWith('\uFFFD')) cut = cut.slice(0, -1)
  return cut + marker
}

/** Copies headers, dropping the `detour-*` ones so a republished record never carries stale Detour headers. */
export function userHeaders(headers: IHeaders | undefined): IHeaders {
  const out: IHeaders = {}
  if (!headers) return out
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name.startsWith('detour-')) continue
    out[name] = value
  }
  return out
}

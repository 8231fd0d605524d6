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
  const encoded = Buffer.from(text, 'utf8')
  // Room for the marker: the dropped count never has more digits than `bytes`.
  const markerBytes = Buffer.byteLength(`…[truncated ${bytes} bytes]`, 'utf8')
  // No room for a marker at all: cut without one rather than exceed the limit.
  if (markerBytes > maxBytes) return utf8Prefix(encoded, maxBytes)
  const cut = utf8Prefix(encoded, maxBytes - markerBytes)
  return `${cut}…[truncated ${bytes - Buffer.byteLength(cut, 'utf8')} bytes]`
}

function utf8Prefix(encoded: Buffer, maxBytes: number): string {
  const cut = encoded.subarray(0, Math.max(0, maxBytes)).toString('utf8')
  // A split multi-byte character decodes to U+FFFD at the end: drop it.
  return cut.endsWith('\uFFFD') ? cut.slice(0, -1) : cut
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

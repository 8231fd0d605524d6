/**
 * Deterministic "random" decisions, so both sides of a comparison see exactly the same failures.
 * FNV-1a over the text, then a xorshift-multiply finaliser: uniform enough for a failure rate.
 */
export function unitHash(seed: number, text: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b) >>> 0
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35) >>> 0
  h ^= h >>> 16
  return (h >>> 0) / 0x1_0000_0000
}

/** A seeded failure plan: does attempt `attempt` (1-based) of message `id` fail? */
export function failurePlan(seed: number, rate: number): (id: string, attempt: number) => boolean {
  return (id, attempt) => unitHash(seed, `${id}#${attempt}`) < rate
}

/** Bytes that look like a payload (deterministic, printable). */
export function payload(size: number, salt: number): Buffer {
  const out = Buffer.allocUnsafe(size)
  let x = (salt * 2654435761) >>> 0 || 1
  for (let i = 0; i < size; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = 97 + ((x >>> 0) % 26)
  }
  return out
}

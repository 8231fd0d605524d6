import { describe, expect, it } from 'vitest'
import { headerBuffer, headerString, truncateUtf8, userHeaders } from './header-values.js'

const bytes = (text: string): number => Buffer.byteLength(text, 'utf8')
const isWellFormed = (text: string): boolean => Buffer.from(Buffer.from(text, 'utf8').toString('utf8'), 'utf8').toString('utf8') === text && !text.includes('\uFFFD')

describe('truncateUtf8', () => {
  it('returns text at or under the limit unchanged', () => {
    expect(truncateUtf8('', 0)).toBe('')
    expect(truncateUtf8('hello', 5)).toBe('hello')
    expect(truncateUtf8('hello', 6)).toBe('hello')
    expect(truncateUtf8('😀', 4)).toBe('😀')
    expect(truncateUtf8('x'.repeat(1024), 1024)).toBe('x'.repeat(1024))
  })

  it('truncates one byte over the limit, with an exact marker', () => {
    // 101 bytes; the marker reserves room for "…[truncated 101 bytes]" (24 bytes) → 76 bytes of text kept.
    const out = truncateUtf8('a'.repeat(101), 100)
    expect(out).toBe(`${'a'.repeat(76)}…[truncated 25 bytes]`)
    expect(bytes(out)).toBeLessThanOrEqual(100)
  })

  it('reports the number of bytes actually dropped', () => {
    const text = 'b'.repeat(5000)
    const out = truncateUtf8(text, 1024)
    const kept = out.slice(0, out.indexOf('…'))
    expect(kept).toBe('b'.repeat(kept.length))
    expect(out).toBe(`${kept}…[truncated ${5000 - kept.length} bytes]`)
    expect(bytes(out)).toBeLessThanOrEqual(1024)
    expect(bytes(out)).toBeGreaterThanOrEqual(1020)
  })

  it('never splits an emoji at the cut', () => {
    // 5 ASCII bytes then 4-byte emoji; cut points land at every offset inside an emoji.
    const text = `xxxxx${'😀'.repeat(10)}`
    for (let limit = 0; limit < bytes(text); limit++) {
      const out = truncateUtf8(text, limit)
      expect(bytes(out), `limit ${limit}`).toBeLessThanOrEqual(limit)
      expect(isWellFormed(out), `limit ${limit}: ${out}`).toBe(true)
      const kept = out.includes('…') ? out.slice(0, out.indexOf('…')) : out
      expect(text.startsWith(kept), `limit ${limit}`).toBe(true)
    }
    // 45 bytes; the marker reserves 23 ("…[truncated 45 bytes]"). 23 + 5 + 4 + 4 = 36 fits two emoji exactly.
    expect(truncateUtf8(text, 36)).toBe('xxxxx😀😀…[truncated 32 bytes]')
    expect(truncateUtf8(text, 35)).toBe('xxxxx😀…[truncated 36 bytes]')
    expect(truncateUtf8(text, 32)).toBe('xxxxx😀…[truncated 36 bytes]')
    expect(truncateUtf8(text, 31)).toBe('xxxxx…[truncated 40 bytes]')
  })

  it('never exceeds a limit smaller than the marker', () => {
    expect(truncateUtf8('abcdef', 3)).toBe('abc')
    expect(truncateUtf8('abcdef', 0)).toBe('')
    expect(truncateUtf8('é€😀', 4)).toBe('é') // 2 bytes; the euro sign (3 bytes) would not fit
  })

  it('handles 2- and 3-byte characters at the cut', () => {
    for (const ch of ['é', '€', '中']) {
      const text = ch.repeat(400)
      for (const limit of [50, 51, 52, 53, 100]) {
        const out = truncateUtf8(text, limit)
        expect(bytes(out)).toBeLessThanOrEqual(limit)
        expect(isWellFormed(out)).toBe(true)
        expect(out).toMatch(/…\[truncated \d+ bytes\]$/)
        const kept = out.slice(0, out.indexOf('…'))
        expect(out.endsWith(`[truncated ${bytes(text) - bytes(kept)} bytes]`)).toBe(true)
      }
    }
  })
})

describe('headerString / headerBuffer', () => {
  const headers = {
    s: 'text',
    b: Buffer.from('bytes'),
    bin: Buffer.from([0xff, 0x00]),
    arr: [Buffer.from('first'), 'second'],
    arrs: ['one', Buffer.from('two')],
    empty: [] as string[],
    none: undefined,
    nul: null as unknown as string,
  }

  it('reads strings', () => {
    expect(headerString(headers, 's')).toBe('text')
    expect(headerBuffer(headers, 's')).toEqual(Buffer.from('text'))
  })

  it('reads Buffers', () => {
    expect(headerString(headers, 'b')).toBe('bytes')
    expect(headerBuffer(headers, 'b')).toBe(headers.b)
    expect(headerBuffer(headers, 'bin')).toEqual(Buffer.from([0xff, 0x00]))
  })

  it('takes the first of repeated values', () => {
    expect(headerString(headers, 'arr')).toBe('first')
    expect(headerBuffer(headers, 'arr')).toEqual(Buffer.from('first'))
    expect(headerString(headers, 'arrs')).toBe('one')
    expect(headerBuffer(headers, 'arrs')).toEqual(Buffer.from('one'))
  })

  it('returns undefined for missing, empty-array, undefined and null values, and missing headers', () => {
    for (const name of ['missing', 'empty', 'none', 'nul']) {
      expect(headerString(headers, name), name).toBeUndefined()
      expect(headerBuffer(headers, name), name).toBeUndefined()
    }
    expect(headerString(undefined, 's')).toBeUndefined()
    expect(headerBuffer(undefined, 's')).toBeUndefined()
  })

  it('keeps an empty value distinct from a missing one', () => {
    expect(headerString({ e: '' }, 'e')).toBe('')
    expect(headerBuffer({ e: Buffer.alloc(0) }, 'e')).toEqual(Buffer.alloc(0))
  })
})

describe('userHeaders', () => {
  it('copies user headers by reference and drops detour-* and undefined ones', () => {
    const trace = Buffer.from('00-abc-01')
    const multi = ['a', Buffer.from('b')]
    const out = userHeaders({ traceparent: trace, multi, 'detour-id': 'x/0/1', 'detour-reason': 'failure', gone: undefined, Detour: 'kept' })
    expect(out).toEqual({ traceparent: trace, multi, Detour: 'kept' })
    expect(out.traceparent).toBe(trace)
    expect(out.multi).toBe(multi)
  })

  it('returns a fresh empty object without headers', () => {
    expect(userHeaders(undefined)).toEqual({})
  })
})

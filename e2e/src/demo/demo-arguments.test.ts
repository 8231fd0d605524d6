import { describe, expect, it } from 'vitest'
import { CI_PRESET, demoArguments, parseDuration, parseSecondsRange } from './demo-arguments.js'

describe('demoArguments', () => {
  it('drops the leading -- that pnpm passes on (pnpm demo -- --chaos)', () => {
    expect(demoArguments(['--', '--chaos', '--messages', '20000'])).toEqual(['--chaos', '--messages', '20000'])
  })

  it('keeps the words as they are without it (pnpm demo --chaos)', () => {
    expect(demoArguments(['--chaos', '--seed', '7'])).toEqual(['--chaos', '--seed', '7'])
  })

  it('keeps a later -- (its positionals are then rejected by the demo)', () => {
    expect(demoArguments(['--chaos', '--', 'extra'])).toEqual(['--chaos', '--', 'extra'])
  })

  it('expands --ci in place, so options after it override the preset', () => {
    expect(demoArguments(['--', '--ci', '--seed', '9'])).toEqual([...CI_PRESET, '--seed', '9'])
    expect(demoArguments(['--messages', '10', '--ci'])).toEqual(['--messages', '10', ...CI_PRESET])
    expect(demoArguments(['--chaos', '--', '--ci'])).toEqual(['--chaos', '--', '--ci'])
  })
})

describe('parseDuration', () => {
  it('reads units, combinations and plain seconds', () => {
    expect(parseDuration('10m')).toBe(600_000)
    expect(parseDuration('90s')).toBe(90_000)
    expect(parseDuration('1h30m')).toBe(5_400_000)
    expect(parseDuration('1500ms')).toBe(1500)
    expect(parseDuration('45')).toBe(45_000)
    expect(parseDuration('2.5m')).toBe(150_000)
  })

  it('rejects what is not a duration', () => {
    for (const text of ['', 'ten minutes', '10 m', '10d', 'm', '10m!']) expect(() => parseDuration(text), text).toThrow(/is not a duration/)
  })
})

describe('parseSecondsRange', () => {
  it('reads min-max seconds as milliseconds', () => {
    expect(parseSecondsRange('3-8')).toEqual([3000, 8000])
    expect(parseSecondsRange('2.5 - 6')).toEqual([2500, 6000])
    expect(parseSecondsRange('5-5')).toEqual([5000, 5000])
  })

  it('rejects a reversed or malformed range', () => {
    for (const text of ['8-3', '3', '3-', '-3-8', 'a-b']) expect(() => parseSecondsRange(text), text).toThrow(/is not a range/)
  })
})

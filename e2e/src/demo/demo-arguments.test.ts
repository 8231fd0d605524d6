import { describe, expect, it } from 'vitest'
import { demoArguments } from './demo-arguments.js'

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
})

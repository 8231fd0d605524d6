import { median, round } from '../support/stats.js'
import type { Figure, Goal } from './types.js'

export interface FigureInput {
  readonly name: string
  readonly unit: string
  readonly values: readonly number[]
  readonly baselines?: readonly number[]
  readonly baselineUnit?: string
  readonly goal?: Goal
  readonly workload: string
  readonly note?: string
}

function describeGoal(goal: Goal): string {
  return `${goal.on} ${goal.op === '>=' ? '≥' : '≤'} ${goal.target}`
}

/**
 * The median of the per-repetition ratios. Repetition i of both sides ran back to back, so a change of
 * machine load in the middle of a run weighs on both sides of a pair alike: more robust than the ratio
 * of the two medians (which it equals when the load is steady).
 */
function pairedRatio(values: readonly number[], baselines: readonly number[] | undefined): number | null {
  if (!baselines || baselines.length !== values.length || values.length === 0) return null
  if (baselines.some((b) => b === 0)) return null
  return median(values.map((v, i) => v / (baselines[i] as number)))
}

/** Builds a figure from per-repetition samples: medians, paired ratio, goal check. */
export function figure(input: FigureInput): Figure {
  const value = median(input.values)
  const baseline = input.baselines && input.baselines.length > 0 ? median(input.baselines) : null
  const ratio = pairedRatio(input.values, input.baselines) ?? (baseline !== null && baseline !== 0 ? value / baseline : null)
  let goalMet: boolean | null = null
  if (input.goal) {
    const actual = input.goal.on === 'ratio' ? ratio : value
    goalMet = actual === null ? null : input.goal.op === '>=' ? actual >= input.goal.target : actual <= input.goal.target
  }
  return {
    name: input.name,
    value: round(value),
    unit: input.unit,
    baseline: baseline === null ? null : round(baseline),
    ...(input.baselineUnit !== undefined ? { baselineUnit: input.baselineUnit } : {}),
    ratio: ratio === null ? null : round(ratio, 3),
    goal: input.goal ? describeGoal(input.goal) : null,
    goalMet,
    workload: input.workload,
    repetitions: input.values.length,
    samples: {
      value: input.values.map((v) => round(v)),
      ...(input.baselines ? { baseline: input.baselines.map((v) => round(v)) } : {}),
    },
    ...(input.note !== undefined ? { note: input.note } : {}),
  }
}

/**
 * Runs `reps` measured repetitions of two sides after `warmups` unmeasured ones, alternating which side
 * goes first (A B, B A, A B, ...) so slow drift of the machine or broker weighs on both sides alike.
 */
export async function alternate<T>(
  reps: number,
  warmups: number,
  sides: { readonly detour: (rep: number) => Promise<T>; readonly baseline: (rep: number) => Promise<T> },
  log: (message: string) => void,
): Promise<{ detour: T[]; baseline: T[] }> {
  const detour: T[] = []
  const baseline: T[] = []
  for (let rep = -warmups; rep < reps; rep++) {
    const order = (rep + warmups) % 2 === 0 ? (['baseline', 'detour'] as const) : (['detour', 'baseline'] as const)
    for (const side of order) {
      const result = await sides[side](rep)
      if (rep >= 0) (side === 'detour' ? detour : baseline).push(result)
      log(`  ${rep < 0 ? 'warm-up' : `rep ${rep + 1}/${reps}`} ${side}: ${JSON.stringify(result)}`)
    }
  }
  return { detour, baseline }
}

import type { DeadLetterRecord, OutputRecord } from './observations.js'
import type { ScenarioResult } from './scenario.js'

/** The first output record of each workload message of the run (`key:seq` → record). */
export function firstOutputs(result: ScenarioResult): Map<string, OutputRecord> {
  const first = new Map<string, OutputRecord>()
  for (const out of result.observations.outputs) {
    if (out.run !== result.workload.run) continue
    const ref = `${out.key}:${out.seq}`
    if (!first.has(ref)) first.set(ref, out)
  }
  return first
}

/** Error-topic records of one workload message. */
export function deadLettersOf(result: ScenarioResult, ref: string): DeadLetterRecord[] {
  return result.observations.deadLetters.filter((dl) => dl.run === result.workload.run && `${dl.key}:${dl.seq}` === ref)
}

/** Workload refs of one key, in order. */
export function refsOfKey(result: ScenarioResult, key: string): string[] {
  return result.workload.messages.filter((m) => m.key === key).map((m) => m.ref)
}

/** The key of a retry-topic record, for each redirected id. */
export function redirectedKeys(result: ScenarioResult, reason?: string): string[] {
  return [...result.observations.retries.values()].filter((r) => reason === undefined || r.reason === reason).map((r) => r.key ?? '(keyless)')
}

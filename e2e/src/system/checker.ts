import type { Observations, OutputRecord } from './observations.js'
import { findStaleReplays } from './stale-replays.js'
import type { Workload } from './workload.js'

/** What a run did, computed from the topics alone (never from the apps' own counters). */
export interface CheckReport {
  /** Workload messages. */
  readonly produced: number
  /** Messages that must be processed: every non-poison message. */
  readonly expected: number
  /** Distinct workload messages (`key:seq`) in the output topic. */
  readonly processed: number
  /** Output records beyond the first of their `key:seq` (at-least-once redeliveries). */
  readonly duplicates: number
  /**
   * First-processing order violations: a message resolved (processed or dead-lettered) for the first time
   * after a later message of its key was, or processed before an earlier message of its key was
   * dead-lettered.
   */
  readonly firstProcessingViolations: number
  readonly firstProcessingViolationSamples: readonly string[]
  /**
   * Stale replays: a message processed again (or processed after it was dead-lettered) once a later
   * message m of its key had been processed, without every processed message between it and m being
   * processed again after it (see `findStaleReplays`). A last-writer-wins handler ends in, or passes
   * through, an old state: an order violation too. Replays that go forward in order are only duplicates.
   */
  readonly staleReplays: number
  readonly staleReplaySamples: readonly string[]
  /** Non-poison messages neither processed nor dead-lettered. */
  readonly lost: number
  readonly lostSamples: readonly string[]
  /** Distinct workload messages in the error topic, by `detour-reason`. */
  readonly deadLettered: Readonly<Record<string, number>>
  readonly deadLetterRecords: number
  /** `key:seq` of messages dead-lettered as `exhausted`. */
  readonly exhausted: readonly string[]
  readonly poison: { readonly expected: number; readonly deadLettered: number; readonly processed: number; readonly missing: readonly string[] }
  /** Dead letters that should not exist: a non-poison message for another reason than `exhausted`, a poison one for another reason than `unprocessable`, or an error-topic record of this run that names no workload message. */
  readonly unexpectedDeadLetters: number
  readonly unexpectedDeadLetterSamples: readonly string[]
  /** Distinct ids sent to the retry topic, by the reason of their first retry record. */
  readonly redirected: Readonly<Record<string, number>>
  readonly retryRecords: number
  /** Ids whose last redirect-topic record is not a tombstone. */
  readonly pendingIds: number
  readonly pendingSamples: readonly string[]
  readonly unknownTombstones: number
  /** Output records of this run that name no workload message, or are not JSON. */
  readonly unknownOutputs: number
  /** First processing of each message, by who did it (`main-0`, `main-1`, `worker`). */
  readonly processedBy: Readonly<Record<string, number>>
  /**
   * End-to-end delay of the messages that went through the retry topic (their id has a retry record) and
   * were processed: from the source record's timestamp (the producer's send) to the first output's (the
   * handler's write). `undefined` when no retried message was processed.
   */
  readonly retriedDelay: RetriedDelay | undefined
  /**
   * The evidence of each broken order: for the keys of the first violations and stale replays (up to 10
   * keys), every record the topics hold about the key, in order (see {@link keyHistory}). Empty when the
   * order held.
   */
  readonly evidence: Readonly<Record<string, readonly string[]>>
}

export interface RetriedDelay {
  readonly count: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
  /** The message with the longest delay (`key:seq`). */
  readonly maxRef: string
}

const SAMPLES = 10

/** How a message was first resolved: its first output (with its log position) or its first dead letter. */
interface Resolution {
  readonly timestamp: number
  readonly offset?: bigint
  readonly partition?: number
  readonly by?: string
}

function resolution(
  output: { timestamp: number; offset: bigint; partition: number; by: string } | undefined,
  deadLetter: { timestamp: number } | undefined,
): Resolution | undefined {
  if (output && (!deadLetter || output.timestamp <= deadLetter.timestamp)) return output
  return deadLetter ? { timestamp: deadLetter.timestamp } : undefined
}

function pushSample(samples: string[], text: string): void {
  if (samples.length < SAMPLES) samples.push(text)
}

/** The source offset an output names in its `id` (`<topic>/<partition>/<offset>`), if it names one. */
function sourceOffset(out: OutputRecord): bigint | undefined {
  const match = out.id === undefined ? null : /\/(\d+)$/.exec(out.id)
  return match === null ? undefined : BigInt(match[1]!)
}

/**
 * A key's outputs as positions in the key's source log, for the stale-replay check. Detour's order is the
 * source log's, and the log can itself hold a message twice: a test producer that sends a batch again after
 * a hung or failed send (its first attempt landing late) appends copies of older messages after newer
 * ones, and processing such a copy after the newer message is the order the log asks for, not a stale
 * replay. So each output is placed by the source offset it names (its rank among the key's source offsets:
 * every record of a key is in one partition). Outputs that name no source offset keep their message's
 * sequence number, for the whole key.
 */
function sourceOrder(outputs: readonly OutputRecord[]): Array<{ seq: number }> {
  const offsets = outputs.map(sourceOffset)
  if (offsets.some((offset) => offset === undefined)) return outputs.map((out) => ({ seq: out.seq }))
  const ranks = new Map([...new Set(offsets as bigint[])].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map((offset, rank) => [offset, rank + 1]))
  return offsets.map((offset) => ({ seq: ranks.get(offset!)! }))
}

/** Checks a run's invariants against its workload. Pure: everything comes from `observations`. */
export function checkRun(workload: Workload, observations: Observations): CheckReport {
  const run = workload.run
  // Outputs of this run in log order: all records of a key share a partition, so a key's records are in the order their writes were acknowledged.
  const firstOutput = new Map<string, { timestamp: number; offset: bigint; partition: number; by: string }>()
  const outputsByKey = new Map<string, OutputRecord[]>()
  let duplicates = 0
  let unknownOutputs = observations.malformedOutputs
  const processedBy: Record<string, number> = {}
  for (const out of observations.outputs) {
    if (out.run !== run) continue
    const ref = `${out.key}:${out.seq}`
    if (!workload.byRef.has(ref)) {
      unknownOutputs++
      continue
    }
    const ofKey = outputsByKey.get(out.key) ?? []
    ofKey.push(out)
    outputsByKey.set(out.key, ofKey)
    if (firstOutput.has(ref)) {
      duplicates++
      continue
    }
    firstOutput.set(ref, { timestamp: out.timestamp, offset: BigInt(out.offset), partition: out.partition, by: out.by })
    processedBy[out.by] = (processedBy[out.by] ?? 0) + 1
  }

  const firstDeadLetter = new Map<string, { timestamp: number; reasons: Set<string> }>()
  const unexpected: string[] = []
  let unexpectedCount = 0
  let deadLetterRecords = 0
  for (const dl of observations.deadLetters) {
    if (!observations.isOfThisRun(dl)) continue
    deadLetterRecords++
    const ref = observations.deadLetterRef(dl)
    const message = ref === undefined ? undefined : workload.byRef.get(ref)
    if (ref === undefined || message === undefined) {
      unexpectedCount++
      pushSample(unexpected, `error-topic record p${dl.partition}@${dl.offset} (${dl.reason}) names no workload message`)
      continue
    }
    const allowed = message.poison ? dl.reason === 'unprocessable' : dl.reason === 'exhausted'
    if (!allowed) {
      unexpectedCount++
      pushSample(unexpected, `${ref} (${message.poison ? 'poison' : message.transient ? 'transient' : 'plain'}) dead-lettered as ${dl.reason}: ${dl.headers['detour-error-message'] ?? ''}`)
    }
    const seen = firstDeadLetter.get(ref)
    if (seen) {
      seen.reasons.add(dl.reason)
      seen.timestamp = Math.min(seen.timestamp, dl.timestamp)
    } else {
      firstDeadLetter.set(ref, { timestamp: dl.timestamp, reasons: new Set([dl.reason]) })
    }
  }

  // Per-key order. A message is resolved by its first output or its first dead letter, whichever came
  // first. Every message must be resolved before any later message of its key. Outputs of a key are
  // compared by their position in the output log; a dead letter against anything by record timestamps,
  // which are taken when a record is sent: the next message of a group only starts after the previous
  // one's write was acknowledged, so an earlier message never has a later timestamp (strictly).
  const violations: string[] = []
  let violationCount = 0
  const offendingKeys = new Set<string>()
  const byKey = new Map<string, number[]>()
  for (const message of workload.messages) {
    const seqs = byKey.get(message.key) ?? []
    seqs.push(message.seq)
    byKey.set(message.key, seqs)
  }
  const describe = (ref: string, event: Resolution): string =>
    event.offset === undefined
      ? `${ref} (dead-lettered at ${new Date(event.timestamp).toISOString()})`
      : `${ref} (processed by ${event.by}, output p${event.partition}@${event.offset}, ${new Date(event.timestamp).toISOString()})`
  for (const [key, seqs] of byKey) {
    // Walk from the last message back, keeping the earliest resolution among the later messages.
    let earliestLater: { timestamp: number; ref: string; event: Resolution } | undefined
    let lowestLaterOffset: { offset: bigint; ref: string; event: Resolution } | undefined
    for (const seq of [...seqs].sort((a, b) => b - a)) {
      const ref = `${key}:${seq}`
      const event = resolution(firstOutput.get(ref), firstDeadLetter.get(ref))
      if (!event) continue // lost: counted below
      const afterByTime = earliestLater !== undefined && event.timestamp > earliestLater.timestamp
      const afterByLog = event.offset !== undefined && lowestLaterOffset !== undefined && event.offset > lowestLaterOffset.offset
      if (afterByTime || afterByLog) {
        violationCount++
        offendingKeys.add(key)
        const later = afterByLog ? lowestLaterOffset! : earliestLater!
        pushSample(violations, `${describe(ref, event)} resolved after ${describe(later.ref, later.event)}`)
      }
      if (earliestLater === undefined || event.timestamp < earliestLater.timestamp) earliestLater = { timestamp: event.timestamp, ref, event }
      if (event.offset !== undefined && (lowestLaterOffset === undefined || event.offset < lowestLaterOffset.offset)) {
        lowestLaterOffset = { offset: event.offset, ref, event }
      }
    }
  }

  // Stale replays, per key in output-topic order (a key's outputs share a partition). A message's first
  // output is judged above when it is also its first resolution; an output after its own dead letter is a
  // replay here. Order is the source log's: see `sourceOrder`.
  const stale: string[] = []
  let staleCount = 0
  const at = (out: OutputRecord): string => `${out.key}:${out.seq} (by ${out.by}, output p${out.partition}@${out.offset}${out.id === undefined ? '' : `, source ${out.id}`})`
  for (const [key, outputs] of outputsByKey) {
    const isReplay = (index: number): boolean => {
      const out = outputs[index]!
      const ref = `${key}:${out.seq}`
      const first = firstOutput.get(ref)
      if (first === undefined || first.partition !== out.partition || first.offset !== BigInt(out.offset)) return true
      return resolution(first, firstDeadLetter.get(ref)) !== first
    }
    const order = sourceOrder(outputs)
    const seqAt = new Map(order.map((position, index) => [position.seq, outputs[index]!.seq]))
    for (const replay of findStaleReplays(order, isReplay)) {
      staleCount++
      offendingKeys.add(key)
      const out = outputs[replay.index]!
      const latest = outputs[replay.latestIndex]!
      const names = replay.notReplayed.map((position) => `${key}:${seqAt.get(position) ?? position}`)
      const missing = names.slice(0, 5).join(', ') + (names.length > 5 ? ` and ${names.length - 5} more` : '')
      pushSample(stale, `${at(out)} replayed after ${at(latest)}; not processed again after it: ${missing}`)
    }
  }

  // Dead letters naming neither a message of this run (by value) nor an id of the source topic read:
  // on a topic of this run only, they are unexplained.
  for (const dl of observations.unattributedDeadLetters()) {
    if (!(dl.headers['detour-id'] ?? '').startsWith(`${observations.topics.source}/`)) continue
    deadLetterRecords++
    unexpectedCount++
    pushSample(unexpected, `error-topic record p${dl.partition}@${dl.offset} (${dl.reason}, ${dl.headers['detour-id']}) has no readable value and names no message of the source topic read`)
  }

  const lost: string[] = []
  let lostCount = 0
  const poisonMissing: string[] = []
  let poisonDeadLettered = 0
  let poisonProcessed = 0
  let expected = 0
  const deadLettered: Record<string, number> = {}
  const exhausted: string[] = []
  for (const message of workload.messages) {
    const deadLetter = firstDeadLetter.get(message.ref)
    for (const reason of deadLetter?.reasons ?? []) deadLettered[reason] = (deadLettered[reason] ?? 0) + 1
    if (deadLetter?.reasons.has('exhausted')) exhausted.push(message.ref)
    if (message.poison) {
      if (deadLetter?.reasons.has('unprocessable')) poisonDeadLettered++
      else poisonMissing.push(message.ref)
      if (firstOutput.has(message.ref)) poisonProcessed++
      continue
    }
    expected++
    if (!firstOutput.has(message.ref) && !deadLetter) {
      lostCount++
      pushSample(lost, message.ref + (message.transient ? ' (transient)' : ''))
    }
  }

  // End-to-end delay of retried messages: source timestamp (the producer's send) → first output.
  const delays: Array<{ ms: number; ref: string }> = []
  const retriedRefs = new Set<string>()
  for (const id of observations.retries.keys()) {
    const ref = observations.refOfId(id)
    if (ref !== undefined) retriedRefs.add(ref)
  }
  for (const ref of retriedRefs) {
    const produced = observations.producedAt(ref)
    const processed = firstOutput.get(ref)
    if (produced !== undefined && processed !== undefined) delays.push({ ms: processed.timestamp - produced, ref })
  }
  delays.sort((a, b) => a.ms - b.ms)
  const quantile = (q: number): number => delays[Math.min(delays.length - 1, Math.floor(q * delays.length))]!.ms
  const retriedDelay: RetriedDelay | undefined =
    delays.length === 0 ? undefined : { count: delays.length, p50Ms: quantile(0.5), p99Ms: quantile(0.99), maxMs: delays[delays.length - 1]!.ms, maxRef: delays[delays.length - 1]!.ref }

  const pendingSamples: string[] = []
  for (const state of observations.redirects.values()) {
    if (state.pending) pushSample(pendingSamples, `${state.id} (group ${state.groupKey ?? '(keyless)'}, ${state.records} record(s), ${state.tombstones} tombstone(s))`)
  }

  return {
    produced: workload.messages.length,
    expected,
    processed: [...firstOutput.keys()].filter((ref) => !workload.byRef.get(ref)?.poison).length,
    duplicates,
    firstProcessingViolations: violationCount,
    firstProcessingViolationSamples: violations,
    staleReplays: staleCount,
    staleReplaySamples: stale,
    lost: lostCount,
    lostSamples: lost,
    deadLettered,
    deadLetterRecords,
    exhausted,
    poison: { expected: workload.poison, deadLettered: poisonDeadLettered, processed: poisonProcessed, missing: poisonMissing },
    unexpectedDeadLetters: unexpectedCount,
    unexpectedDeadLetterSamples: unexpected,
    redirected: observations.redirectedByReason(),
    retryRecords: observations.retryRecords,
    pendingIds: observations.pending,
    pendingSamples,
    unknownTombstones: observations.unknownTombstones,
    unknownOutputs,
    processedBy,
    retriedDelay,
    evidence: Object.fromEntries([...offendingKeys].slice(0, SAMPLES).map((key) => [key, keyHistory(workload, observations, key)])),
  }
}

/**
 * Every record the topics hold about one key of the run: its outputs in output-topic order (who processed
 * what, from which source id, when), then its dead letters, redirect-topic and retry-topic records by id.
 * Put beside the process logs (kills, assignments, fencing), this is what an order violation is judged on
 * after the run, when the cluster is gone.
 */
export function keyHistory(workload: Workload, observations: Observations, key: string): string[] {
  const iso = (ms: number): string => new Date(ms).toISOString()
  const keyOf = (ref: string | undefined): string | undefined => (ref === undefined ? undefined : ref.slice(0, ref.lastIndexOf(':')))
  const lines: string[] = []
  for (const out of observations.outputs) {
    if (out.run !== workload.run || out.key !== key) continue
    lines.push(`output p${out.partition}@${out.offset}: ${key}:${out.seq} by ${out.by}, source id ${out.id ?? '?'}, written ${iso(out.timestamp)}`)
  }
  for (const dl of observations.deadLetters) {
    const ref = observations.deadLetterRef(dl)
    if (keyOf(ref) !== key) continue
    lines.push(`dead letter p${dl.partition}@${dl.offset}: ${ref ?? '?'} (${dl.reason}) by ${dl.headers['detour-component'] ?? '?'}, source id ${dl.headers['detour-id'] ?? '?'}, written ${iso(dl.timestamp)}`)
  }
  for (const [id, state] of observations.redirects) {
    const ref = observations.refOfId(id)
    if (keyOf(ref) !== key) continue
    lines.push(`redirect ${id} (${ref ?? '?'}): ${state.records} record(s), ${state.tombstones} tombstone(s), ${state.pending ? 'pending' : 'released'}`)
  }
  for (const [id, retry] of observations.retries) {
    const ref = observations.refOfId(id)
    if (keyOf(ref) !== key) continue
    lines.push(`retry ${id} (${ref ?? '?'}): ${retry.records} record(s), reason ${retry.reason}`)
  }
  return lines
}

/** The invariants a run must satisfy; each broken one as a sentence. Empty when the run is correct. */
export function invariantFailures(report: CheckReport): string[] {
  const failures: string[] = []
  if (report.firstProcessingViolations > 0) {
    failures.push(`${report.firstProcessingViolations} per-key order violation(s) at first processing: ${report.firstProcessingViolationSamples.join('; ')}`)
  }
  if (report.staleReplays > 0) failures.push(`${report.staleReplays} stale replay(s) (per-key order): ${report.staleReplaySamples.join('; ')}`)
  if (report.lost > 0) failures.push(`${report.lost} message(s) lost (neither processed nor dead-lettered): ${report.lostSamples.join(', ')}`)
  if (report.pendingIds > 0) failures.push(`${report.pendingIds} pending id(s) left on the redirect topic: ${report.pendingSamples.join(', ')}`)
  if (report.poison.missing.length > 0) failures.push(`${report.poison.missing.length} poison message(s) not dead-lettered as unprocessable: ${report.poison.missing.slice(0, SAMPLES).join(', ')}`)
  if (report.poison.processed > 0) failures.push(`${report.poison.processed} poison message(s) were processed`)
  if (report.unexpectedDeadLetters > 0) failures.push(`${report.unexpectedDeadLetters} unexpected dead letter(s): ${report.unexpectedDeadLetterSamples.join('; ')}`)
  if (report.unknownOutputs > 0) failures.push(`${report.unknownOutputs} output record(s) of this run name no workload message`)
  return failures
}

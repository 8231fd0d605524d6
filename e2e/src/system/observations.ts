import type { IHeaders, KafkaMessage } from 'kafkajs'
import { DetourHeaders, headerString } from '@detour/core'

/** One record of the output topic: a message the handler processed (the main app or the worker). */
export interface OutputRecord {
  readonly partition: number
  readonly offset: string
  readonly run: string | undefined
  readonly key: string
  readonly seq: number
  /** `main-<instance>` or `worker`. */
  readonly by: string
  readonly id: string | undefined
  /** Record timestamp (set by the producer when it sent it), epoch ms. */
  readonly timestamp: number
}

/** One record of the error topic. */
export interface DeadLetterRecord {
  readonly partition: number
  readonly offset: string
  readonly run: string | undefined
  readonly key: string | undefined
  readonly seq: number | undefined
  readonly reason: string
  readonly timestamp: number
  /** Every header as a UTF-8 string. */
  readonly headers: Readonly<Record<string, string>>
  readonly value: Buffer | null
  readonly messageKey: Buffer | null
}

export interface RedirectState {
  readonly id: string
  readonly partition: number
  /** True when the last record of the id is a redirect record (no tombstone after it). */
  pending: boolean
  records: number
  tombstones: number
  groupKey: string | undefined
}

export interface RetryRecordInfo {
  readonly id: string
  readonly partition: number
  /** `failure` or `ordering` (the first retry record of the id). */
  readonly reason: string
  readonly key: string | undefined
  records: number
}

export interface ObservedTopics {
  /** Read only to map ids (`topic/partition/offset`) to workload messages: a dead letter without value names its message by id. */
  readonly source: string
  readonly output: string
  readonly error: string
  readonly redirect: string
  readonly retry: string
}

function headersAsStrings(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name of Object.keys(headers ?? {})) {
    const value = headerString(headers, name)
    if (value !== undefined) out[name] = value
  }
  return out
}

function parseJson(value: Buffer | null): Record<string, unknown> | undefined {
  if (value === null) return undefined
  try {
    const parsed = JSON.parse(value.toString('utf8')) as unknown
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

const str = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined)
const num = (value: unknown): number | undefined => (typeof value === 'number' ? value : undefined)

/**
 * Everything read from the output, error, redirect and retry topics of one run, in log order per
 * partition. Fed by the topic observer; read by the checker. Each (topic, partition, offset) is applied
 * once, so a consumer that re-reads after a rejoin does not double anything.
 */
export class Observations {
  readonly outputs: OutputRecord[] = []
  readonly deadLetters: DeadLetterRecord[] = []
  readonly redirects = new Map<string, RedirectState>()
  readonly retries = new Map<string, RetryRecordInfo>()
  /** Tombstones of ids never seen with a redirect record. */
  unknownTombstones = 0
  /** Output records that are not JSON `{ key, seq, by }`. */
  malformedOutputs = 0
  retryRecords = 0
  private pendingCount = 0
  private readonly positions = new Map<string, bigint>()
  private readonly processedRefs = new Set<string>()
  private readonly deadLetteredRefs = new Set<string>()
  /** Source message id → `key:seq`, for this run's messages. */
  private readonly idRefs = new Map<string, string>()
  /** `key:seq` → timestamp of its (earliest) source record: when the workload producer sent it. */
  private readonly sourceTimestamps = new Map<string, number>()
  /** Dead letters of an id not (yet) seen on the source topic. */
  private readonly unresolvedDeadLetters: DeadLetterRecord[] = []

  constructor(
    readonly topics: ObservedTopics,
    /** Only records of this run count towards progress. */
    readonly run: string,
  ) {}

  /** Next offset to read of a partition (0 before any record). */
  position(topic: string, partition: number): bigint {
    return this.positions.get(`${topic}\u0000${partition}`) ?? 0n
  }

  /** Ids with a redirect record and no tombstone after it. */
  get pending(): number {
    return this.pendingCount
  }

  /** Distinct `key:seq` of this run in the output topic. */
  get processed(): number {
    return this.processedRefs.size
  }

  /** Distinct `key:seq` of this run in the error topic. */
  get deadLettered(): number {
    this.resolveDeadLetters()
    return this.deadLetteredRefs.size
  }

  isProcessed(ref: string): boolean {
    return this.processedRefs.has(ref)
  }

  isDeadLettered(ref: string): boolean {
    this.resolveDeadLetters()
    return this.deadLetteredRefs.has(ref)
  }

  /**
   * The workload message (`key:seq`) a dead letter is about: from its value when it is the original
   * JSON, otherwise from its `detour-id` (a `record-too-large` dead letter carries no value and no user
   * headers). `undefined` when it cannot be told (yet).
   */
  deadLetterRef(dl: DeadLetterRecord): string | undefined {
    if (dl.key !== undefined && dl.seq !== undefined && dl.run !== undefined) return dl.run === this.run ? `${dl.key}:${dl.seq}` : undefined
    const id = dl.headers[DetourHeaders.ID]
    return id === undefined ? undefined : this.idRefs.get(id)
  }

  /** The workload message (`key:seq`) of a source message id of this run, once its source record was read. */
  refOfId(id: string): string | undefined {
    return this.idRefs.get(id)
  }

  /** When a workload message was produced (its source record's timestamp; the earliest when it was sent twice). */
  producedAt(ref: string): number | undefined {
    return this.sourceTimestamps.get(ref)
  }

  /** True when a dead letter belongs to this run (by its value, or by an id of this run's source messages). */
  isOfThisRun(dl: DeadLetterRecord): boolean {
    if (dl.run !== undefined) return dl.run === this.run
    return this.deadLetterRef(dl) !== undefined
  }

  /** Dead letters without a readable value whose id is not one of this run's source messages. */
  unattributedDeadLetters(): DeadLetterRecord[] {
    this.resolveDeadLetters()
    return [...this.unresolvedDeadLetters]
  }

  private resolveDeadLetters(): void {
    for (let i = this.unresolvedDeadLetters.length - 1; i >= 0; i--) {
      const ref = this.deadLetterRef(this.unresolvedDeadLetters[i]!)
      if (ref === undefined) continue
      this.deadLetteredRefs.add(ref)
      this.unresolvedDeadLetters.splice(i, 1)
    }
  }

  /** Distinct redirected ids by the reason of their first retry record. */
  redirectedByReason(): Record<string, number> {
    const out: Record<string, number> = {}
    for (const info of this.retries.values()) out[info.reason] = (out[info.reason] ?? 0) + 1
    return out
  }

  /**
   * The consumer passed `next` in a partition without a record to apply: transaction markers (commit/abort)
   * and aborted records occupy offsets but are never delivered (kafkajs reports them in END_BATCH_PROCESS).
   */
  advance(topic: string, partition: number, next: bigint): void {
    const slot = `${topic}\u0000${partition}`
    if (next > (this.positions.get(slot) ?? 0n)) this.positions.set(slot, next)
  }

  /** Applies a batch of one partition; returns how many records were new. */
  apply(topic: string, partition: number, messages: readonly KafkaMessage[]): number {
    const slot = `${topic}\u0000${partition}`
    let next = this.positions.get(slot) ?? 0n
    let applied = 0
    for (const message of messages) {
      const offset = BigInt(message.offset)
      if (offset < next) continue
      next = offset + 1n
      applied++
      if (topic === this.topics.source) this.applySource(partition, message)
      else if (topic === this.topics.output) this.applyOutput(partition, message)
      else if (topic === this.topics.error) this.applyDeadLetter(partition, message)
      else if (topic === this.topics.redirect) this.applyRedirect(partition, message)
      else if (topic === this.topics.retry) this.applyRetry(partition, message)
    }
    this.positions.set(slot, next)
    return applied
  }

  private applySource(partition: number, message: KafkaMessage): void {
    const ref = headerString(message.headers, 'x-demo-ref')
    if (ref === undefined || str(parseJson(message.value)?.run) !== this.run) return
    this.idRefs.set(`${this.topics.source}/${partition}/${message.offset}`, ref)
    const timestamp = Number(message.timestamp)
    const known = this.sourceTimestamps.get(ref)
    if (known === undefined || timestamp < known) this.sourceTimestamps.set(ref, timestamp)
  }

  private applyOutput(partition: number, message: KafkaMessage): void {
    const value = parseJson(message.value)
    const key = str(value?.key)
    const seq = num(value?.seq)
    const by = str(value?.by)
    if (key === undefined || seq === undefined || by === undefined) {
      this.malformedOutputs++
      return
    }
    const run = str(value?.run)
    this.outputs.push({ partition, offset: message.offset, run, key, seq, by, id: str(value?.id), timestamp: Number(message.timestamp) })
    if (run === this.run) this.processedRefs.add(`${key}:${seq}`)
  }

  private applyDeadLetter(partition: number, message: KafkaMessage): void {
    const headers = headersAsStrings(message.headers)
    const value = parseJson(message.value)
    const run = str(value?.run)
    const key = str(value?.key)
    const seq = num(value?.seq)
    const record: DeadLetterRecord = {
      partition,
      offset: message.offset,
      run,
      key,
      seq,
      reason: headers[DetourHeaders.REASON] ?? 'unknown',
      timestamp: Number(message.timestamp),
      headers,
      value: message.value,
      messageKey: message.key,
    }
    this.deadLetters.push(record)
    if (run === this.run && key !== undefined && seq !== undefined) this.deadLetteredRefs.add(`${key}:${seq}`)
    else if (run === undefined) this.unresolvedDeadLetters.push(record)
  }

  private applyRedirect(partition: number, message: KafkaMessage): void {
    const id = headerString(message.headers, DetourHeaders.ID)
    if (id === undefined) return
    let state = this.redirects.get(id)
    const tombstone = message.value === null
    if (!state) {
      if (tombstone) {
        this.unknownTombstones++
        return
      }
      state = { id, partition, pending: false, records: 0, tombstones: 0, groupKey: headerString(message.headers, DetourHeaders.GROUP_KEY) }
      this.redirects.set(id, state)
    }
    if (tombstone) {
      state.tombstones++
      if (state.pending) this.pendingCount--
      state.pending = false
    } else {
      state.records++
      if (!state.pending) this.pendingCount++
      state.pending = true
    }
  }

  private applyRetry(partition: number, message: KafkaMessage): void {
    this.retryRecords++
    const id = headerString(message.headers, DetourHeaders.ID)
    if (id === undefined) return
    const known = this.retries.get(id)
    if (known) {
      known.records++
      return
    }
    this.retries.set(id, {
      id,
      partition,
      reason: headerString(message.headers, DetourHeaders.REASON) ?? 'unknown',
      key: message.key?.toString('utf8'),
      records: 1,
    })
  }
}

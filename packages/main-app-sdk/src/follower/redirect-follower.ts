import { randomBytes } from 'node:crypto'
import type { Consumer, ConsumerConfig, IHeaders, Kafka } from 'kafkajs'
import { decodeRedirectRecord, DetourTimeoutError, groupKeyToStoreKey, parseMessageId, type GroupStore, type Logger } from '@detour/core'
import type { SdkMetrics } from '../metrics/sdk-metrics.js'

export interface RedirectFollowerOptions {
  readonly kafka: Kafka
  /** The main app's consumer group (the follower uses a private group derived from it). */
  readonly groupId: string
  /** redirect topic → source topic */
  readonly sources: ReadonlyMap<string, string>
  readonly store: GroupStore
  readonly metrics: SdkMetrics
  readonly logger: Logger
  readonly config?: Partial<ConsumerConfig>
  /** Called after each applied batch with the next offset to read of a redirect partition. */
  readonly onProgress: (sourceTopic: string, partition: number, nextOffset: bigint) => void
  readonly onError: (error: Error) => void
}

/**
 * Follows every partition of the redirect topics from the beginning and applies records (pending ids)
 * and tombstones (releases) to the group store, in log order.
 *
 * It uses a private consumer group (kafkajs has no manual assignment) that never commits, so each
 * start replays the topic: that replay *is* the rebuild. Following every partition, not only the
 * assigned ones, keeps state warm: a partition that moves here after a rebalance is ready as soon as
 * the follower has passed the high watermark taken at assignment time.
 */
export class RedirectFollower {
  private consumer: Consumer | undefined
  private readonly positions = new Map<string, bigint>()
  private joined = false
  private joinedPromise: Promise<void> | undefined
  private joinTimer: NodeJS.Timeout | undefined

  constructor(private readonly options: RedirectFollowerOptions) {}

  private static slot(topic: string, partition: number): string {
    return `${topic}\u0000${partition}`
  }

  /** Next offset of the redirect partition that belongs to this source partition. */
  position(sourceTopic: string, partition: number): bigint {
    return this.positions.get(RedirectFollower.slot(sourceTopic, partition)) ?? 0n
  }

  get running(): boolean {
    return this.consumer !== undefined && this.joined
  }

  async start(joinTimeoutMs = 60_000): Promise<void> {
    const { kafka, groupId, sources, logger } = this.options
    const consumer = kafka.consumer({
      groupId: `${groupId}-detour-follower-${randomBytes(6).toString('hex')}`,
      allowAutoTopicCreation: false,
      ...this.options.config,
    })
    this.consumer = consumer
    const joined = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new DetourTimeoutError(`The redirect follower did not join within ${joinTimeoutMs} ms`)), joinTimeoutMs)
      timer.unref()
      this.joinTimer = timer
      consumer.on(consumer.events.GROUP_JOIN, () => {
        this.joined = true
        clearTimeout(timer)
        resolve()
      })
      consumer.on(consumer.events.CRASH, (event) => {
        const error = event.payload.error
        logger.error('Redirect follower crashed', { error, restart: event.payload.restart })
        this.options.onError(error)
        if (!this.joined) {
          clearTimeout(timer)
          reject(error)
        }
      })
    })
    await consumer.connect()
    await consumer.subscribe({ topics: [...sources.keys()], fromBeginning: true })
    const run = consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        this.apply(batch.topic, batch.partition, batch.messages)
        const next = BigInt(batch.lastOffset()) + 1n
        const source = sources.get(batch.topic)
        if (source === undefined) return
        const slot = RedirectFollower.slot(source, batch.partition)
        if (next > (this.positions.get(slot) ?? 0n)) this.positions.set(slot, next)
        this.options.onProgress(source, batch.partition, this.positions.get(slot) ?? next)
      },
    })
    // Not awaited: kafkajs' run() resolves only after the group join. Start-up returns once connected
    // and subscribed, so the application's own consumer joins while the follower joins and replays
    // (its partitions stay gated until the replay passes their high watermarks). A failed or timed-out
    // join is reported through onError.
    this.joinedPromise = Promise.all([run, joined]).then(
      () => undefined,
      (error: unknown) => {
        const failure = error instanceof Error ? error : new Error(String(error))
        logger.error('The redirect follower could not join its group', { error: failure })
        this.options.onError(failure)
      },
    )
  }

  /** Resolves once the follower joined its group (or failed to, which is reported through onError). */
  whenJoined(): Promise<void> {
    return this.joinedPromise ?? Promise.resolve()
  }

  private apply(redirectTopic: string, partition: number, messages: ReadonlyArray<{ offset: string; key: Buffer | null; value: Buffer | null; headers?: import('kafkajs').IHeaders }>): void {
    const { store, metrics, sources, logger } = this.options
    const source = sources.get(redirectTopic)
    if (source === undefined) return
    const from = this.positions.get(RedirectFollower.slot(source, partition)) ?? 0n
    if (!store.hasPartition(source, partition)) store.resetPartition(source, partition)
    // Every id of this redirect partition should start with this prefix (see `belongsHere`).
    const prefix = `${source}/${partition}/`
    const prefixBytes = Buffer.from(prefix, 'latin1')
    // Counted here and added to the counters once per batch: a labelled `inc` per record costs about as
    // much as decoding the record. Nothing can read the counters while this synchronous loop runs.
    let pending = 0
    let released = 0
    let unknown = 0
    try {
      for (const message of messages) {
        // Offsets below `from` were applied already (replay after a restart of this consumer); on the
        // first pass `from` is 0 and no offset is below it, so the BigInt parse is skipped.
        if (from > 0n && BigInt(message.offset) < from) continue
        const fast = fastDecode(message, prefixBytes)
        if (fast !== undefined) {
          // The store accepts a bare offset as the id (topic and partition are those of the slot).
          if (fast.pending) {
            store.add(source, partition, fast.storeKey, fast.offset)
            pending++
          } else if (store.release(source, partition, fast.storeKey, fast.offset)) {
            released++
          } else {
            unknown++
          }
          continue
        }
        let entry
        try {
          entry = decodeRedirectRecord(message)
          if (!belongsHere(entry.id, prefix)) {
            const coordinates = parseMessageId(entry.id)
            if (coordinates.topic !== source || coordinates.partition !== partition) {
              throw new Error(`id ${entry.id} does not belong to ${source}/${partition}`)
            }
          }
        } catch (error) {
          metrics.malformedRedirectRecords.inc({ topic: source })
          logger.warn('Ignoring a malformed redirect record', { topic: redirectTopic, partition, offset: message.offset, error })
          continue
        }
        const storeKey = groupKeyToStoreKey(entry.groupKey, entry.id)
        if (entry.kind === 'pending') {
          store.add(source, partition, storeKey, entry.id)
          pending++
        } else if (store.release(source, partition, storeKey, entry.id)) {
          released++
        } else {
          unknown++
        }
      }
    } finally {
      if (pending > 0) metrics.redirectRecordsApplied.inc({ topic: source, kind: 'pending' }, pending)
      if (released > 0) metrics.redirectRecordsApplied.inc({ topic: source, kind: 'released' }, released)
      if (unknown > 0) metrics.unknownTombstones.inc({ topic: source }, unknown)
    }
  }

  async stop(): Promise<void> {
    const consumer = this.consumer
    this.consumer = undefined
    this.joined = false
    if (this.joinTimer) clearTimeout(this.joinTimer)
    if (consumer) await consumer.disconnect()
  }
}

const SEPARATOR = 0x7c // '|'
const ID_HEADER = 'detour-id'

/**
 * Decodes the common, well-formed redirect record without building strings it does not need: the key
 * must be `<group key>|<prefix><digits>` (or `<prefix><digits>` for keyless), and a `detour-id` header,
 * if present, must equal the id bytes. Anything else returns `undefined` and takes the full decoder
 * (which validates and reports). Equivalent to `decodeRedirectRecord` + `groupKeyToStoreKey` for the
 * records it accepts.
 */
export function fastDecode(
  message: { key: Buffer | null; value: Buffer | null; headers?: IHeaders },
  prefix: Buffer,
): { pending: boolean; storeKey: string; offset: string } | undefined {
  const key = message.key
  if (key === null || key.length === 0) return undefined
  const at = key.lastIndexOf(SEPARATOR)
  const idStart = at + 1
  const digitsStart = idStart + prefix.length
  const digits = key.length - digitsStart
  if (digits < 1 || digits > 19) return undefined
  if (key.compare(prefix, 0, prefix.length, idStart, digitsStart) !== 0) return undefined
  for (let i = digitsStart; i < key.length; i++) {
    const c = key[i]!
    if (c < 0x30 || c > 0x39) return undefined
  }
  const header = message.headers?.[ID_HEADER]
  if (header !== undefined) {
    const value = Array.isArray(header) ? header[0] : header
    if (value === undefined) return undefined
    const matches = typeof value === 'string' ? value === key.toString('latin1', idStart) : key.subarray(idStart).equals(value)
    if (!matches) return undefined
  }
  return {
    pending: message.value !== null,
    storeKey: at === -1 ? `\u0100${key.toString('latin1', idStart)}` : key.toString('latin1', 0, at),
    offset: key.toString('latin1', digitsStart),
  }
}

/**
 * Fast check that a decoded (hence valid) id is `<prefix><offset>`, i.e. belongs to the source
 * partition whose prefix is `<topic>/<partition>/`. A valid id has exactly two `/` and a topic without
 * one, so this agrees with parsing the id and comparing topic and partition; when it answers false
 * the caller parses the id to decide (and to report why).
 */
function belongsHere(id: string, prefix: string): boolean {
  return id.length > prefix.length && id.startsWith(prefix) && id.indexOf('/', prefix.length) === -1
}

import { randomBytes } from 'node:crypto'
import type { Admin, Consumer, ConsumerConfig, IHeaders, Kafka } from 'kafkajs'
import { RedirectPartitionDecoder, isBarrierRecord, type RedirectUpdate } from '../codec/redirect-codec.js'
import { DetourStoppingError, DetourTimeoutError } from '../errors/index.js'
import { noopLogger, type Logger } from '../logging/logger.js'
import type { DetourTopics } from '../model/topic-names.js'
import { topicPartitionKey } from '../model/topic-partition.js'
import type { GroupStore } from '../store/group-store.js'
import { StableOffsetReader } from './stable-offsets.js'

/** What the follower reports, as counts (the apps turn them into metrics). */
export interface FollowerMetrics {
  applied(sourceTopic: string, kind: 'pending' | 'released', count: number): void
  unknownTombstones(sourceTopic: string, count: number): void
  malformed(sourceTopic: string): void
  foreign(sourceTopic: string): void
}

const noopMetrics: FollowerMetrics = { applied() {}, unknownTombstones() {}, malformed() {}, foreign() {} }

export type FollowerState = 'idle' | 'starting' | 'running' | 'restarting' | 'stopped'

export interface RedirectFollowerOptions {
  readonly kafka: Kafka
  /** The main app's consumer group. Redirect records written by another group are ignored (and reported). */
  readonly consumerGroup: string
  /** The Detour topics whose redirect topics to follow (every partition). */
  readonly topics: Iterable<DetourTopics>
  /** Where pending ids go. */
  readonly store: GroupStore
  /** Prefix of the follower's private consumer group (a random suffix is added). @defaultValue `${consumerGroup}-detour-follower` */
  readonly groupIdPrefix?: string
  /** kafkajs settings of the follower's consumer. */
  readonly consumerConfig?: Partial<ConsumerConfig>
  readonly metrics?: FollowerMetrics
  readonly logger?: Logger
  /** A background failure (a crash of the follower's consumer; it is restarted). */
  readonly onError?: (error: Error) => void
  /** The position of a redirect partition advanced (named by its source topic). */
  readonly onProgress?: (sourceTopic: string, partition: number, position: bigint) => void
  /** Delay before restarting a consumer that kafkajs gave up on. @defaultValue 1000, doubling to 30000 */
  readonly restartDelayMs?: (attempt: number) => number
}

interface Waiter {
  readonly target: bigint
  readonly resolve: () => void
  readonly reject: (error: Error) => void
}

interface PartitionProgress {
  position: bigint
  waiters: Waiter[]
}

/**
 * Follows every partition of the redirect topics, from the beginning, and applies them to the group
 * store in log order: a record makes its id pending, a tombstone releases it. Both apps use it: the main
 * app to know which groups have pending ids (and to rebuild them after a restart), the retry worker to
 * know which ids are still pending (durable resolution).
 *
 * - It reads `read_committed`: a hand-off transaction that was aborted (a fenced owner, an unknown outcome)
 *   is never applied.
 * - Its **position** per partition is the next offset to read, advanced past control records too (kafkajs
 *   reports batches of only commit/abort markers through `END_BATCH_PROCESS`, never to `eachBatch`).
 * - {@link catchUp} is the barrier: it takes the partition's last stable offset *now* and waits until the
 *   position passes it. After that, the store knows every hand-off decided before the call.
 * - It uses a private consumer group (kafkajs has no manual assignment) that never commits. A consumer that
 *   kafkajs gives up on is replaced after a delay (positions are kept, so the replay skips what was applied);
 *   meanwhile `running` is false.
 */
export class RedirectFollower {
  private consumer: Consumer | undefined
  private admin: Admin | undefined
  private readonly offsets: StableOffsetReader
  private readonly progress = new Map<string, PartitionProgress>()
  private readonly decoders = new Map<string, RedirectPartitionDecoder>()
  /** redirect topic → source topic */
  private readonly sources = new Map<string, string>()
  private readonly assigned = new Set<string>()
  private readonly logger: Logger
  private readonly metrics: FollowerMetrics
  private currentState: FollowerState = 'idle'
  private joined = false
  private restartTimer: NodeJS.Timeout | undefined
  private restartAttempt = 0
  private generation = 0
  private foreignWarned = new Set<string>()

  constructor(private readonly options: RedirectFollowerOptions) {
    for (const topics of options.topics) this.sources.set(topics.redirect, topics.source)
    this.logger = options.logger ?? noopLogger
    this.metrics = options.metrics ?? noopMetrics
    this.offsets = new StableOffsetReader(() => {
      if (!this.admin) throw new DetourStoppingError('The redirect follower is not running')
      return this.admin
    })
  }

  get state(): FollowerState {
    return this.currentState
  }

  /** True once the consumer joined its group, until it crashes or stops. */
  get running(): boolean {
    return this.currentState === 'running' && this.joined
  }

  /** The next offset to read of the redirect partition that belongs to this source partition. */
  position(sourceTopic: string, partition: number): bigint {
    return this.progress.get(topicPartitionKey(sourceTopic, partition))?.position ?? 0n
  }

  /** Connects and subscribes; the consumer joins (and replays) in the background. */
  async start(): Promise<void> {
    if (this.currentState !== 'idle') throw new Error(`The redirect follower is ${this.currentState}`)
    this.currentState = 'starting'
    this.admin = this.options.kafka.admin()
    await this.admin.connect()
    await this.startConsumer()
    this.currentState = 'running'
  }

  private async startConsumer(): Promise<void> {
    const generation = ++this.generation
    const prefix = this.options.groupIdPrefix ?? `${this.options.consumerGroup}-detour-follower`
    const consumer = this.options.kafka.consumer({
      groupId: `${prefix}-${randomBytes(6).toString('hex')}`,
      allowAutoTopicCreation: false,
      readUncommitted: false,
      // New partitions of a redirect topic are found at the next metadata refresh (see ensureFollowing).
      metadataMaxAge: 30_000,
      ...this.options.consumerConfig,
    })
    this.consumer = consumer
    this.joined = false
    this.assigned.clear()
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      if (generation !== this.generation) return
      this.joined = true
      this.restartAttempt = 0
      this.assigned.clear()
      for (const [topic, partitions] of Object.entries(event.payload.memberAssignment)) {
        const source = this.sources.get(topic)
        if (source === undefined) continue
        for (const partition of partitions) this.assigned.add(topicPartitionKey(source, partition))
      }
    })
    // Batches of only control records (commit/abort markers) or aborted records never reach eachBatch.
    consumer.on(consumer.events.END_BATCH_PROCESS, (event) => {
      if (generation !== this.generation) return
      const { topic, partition, lastOffset } = event.payload
      const source = this.sources.get(topic)
      if (source !== undefined) this.advance(source, partition, BigInt(lastOffset) + 1n)
    })
    consumer.on(consumer.events.CRASH, (event) => {
      if (generation !== this.generation) return
      const { error, restart } = event.payload
      this.joined = false
      if (restart) {
        // kafkajs restarts it (positions are kept: the replay skips what was applied): worth a warning only.
        this.logger.warn('Redirect follower crashed; kafkajs restarts it', { error })
        return
      }
      this.logger.error('Redirect follower crashed and kafkajs gave up on it; replacing it', { error })
      this.options.onError?.(error)
      if (this.currentState === 'running') this.scheduleRestart('kafkajs gave up on the consumer')
    })
    await consumer.connect()
    await consumer.subscribe({ topics: [...this.sources.keys()], fromBeginning: true })
    // Not awaited: kafkajs' run() resolves only after the group join; the caller's barriers wait instead.
    consumer
      .run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          if (generation !== this.generation) return
          const source = this.sources.get(batch.topic)
          if (source === undefined) return
          this.apply(source, batch.partition, batch.messages)
          this.advance(source, batch.partition, BigInt(batch.lastOffset()) + 1n)
        },
      })
      .catch((error: unknown) => {
        if (generation !== this.generation || this.currentState !== 'running') return
        const failure = error instanceof Error ? error : new Error(String(error))
        this.logger.error('The redirect follower could not join its group', { error: failure })
        this.options.onError?.(failure)
        this.scheduleRestart('the consumer could not join its group')
      })
  }

  private scheduleRestart(why: string): void {
    if (this.restartTimer || this.currentState !== 'running') return
    const attempt = ++this.restartAttempt
    const delay = this.options.restartDelayMs?.(attempt) ?? Math.min(30_000, 1000 * 2 ** (attempt - 1))
    this.currentState = 'restarting'
    this.logger.warn('Restarting the redirect follower', { why, attempt, delayMs: delay })
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined
      const old = this.consumer
      this.consumer = undefined
      void (async () => {
        await old?.disconnect().catch(() => undefined)
        if (this.currentState !== 'restarting') return
        this.currentState = 'running'
        try {
          await this.startConsumer()
        } catch (error) {
          this.logger.error('Restarting the redirect follower failed', { error })
          this.options.onError?.(error instanceof Error ? error : new Error(String(error)))
          this.scheduleRestart('the restart failed')
        }
      })()
    }, delay)
    this.restartTimer.unref()
  }

  /**
   * Makes sure the follower reads this partition: a partition added to a redirect topic after the start is
   * found at the consumer's next metadata refresh and rebalance; kafkajs does not rejoin when a subscribed
   * topic grows, so the consumer is replaced (positions are kept).
   */
  ensureFollowing(sourceTopic: string, partition: number): void {
    if (!this.running || this.assigned.has(topicPartitionKey(sourceTopic, partition))) return
    this.logger.info('A redirect partition is not followed yet (added at runtime?): restarting the follower to pick it up', {
      topic: sourceTopic,
      partition,
    })
    this.restartAttempt = 0
    this.scheduleRestart('a redirect partition is not followed yet')
  }

  /** Whether the consumer's current assignment includes this partition. */
  follows(sourceTopic: string, partition: number): boolean {
    return this.assigned.has(topicPartitionKey(sourceTopic, partition))
  }

  private slot(sourceTopic: string, partition: number): PartitionProgress {
    const key = topicPartitionKey(sourceTopic, partition)
    let progress = this.progress.get(key)
    if (!progress) {
      progress = { position: 0n, waiters: [] }
      this.progress.set(key, progress)
    }
    return progress
  }

  private advance(sourceTopic: string, partition: number, next: bigint): void {
    const progress = this.slot(sourceTopic, partition)
    if (next <= progress.position) return
    progress.position = next
    if (progress.waiters.length > 0) {
      const still: Waiter[] = []
      for (const waiter of progress.waiters) {
        if (next >= waiter.target) waiter.resolve()
        else still.push(waiter)
      }
      progress.waiters = still
    }
    this.options.onProgress?.(sourceTopic, partition, next)
  }

  private decoder(sourceTopic: string, partition: number): RedirectPartitionDecoder {
    const key = topicPartitionKey(sourceTopic, partition)
    let decoder = this.decoders.get(key)
    if (!decoder) {
      decoder = new RedirectPartitionDecoder(sourceTopic, partition, this.options.consumerGroup)
      this.decoders.set(key, decoder)
    }
    return decoder
  }

  private apply(source: string, partition: number, messages: ReadonlyArray<{ offset: string; key: Buffer | null; value: Buffer | null; headers?: IHeaders }>): void {
    const { store } = this.options
    const from = this.position(source, partition)
    const decoder = this.decoder(source, partition)
    // Counted here and reported once per batch: a labelled `inc` per record costs about as much as decoding it.
    let pending = 0
    let released = 0
    let unknown = 0
    try {
      for (const message of messages) {
        // Offsets below the position were applied already (a replay after the consumer was replaced); on
        // the first pass the position is 0 and the BigInt parse is skipped.
        if (from > 0n && BigInt(message.offset) < from) continue
        // A retry worker's barrier: only its offset matters (the position passes it below).
        if (isBarrierRecord(message)) continue
        let update: RedirectUpdate | undefined
        try {
          update = decoder.decodeFast(message)
        } catch {
          update = undefined
        }
        if (update === undefined) {
          let decoded
          try {
            decoded = decoder.decode(message, this.options.consumerGroup)
          } catch (error) {
            this.metrics.malformed(source)
            this.logger.warn('Ignoring a malformed redirect record', { topic: source, partition, offset: message.offset, error })
            continue
          }
          if ('foreign' in decoded) {
            this.metrics.foreign(source)
            if (!this.foreignWarned.has(decoded.foreign)) {
              this.foreignWarned.add(decoded.foreign)
              this.logger.error(
                'Another consumer group writes to this redirect topic: its records are ignored. Give each group its own Detour topics (keep {groupId} in the topic names)',
                { topic: source, partition, offset: message.offset, otherGroup: decoded.foreign, consumerGroup: this.options.consumerGroup },
              )
            }
            continue
          }
          update = decoded
        }
        // The store takes a bare offset as the id (topic and partition are those of the slot).
        if (update.pending) {
          store.add(source, partition, update.storeKey, update.offset)
          pending++
        } else if (store.release(source, partition, update.storeKey, update.offset)) {
          released++
        } else {
          unknown++
        }
      }
    } finally {
      if (pending > 0) this.metrics.applied(source, 'pending', pending)
      if (released > 0) this.metrics.applied(source, 'released', released)
      if (unknown > 0) this.metrics.unknownTombstones(source, unknown)
    }
  }

  /** Resolves once the position of the partition reaches `target`. */
  waitForPosition(sourceTopic: string, partition: number, target: bigint, options: WaitOptions = {}): Promise<void> {
    const progress = this.slot(sourceTopic, partition)
    if (progress.position >= target) return Promise.resolve()
    if (this.currentState === 'stopped') return Promise.reject(new DetourStoppingError('The redirect follower stopped'))
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const cleanup = (): void => {
        if (timer) clearTimeout(timer)
        options.signal?.removeEventListener('abort', onAbort)
        progress.waiters = progress.waiters.filter((w) => w !== waiter)
      }
      const waiter: Waiter = {
        target,
        resolve: () => {
          cleanup()
          resolve()
        },
        reject: (error) => {
          cleanup()
          reject(error)
        },
      }
      const onAbort = (): void => {
        cleanup()
        reject(options.signal?.reason instanceof Error ? options.signal.reason : new DetourStoppingError('The wait for the redirect follower was aborted'))
      }
      if (options.signal?.aborted) {
        onAbort()
        return
      }
      options.signal?.addEventListener('abort', onAbort, { once: true })
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(() => {
          cleanup()
          reject(
            new DetourTimeoutError(
              `The redirect follower did not reach offset ${target} of the redirect partition of ${sourceTopic}/${partition} within ${options.timeoutMs} ms (at ${progress.position}; ${this.running ? 'running' : this.currentState === 'running' ? 'not joined' : this.currentState})`,
            ),
          )
        }, options.timeoutMs)
      }
      progress.waiters.push(waiter)
    })
  }

  /**
   * The barrier: takes the last stable offset of the partition's redirect partition now, then waits until
   * the follower has applied everything below it. Afterwards, every hand-off decided before the call (its
   * transaction committed or aborted, its write acknowledged) is in the store.
   */
  async catchUp(sourceTopic: string, partition: number, options: WaitOptions = {}): Promise<bigint> {
    const redirect = this.redirectTopicOf(sourceTopic)
    const offsets = await this.offsets.read(redirect)
    const target = offsets.get(partition)
    if (target === undefined) {
      throw new Error(`The redirect topic ${redirect} has no partition ${partition}: it must have as many partitions as ${sourceTopic}`)
    }
    if (this.position(sourceTopic, partition) < target) this.ensureFollowingLater(sourceTopic, partition)
    await this.waitForPosition(sourceTopic, partition, target, options)
    return target
  }

  /** After a grace period (the consumer may simply not have joined yet), makes sure the partition is followed. */
  private ensureFollowingLater(sourceTopic: string, partition: number): void {
    const timer = setTimeout(() => {
      if (this.running && !this.follows(sourceTopic, partition)) this.ensureFollowing(sourceTopic, partition)
    }, 5000)
    timer.unref()
  }

  private redirectTopicOf(sourceTopic: string): string {
    for (const [redirect, source] of this.sources) if (source === sourceTopic) return redirect
    throw new Error(`${sourceTopic} is not one of the follower's source topics`)
  }

  async stop(): Promise<void> {
    if (this.currentState === 'stopped') return
    this.currentState = 'stopped'
    this.generation++
    if (this.restartTimer) clearTimeout(this.restartTimer)
    this.restartTimer = undefined
    const consumer = this.consumer
    const admin = this.admin
    this.consumer = undefined
    this.admin = undefined
    this.joined = false
    for (const progress of this.progress.values()) {
      for (const waiter of [...progress.waiters]) waiter.reject(new DetourStoppingError('The redirect follower stopped'))
    }
    await Promise.allSettled([consumer?.disconnect(), admin?.disconnect()])
  }
}

export interface WaitOptions {
  /** Ends the wait with the signal's reason (or a {@link DetourStoppingError}). */
  readonly signal?: AbortSignal
  /** Ends the wait with a {@link DetourTimeoutError}. */
  readonly timeoutMs?: number
}

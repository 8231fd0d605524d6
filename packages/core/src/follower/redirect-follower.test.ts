import type { IHeaders, Kafka, Message } from 'kafkajs'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { buildRedirectRecord, buildTombstone } from '../codec/redirect-codec.js'
import { DetourStoppingError, DetourTimeoutError } from '../errors/index.js'
import type { LogFields, Logger } from '../logging/logger.js'
import { groupKeyToStoreKey, type GroupKey } from '../model/group-key.js'
import { detourTopics } from '../model/topic-names.js'
import { GroupStore } from '../store/group-store.js'
import { RedirectFollower, type FollowerMetrics, type RedirectFollowerOptions } from './redirect-follower.js'

// Stand-ins for the kafkajs clients: just what the follower calls, driven by the test.

/** A promise settled from outside. */
class Deferred<T> {
  resolve!: (value: T) => void
  reject!: (error: unknown) => void
  readonly promise = new Promise<T>((resolve, reject) => {
    this.resolve = resolve
    this.reject = reject
  })
}

interface RedirectMessage {
  offset: string
  key: Buffer | null
  value: Buffer | null
  headers?: IHeaders
}

type Listener = (event: { id: number; type: string; timestamp: number; payload: unknown }) => void

class FakeConsumer {
  readonly events = { GROUP_JOIN: 'consumer.group_join', END_BATCH_PROCESS: 'consumer.end_batch_process', CRASH: 'consumer.crash' } as const
  private readonly listeners = new Map<string, Set<Listener>>()
  /** Settles `run()`: kafkajs resolves it after the first join, rejects it when joining fails. */
  readonly running = new Deferred<void>()
  subscription: unknown
  runOptions: { autoCommit?: boolean } | undefined
  private eachBatch: ((payload: { batch: unknown }) => Promise<void>) | undefined
  readonly calls: string[] = []
  batchesDelivered = 0

  constructor(readonly config: Record<string, unknown>) {}

  on(event: string, listener: Listener): () => void {
    let set = this.listeners.get(event)
    if (!set) this.listeners.set(event, (set = new Set()))
    set.add(listener)
    return () => set.delete(listener)
  }

  async connect(): Promise<void> {
    this.calls.push('connect')
  }

  async subscribe(subscription: unknown): Promise<void> {
    this.calls.push('subscribe')
    this.subscription = subscription
  }

  run(options: { autoCommit?: boolean; eachBatch: (payload: { batch: unknown }) => Promise<void> }): Promise<void> {
    this.calls.push('run')
    this.runOptions = { autoCommit: options.autoCommit }
    this.eachBatch = options.eachBatch
    return this.running.promise
  }

  async disconnect(): Promise<void> {
    this.calls.push('disconnect')
  }

  private emit(type: string, payload: unknown): void {
    for (const listener of this.listeners.get(type) ?? []) listener({ id: 1, type, timestamp: Date.now(), payload })
  }

  /** The group join, with this member's assignment (redirect topic → partitions). */
  join(memberAssignment: Record<string, number[]>): void {
    this.emit(this.events.GROUP_JOIN, { groupId: this.config.groupId, memberId: 'm', leaderId: 'm', isLeader: true, groupProtocol: 'RoundRobin', duration: 1, memberAssignment })
  }

  /**
   * A fetched batch as kafkajs runs it: eachBatch with the records (when there are any), then
   * END_BATCH_PROCESS with the last offset (for a batch of only control records, only the latter).
   */
  async deliver(topic: string, partition: number, messages: RedirectMessage[], lastOffset = messages.at(-1)?.offset): Promise<void> {
    if (lastOffset === undefined) throw new Error('an empty batch needs a last offset')
    if (messages.length > 0) {
      this.batchesDelivered++
      await this.eachBatch!({ batch: { topic, partition, messages, lastOffset: () => lastOffset, highWatermark: String(BigInt(lastOffset) + 1n) } })
    }
    this.endBatch(topic, partition, lastOffset)
  }

  endBatch(topic: string, partition: number, lastOffset: string): void {
    this.emit(this.events.END_BATCH_PROCESS, { topic, partition, lastOffset, firstOffset: '0', highWatermark: '0', offsetLag: '0', offsetLagLow: '0', batchSize: 0, duration: 1 })
  }

  crash(error: Error, restart: boolean): void {
    this.emit(this.events.CRASH, { error, groupId: this.config.groupId, restart })
  }
}

class FakeAdmin {
  readonly calls: string[] = []
  /** Each fetchTopicOffsets waits for the test to answer it. */
  readonly requests: { topic: string; reply: Deferred<{ partition: number; offset: string; high: string; low: string }[]> }[] = []

  async connect(): Promise<void> {
    this.calls.push('connect')
  }

  async disconnect(): Promise<void> {
    this.calls.push('disconnect')
  }

  fetchTopicOffsets(topic: string): Promise<{ partition: number; offset: string; high: string; low: string }[]> {
    this.calls.push(`fetchTopicOffsets ${topic}`)
    const reply = new Deferred<{ partition: number; offset: string; high: string; low: string }[]>()
    this.requests.push({ topic, reply })
    return reply.promise
  }

  /** Answers the latest request with these last stable offsets, partition by partition. */
  answer(...highs: string[]): void {
    this.requests.at(-1)!.reply.resolve(highs.map((high, partition) => ({ partition, offset: high, high, low: '0' })))
  }
}

class FakeKafka {
  readonly consumers: FakeConsumer[] = []
  readonly admins: FakeAdmin[] = []
  /** Makes the next consumers fail to connect (a broker that is down). */
  failConnects = 0

  consumer(config: Record<string, unknown>): FakeConsumer {
    const consumer = new FakeConsumer(config)
    if (this.failConnects > 0) {
      this.failConnects--
      consumer.connect = () => Promise.reject(new Error('Connection refused'))
    }
    this.consumers.push(consumer)
    return consumer
  }

  admin(): FakeAdmin {
    const admin = new FakeAdmin()
    this.admins.push(admin)
    return admin
  }

  get current(): FakeConsumer {
    return this.consumers.at(-1)!
  }
}

class RecordingMetrics implements FollowerMetrics {
  readonly calls: unknown[][] = []
  applied(topic: string, kind: 'pending' | 'released', count: number): void {
    this.calls.push(['applied', topic, kind, count])
  }
  unknownTombstones(topic: string, count: number): void {
    this.calls.push(['unknownTombstones', topic, count])
  }
  malformed(topic: string): void {
    this.calls.push(['malformed', topic])
  }
  foreign(topic: string): void {
    this.calls.push(['foreign', topic])
  }
}

class RecordingLogger implements Logger {
  readonly lines: { level: string; message: string; fields: LogFields | undefined }[] = []
  debug(message: string, fields?: LogFields): void {
    this.lines.push({ level: 'debug', message, fields })
  }
  info(message: string, fields?: LogFields): void {
    this.lines.push({ level: 'info', message, fields })
  }
  warn(message: string, fields?: LogFields): void {
    this.lines.push({ level: 'warn', message, fields })
  }
  error(message: string, fields?: LogFields): void {
    this.lines.push({ level: 'error', message, fields })
  }
}

const GROUP = 'billing'
const orders = detourTopics('orders', GROUP)
const payments = detourTopics('payments', GROUP)
const REDIRECT = orders.redirect // orders-billing-redirect

/** A redirect-topic record as kafkajs delivers it, at `offset` of the redirect partition. */
function at(offset: number | string, record: Message): RedirectMessage {
  return { offset: String(offset), key: record.key as Buffer | null, value: (record.value as Buffer | null | undefined) ?? null, headers: record.headers }
}

/** The redirect record of source message orders/<partition>/<sourceOffset>. */
function pending(partition: number, sourceOffset: string, groupKey: GroupKey, consumerGroup = GROUP, topic = 'orders'): Message {
  const source = { topic, partition, offset: sourceOffset }
  return buildRedirectRecord({ source, id: `${topic}/${partition}/${sourceOffset}`, groupKey, reason: 'failure', consumerGroup })
}

function tombstone(partition: number, sourceOffset: string, groupKey: GroupKey, consumerGroup = GROUP, topic = 'orders'): Message {
  return buildTombstone({ partition, id: `${topic}/${partition}/${sourceOffset}`, groupKey, consumerGroup })
}

const k = Buffer.from('customer-1')
const K = groupKeyToStoreKey(k, '')

interface Rig {
  kafka: FakeKafka
  store: GroupStore
  metrics: RecordingMetrics
  logger: RecordingLogger
  errors: Error[]
  progress: [string, number, bigint][]
  delays: number[]
  follower: RedirectFollower
}

const started: RedirectFollower[] = []

afterEach(async () => {
  await Promise.all(started.splice(0).map((follower) => follower.stop()))
})

function rig(options: Partial<RedirectFollowerOptions> = {}): Rig {
  const kafka = new FakeKafka()
  const store = new GroupStore()
  const metrics = new RecordingMetrics()
  const logger = new RecordingLogger()
  const errors: Error[] = []
  const progress: [string, number, bigint][] = []
  const delays: number[] = []
  const follower = new RedirectFollower({
    kafka: kafka as unknown as Kafka,
    consumerGroup: GROUP,
    topics: [orders, payments],
    store,
    metrics,
    logger,
    onError: (error) => errors.push(error),
    onProgress: (topic, partition, position) => progress.push([topic, partition, position]),
    restartDelayMs: (attempt) => (delays.push(attempt), 5),
    ...options,
  })
  started.push(follower)
  return { kafka, store, metrics, logger, errors, progress, delays, follower }
}

async function startedRig(options: Partial<RedirectFollowerOptions> = {}): Promise<Rig> {
  const r = rig(options)
  await r.follower.start()
  r.kafka.current.join({ [REDIRECT]: [0, 1], [payments.redirect]: [0] })
  return r
}

/** How a promise settled so far, without awaiting it. */
function track<T>(promise: Promise<T>): { state: 'pending' | 'resolved' | 'rejected'; value?: T; error?: unknown } {
  const tracked: { state: 'pending' | 'resolved' | 'rejected'; value?: T; error?: unknown } = { state: 'pending' }
  promise.then(
    (value) => Object.assign(tracked, { state: 'resolved', value }),
    (error: unknown) => Object.assign(tracked, { state: 'rejected', error }),
  )
  return tracked
}

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

describe('RedirectFollower', { timeout: 5000 }, () => {
  describe('start', () => {
    it('connects, subscribes to every redirect topic from the beginning and runs without committing, read_committed', async () => {
      const { kafka, follower } = rig({ consumerConfig: { sessionTimeout: 12_000, metadataMaxAge: 1000 } })
      expect(follower.state).toBe('idle')
      await follower.start()
      expect(follower.state).toBe('running')
      expect(kafka.admins).toHaveLength(1)
      expect(kafka.admins[0]!.calls).toEqual(['connect'])
      const consumer = kafka.current
      expect(consumer.calls).toEqual(['connect', 'subscribe', 'run'])
      expect(consumer.subscription).toEqual({ topics: ['orders-billing-redirect', 'payments-billing-redirect'], fromBeginning: true })
      expect(consumer.runOptions).toEqual({ autoCommit: false })
      const { groupId, ...config } = consumer.config
      expect(groupId).toMatch(/^billing-detour-follower-[0-9a-f]{12}$/)
      expect(config).toEqual({ allowAutoTopicCreation: false, readUncommitted: false, metadataMaxAge: 1000, sessionTimeout: 12_000 })
    })

    it('uses a private group per consumer, with the given prefix', async () => {
      const first = rig({ groupIdPrefix: 'follow' })
      const second = rig({ groupIdPrefix: 'follow' })
      await first.follower.start()
      await second.follower.start()
      const ids = [first.kafka.current.config.groupId, second.kafka.current.config.groupId] as string[]
      expect(ids[0]).toMatch(/^follow-[0-9a-f]{12}$/)
      expect(ids[1]).not.toBe(ids[0])
    })

    it('is running only once the consumer joined, and follows what it was assigned', async () => {
      const { kafka, follower } = rig()
      await follower.start()
      expect(follower.running).toBe(false)
      kafka.current.join({ [REDIRECT]: [0, 2], 'some-other-topic': [1] })
      expect(follower.running).toBe(true)
      expect([follower.follows('orders', 0), follower.follows('orders', 1), follower.follows('orders', 2), follower.follows('payments', 0)]).toEqual([
        true,
        false,
        true,
        false,
      ])
      kafka.current.join({ [payments.redirect]: [0] }) // a rebalance replaces the assignment
      expect([follower.follows('orders', 0), follower.follows('payments', 0)]).toEqual([false, true])
    })

    it('refuses a second start', async () => {
      const { follower } = rig()
      await follower.start()
      await expect(follower.start()).rejects.toThrow('The redirect follower is running')
    })
  })

  describe('applying the redirect topic', () => {
    it('applies records and tombstones to the store in log order and reports the counts per batch', async () => {
      const { kafka, store, metrics, progress, follower } = await startedRig()
      const binary = Buffer.from([0xff, 0x7c, 0x00])
      await kafka.current.deliver(REDIRECT, 0, [
        at(0, pending(0, '100', k)),
        at(1, pending(0, '101', k)),
        at(2, pending(0, '102', binary)),
        at(3, tombstone(0, '100', k)),
        at(4, pending(0, '103', null)),
        at(5, tombstone(0, '999', k)), // not pending: already released, or written twice
        at(6, pending(0, '9223372036854775807', k)),
      ])
      expect(store.pendingIds('orders', 0, K)).toEqual(['orders/0/101', 'orders/0/9223372036854775807'])
      expect(store.pendingIds('orders', 0, groupKeyToStoreKey(binary, ''))).toEqual(['orders/0/102'])
      expect(store.pendingIds('orders', 0, groupKeyToStoreKey(null, 'orders/0/103'))).toEqual(['orders/0/103'])
      expect(store.stats()).toEqual({ pendingIds: 4, groups: 3, partitions: 1, utilisation: 4 / 100_000 })
      expect(metrics.calls).toEqual([
        ['applied', 'orders', 'pending', 5],
        ['applied', 'orders', 'released', 1],
        ['unknownTombstones', 'orders', 1],
      ])
      expect(follower.position('orders', 0)).toBe(7n)
      expect(follower.position('orders', 1)).toBe(0n)
      expect(progress).toEqual([['orders', 0, 7n]])
    })

    it('a release and a re-add of the same id in one batch end pending (order matters)', async () => {
      const { kafka, store } = await startedRig()
      await kafka.current.deliver(REDIRECT, 1, [at(0, pending(1, '5', k)), at(1, tombstone(1, '5', k)), at(2, pending(1, '5', k))])
      expect(store.pendingIds('orders', 1, K)).toEqual(['orders/1/5'])
      await kafka.current.deliver(REDIRECT, 1, [at(3, tombstone(1, '5', k))])
      expect(store.pendingIds('orders', 1, K)).toEqual([])
    })

    it('keeps partitions and source topics apart', async () => {
      const { kafka, store, follower } = await startedRig()
      await kafka.current.deliver(REDIRECT, 1, [at(0, pending(1, '7', k))])
      await kafka.current.deliver(payments.redirect, 0, [at(0, pending(0, '7', k, GROUP, 'payments')), at(1, pending(0, '8', k, GROUP, 'payments'))])
      expect(store.pendingIds('orders', 1, K)).toEqual(['orders/1/7'])
      expect(store.pendingIds('orders', 0, K)).toEqual([])
      expect(store.pendingIds('payments', 0, K)).toEqual(['payments/0/7', 'payments/0/8'])
      expect([follower.position('orders', 1), follower.position('payments', 0), follower.position('orders', 0)]).toEqual([1n, 2n, 0n])
    })

    it('skips offsets below the position when a batch is delivered again (replay)', async () => {
      const { kafka, store, metrics, follower } = await startedRig()
      await kafka.current.deliver(REDIRECT, 0, [at(10, pending(0, '1', k)), at(11, pending(0, '2', k)), at(12, tombstone(0, '1', k))])
      expect(follower.position('orders', 0)).toBe(13n)
      metrics.calls.length = 0
      // The same records again, then new ones: applying 10 again would make the released id pending forever.
      await kafka.current.deliver(REDIRECT, 0, [
        at(10, pending(0, '1', k)),
        at(11, pending(0, '2', k)),
        at(12, tombstone(0, '1', k)),
        at(13, pending(0, '3', k)),
        at(14, tombstone(0, '2', k)),
      ])
      expect(store.pendingIds('orders', 0, K)).toEqual(['orders/0/3'])
      expect(metrics.calls).toEqual([
        ['applied', 'orders', 'pending', 1],
        ['applied', 'orders', 'released', 1],
      ])
      expect(follower.position('orders', 0)).toBe(15n)
    })

    it('compares offsets as 64-bit numbers, not as text or doubles', async () => {
      const { kafka, store, follower } = await startedRig()
      await kafka.current.deliver(REDIRECT, 0, [at('9007199254740993', pending(0, '1', k))])
      expect(follower.position('orders', 0)).toBe(9007199254740994n)
      await kafka.current.deliver(REDIRECT, 0, [at('9007199254740993', tombstone(0, '1', k)), at('9007199254740994', pending(0, '2', k))])
      expect(store.pendingIds('orders', 0, K)).toEqual(['orders/0/1', 'orders/0/2'])
      expect(follower.position('orders', 0)).toBe(9007199254740995n)
    })

    it('advances the position from END_BATCH_PROCESS alone (a batch of only commit markers)', async () => {
      const { kafka, follower, progress, metrics } = await startedRig()
      await kafka.current.deliver(REDIRECT, 0, [at(0, pending(0, '1', k))])
      // A committed transaction's marker at offset 1: kafkajs never calls eachBatch for it.
      await kafka.current.deliver(REDIRECT, 0, [], '1')
      expect(kafka.current.batchesDelivered).toBe(1)
      expect(follower.position('orders', 0)).toBe(2n)
      // Never backwards, and never for a topic it does not follow.
      kafka.current.endBatch(REDIRECT, 0, '0')
      kafka.current.endBatch('unrelated', 0, '50')
      expect(follower.position('orders', 0)).toBe(2n)
      expect(progress).toEqual([
        ['orders', 0, 1n],
        ['orders', 0, 2n],
      ])
      expect(metrics.calls).toEqual([['applied', 'orders', 'pending', 1]])
    })

    it('ignores batches of topics it does not follow', async () => {
      const { kafka, store, follower } = await startedRig()
      await kafka.current.deliver('unrelated', 0, [at(0, pending(0, '1', k))])
      expect(store.stats().pendingIds).toBe(0)
      expect(follower.position('orders', 0)).toBe(0n)
    })

    it('counts malformed records, skips them and applies the rest of the batch', async () => {
      const { kafka, store, metrics, logger, follower } = await startedRig()
      const garbage = { offset: '1', key: Buffer.from('not a redirect key'), value: Buffer.from('x'), headers: {} }
      const otherPartition = at(2, pending(1, '5', k)) // an id of source partition 1 in redirect partition 0
      const disagreeing = { ...at(3, pending(0, '6', k)), headers: { 'detour-id': 'orders/0/7' } }
      await kafka.current.deliver(REDIRECT, 0, [at(0, pending(0, '4', k)), garbage, otherPartition, disagreeing, at(4, pending(0, '8', k))])
      expect(store.pendingIds('orders', 0, K)).toEqual(['orders/0/4', 'orders/0/8'])
      expect(store.pendingIds('orders', 1, K)).toEqual([])
      expect(metrics.calls).toEqual([['malformed', 'orders'], ['malformed', 'orders'], ['malformed', 'orders'], ['applied', 'orders', 'pending', 2]])
      expect(logger.lines.filter((l) => l.level === 'warn').map((l) => [l.message, l.fields?.offset, (l.fields?.error as Error).name])).toEqual([
        ['Ignoring a malformed redirect record', '1', 'MalformedRecordError'],
        ['Ignoring a malformed redirect record', '2', 'MalformedRecordError'],
        ['Ignoring a malformed redirect record', '3', 'MalformedRecordError'],
      ])
      expect(follower.position('orders', 0)).toBe(5n)
    })

    it("counts another consumer group's records and tombstones as foreign, skips them and logs once per group", async () => {
      const { kafka, store, metrics, logger } = await startedRig()
      await kafka.current.deliver(REDIRECT, 0, [
        at(0, pending(0, '1', k)),
        at(1, pending(0, '2', k, 'shipping')),
        at(2, tombstone(0, '1', k, 'shipping')), // must not release billing's id
        at(3, pending(0, '3', k, 'audit')),
        at(4, pending(0, '4', k, 'shipping')),
      ])
      expect(store.pendingIds('orders', 0, K)).toEqual(['orders/0/1'])
      expect(metrics.calls).toEqual([
        ['foreign', 'orders'],
        ['foreign', 'orders'],
        ['foreign', 'orders'],
        ['foreign', 'orders'],
        ['applied', 'orders', 'pending', 1],
      ])
      expect(logger.lines.filter((l) => l.level === 'error').map((l) => [l.fields?.otherGroup, l.fields?.offset, l.fields?.consumerGroup])).toEqual([
        ['shipping', '1', 'billing'],
        ['audit', '3', 'billing'],
      ])
    })

    it('applies tombstones of older writers (no consumer group header)', async () => {
      const { kafka, store, metrics } = await startedRig()
      const old = tombstone(0, '1', k)
      delete old.headers!['detour-consumer-group']
      await kafka.current.deliver(REDIRECT, 0, [at(0, pending(0, '1', k)), at(1, old)])
      expect(store.pendingIds('orders', 0, K)).toEqual([])
      expect(metrics.calls).toEqual([
        ['applied', 'orders', 'pending', 1],
        ['applied', 'orders', 'released', 1],
      ])
    })

    // BUG (redirect-codec.ts decodeFast, reached from redirect-follower.ts apply()): a record with a null
    // header value (kafkajs delivers null for a header written with a null value) makes decodeFast throw a
    // TypeError. apply() calls decodeFast outside its try/catch, so the whole batch fails: kafkajs retries it
    // forever and the partition's position never passes the record. It should be applied (the full decoder
    // reads the null header as absent) or at worst counted as malformed and skipped.
    it('does not let a record with a null header value fail the batch', async () => {
      const { kafka, store, follower } = await startedRig()
      const odd = { ...at(1, pending(0, '2', k)), headers: { 'detour-id': null } as unknown as IHeaders }
      await kafka.current.deliver(REDIRECT, 0, [at(0, pending(0, '1', k)), odd, at(2, pending(0, '3', k))])
      expect(store.pendingIds('orders', 0, K)).toEqual(['orders/0/1', 'orders/0/2', 'orders/0/3'])
      expect(follower.position('orders', 0)).toBe(3n)
    })
  })

  describe('waitForPosition', () => {
    it('resolves at once when the position is already there, else when it gets there', async () => {
      const { kafka, follower } = await startedRig()
      await expect(follower.waitForPosition('orders', 0, 0n)).resolves.toBeUndefined()
      const waits = [3n, 5n, 4n].map((target) => track(follower.waitForPosition('orders', 0, target)))
      await kafka.current.deliver(REDIRECT, 0, [at(0, pending(0, '1', k)), at(1, pending(0, '2', k)), at(2, pending(0, '3', k))])
      await flush()
      expect(waits.map((w) => w.state)).toEqual(['resolved', 'pending', 'pending'])
      kafka.current.endBatch(REDIRECT, 0, '4')
      await flush()
      expect(waits.map((w) => w.state)).toEqual(['resolved', 'resolved', 'resolved'])
    })

    it('times out with a DetourTimeoutError that says where it stands, and forgets the waiter', async () => {
      const { kafka, follower } = await startedRig()
      await kafka.current.deliver(REDIRECT, 0, [at(0, pending(0, '1', k)), at(1, pending(0, '2', k))])
      const t0 = Date.now()
      const error = await follower.waitForPosition('orders', 0, 9n, { timeoutMs: 20 }).catch((e: unknown) => e)
      expect(Date.now() - t0).toBeGreaterThanOrEqual(15)
      expect(error).toBeInstanceOf(DetourTimeoutError)
      expect((error as DetourTimeoutError).message).toBe(
        'The redirect follower did not reach offset 9 of the redirect partition of orders/0 within 20 ms (at 2; running)',
      )
      // After a crash (kafkajs restarts it) the message says the consumer has not joined again.
      kafka.current.crash(new Error('gone'), true)
      const whileDown = await follower.waitForPosition('orders', 0, 9n, { timeoutMs: 1 }).catch((e: unknown) => e)
      expect((whileDown as Error).message).toBe('The redirect follower did not reach offset 9 of the redirect partition of orders/0 within 1 ms (at 2; not joined)')
      // A later advance finds no stale waiter.
      await kafka.current.deliver(REDIRECT, 0, [at(8, pending(0, '3', k))])
      expect(follower.position('orders', 0)).toBe(9n)
    })

    it('ends with the abort reason of the signal, before or during the wait', async () => {
      const { follower } = await startedRig()
      const before = new AbortController()
      const reason = new Error('the partition was revoked')
      before.abort(reason)
      await expect(follower.waitForPosition('orders', 0, 1n, { signal: before.signal })).rejects.toBe(reason)
      const during = new AbortController()
      const waiting = follower.waitForPosition('orders', 0, 1n, { signal: during.signal, timeoutMs: 1000 })
      const later = new Error('shutting down')
      during.abort(later)
      await expect(waiting).rejects.toBe(later)
    })

    it('ends with a DetourStoppingError when the abort reason is not an Error', async () => {
      const { follower } = await startedRig()
      const controller = new AbortController()
      const waiting = follower.waitForPosition('orders', 0, 1n, { signal: controller.signal })
      controller.abort('just because')
      const error = await waiting.catch((e: unknown) => e)
      expect(error).toBeInstanceOf(DetourStoppingError)
      expect((error as Error).message).toBe('The wait for the redirect follower was aborted')
    })

    it('a timed-out or aborted waiter does not disturb the others', async () => {
      const { kafka, follower } = await startedRig()
      const controller = new AbortController()
      const aborted = track(follower.waitForPosition('orders', 0, 1n, { signal: controller.signal }))
      const timedOut = track(follower.waitForPosition('orders', 0, 1n, { timeoutMs: 1 }))
      const patient = track(follower.waitForPosition('orders', 0, 1n))
      controller.abort(new Error('x'))
      await new Promise((resolve) => setTimeout(resolve, 10))
      await kafka.current.deliver(REDIRECT, 0, [at(0, pending(0, '1', k))])
      await flush()
      expect([aborted.state, timedOut.state, patient.state]).toEqual(['rejected', 'rejected', 'resolved'])
    })
  })

  describe('catchUp', () => {
    it('reads the last stable offset after the call and resolves when the position reaches it', async () => {
      const { kafka, follower } = await startedRig()
      const admin = kafka.admins[0]!
      const caughtUp = track(follower.catchUp('orders', 1))
      await flush()
      expect(admin.requests.map((r) => r.topic)).toEqual(['orders-billing-redirect'])
      admin.answer('0', '3')
      await flush()
      expect(caughtUp.state).toBe('pending')
      await kafka.current.deliver(REDIRECT, 1, [at(0, pending(1, '1', k)), at(1, pending(1, '2', k))])
      await flush()
      expect(caughtUp.state).toBe('pending')
      // Offset 2 is the commit marker of the transaction that wrote 0 and 1.
      kafka.current.endBatch(REDIRECT, 1, '2')
      await flush()
      expect(caughtUp).toEqual({ state: 'resolved', value: 3n })
    })

    it('resolves once the offsets are read when the position is already past them', async () => {
      const { kafka, follower } = await startedRig()
      await kafka.current.deliver(REDIRECT, 0, [at(0, pending(0, '1', k)), at(1, pending(0, '2', k))])
      const caughtUp = follower.catchUp('orders', 0)
      await flush()
      kafka.admins[0]!.answer('2')
      await expect(caughtUp).resolves.toBe(2n)
    })

    it('does not reuse a reading that was in flight when it was called', async () => {
      const { kafka, follower } = await startedRig()
      const admin = kafka.admins[0]!
      const first = track(follower.catchUp('orders', 0))
      await flush()
      const second = track(follower.catchUp('orders', 0)) // a hand-off committed after the first reading was asked for
      await flush()
      expect(admin.requests).toHaveLength(1)
      admin.answer('1')
      await flush()
      expect(admin.requests).toHaveLength(2)
      admin.answer('4')
      await kafka.current.deliver(REDIRECT, 0, [at(0, pending(0, '1', k))])
      await flush()
      expect(first).toEqual({ state: 'resolved', value: 1n })
      expect(second.state).toBe('pending')
      await kafka.current.deliver(REDIRECT, 0, [at(1, pending(0, '2', k)), at(2, pending(0, '3', k)), at(3, pending(0, '4', k))])
      await flush()
      expect(second).toEqual({ state: 'resolved', value: 4n })
    })

    it('passes its timeout and signal to the wait', async () => {
      const { kafka, follower } = await startedRig()
      const waiting = follower.catchUp('orders', 0, { timeoutMs: 5 })
      await flush()
      kafka.admins[0]!.answer('10')
      await expect(waiting).rejects.toBeInstanceOf(DetourTimeoutError)
    })

    it('fails when the redirect topic lacks the partition or the source topic is not followed', async () => {
      const { kafka, follower } = await startedRig()
      const missing = follower.catchUp('orders', 5)
      await flush()
      kafka.admins[0]!.answer('0', '0')
      await expect(missing).rejects.toThrow('The redirect topic orders-billing-redirect has no partition 5: it must have as many partitions as orders')
      await expect(follower.catchUp('refunds', 0)).rejects.toThrow("refunds is not one of the follower's source topics")
    })

    it('fails with the error of the offsets request', async () => {
      const { kafka, follower } = await startedRig()
      const waiting = follower.catchUp('orders', 0)
      await flush()
      const failure = new Error('LEADER_NOT_AVAILABLE')
      kafka.admins[0]!.requests[0]!.reply.reject(failure)
      await expect(waiting).rejects.toBe(failure)
    })

    it('fails with a DetourStoppingError once stopped', async () => {
      const { follower } = await startedRig()
      await follower.stop()
      await expect(follower.catchUp('orders', 0)).rejects.toBeInstanceOf(DetourStoppingError)
    })

    // BUG (redirect-follower.ts catchUp/waitForPosition, ~line 371 and 322): stop() rejects only the waiters
    // registered at that moment. A catchUp whose offsets reading is in flight when stop() is called registers
    // its waiter afterwards, on a follower that will never advance again: without a timeout it never settles
    // (a hand-off or shutdown awaiting it hangs). waitForPosition called after stop() hangs the same way.
    // Both should reject with DetourStoppingError.
    it('ends a catchUp that was reading offsets when stop() was called', async () => {
      const { kafka, follower } = await startedRig()
      const caughtUp = track(follower.catchUp('orders', 0))
      await flush()
      await follower.stop()
      kafka.admins[0]!.answer('3') // the reply was already on its way
      await new Promise((resolve) => setTimeout(resolve, 20))
      expect(caughtUp.state).toBe('rejected')
      expect(caughtUp.error).toBeInstanceOf(DetourStoppingError)
    })
  })

  describe('stop', () => {
    it('rejects pending waits with DetourStoppingError, disconnects both clients, and is idempotent', async () => {
      const { kafka, follower } = await startedRig()
      const waits = [follower.waitForPosition('orders', 0, 1n), follower.waitForPosition('payments', 0, 7n, { timeoutMs: 1000 })]
      await follower.stop()
      for (const wait of waits) {
        const error = await wait.catch((e: unknown) => e)
        expect(error).toBeInstanceOf(DetourStoppingError)
        expect((error as Error).message).toBe('The redirect follower stopped')
      }
      expect(follower.state).toBe('stopped')
      expect(follower.running).toBe(false)
      expect(kafka.current.calls.at(-1)).toBe('disconnect')
      expect(kafka.admins[0]!.calls).toEqual(['connect', 'disconnect'])
      await follower.stop()
      expect(kafka.current.calls.filter((c) => c === 'disconnect')).toHaveLength(1)
    })

    it('ignores whatever the old consumer still delivers', async () => {
      const { kafka, store, follower, errors } = await startedRig()
      const consumer = kafka.current
      await follower.stop()
      await consumer.deliver(REDIRECT, 0, [at(0, pending(0, '1', k))])
      consumer.crash(new Error('late'), false)
      expect(store.stats().pendingIds).toBe(0)
      expect(follower.position('orders', 0)).toBe(0n)
      expect(errors).toEqual([])
      expect(kafka.consumers).toHaveLength(1)
    })
  })

  describe('crashes and restarts', () => {
    it('after a crash kafkajs restarts itself, it warns and is not running until the consumer joins again', async () => {
      const { kafka, follower, errors, logger, delays } = await startedRig()
      const failure = new Error('The coordinator is loading and hence can\'t process requests')
      kafka.current.crash(failure, true)
      expect(follower.running).toBe(false)
      expect(follower.state).toBe('running')
      // Not a background failure: kafkajs recovers, positions are kept.
      expect(errors).toEqual([])
      expect(logger.lines).toEqual([{ level: 'warn', message: 'Redirect follower crashed; kafkajs restarts it', fields: { error: failure } }])
      kafka.current.join({ [REDIRECT]: [0] })
      expect(follower.running).toBe(true)
      await new Promise((resolve) => setTimeout(resolve, 20))
      expect(kafka.consumers).toHaveLength(1)
      expect(delays).toEqual([])
    })

    it('replaces a consumer kafkajs gave up on after restartDelayMs, keeping the positions', async () => {
      const { kafka, store, follower, errors, delays, logger } = await startedRig()
      const first = kafka.current
      await first.deliver(REDIRECT, 0, [at(0, pending(0, '1', k)), at(1, pending(0, '2', k)), at(2, tombstone(0, '1', k))])
      const failure = new Error('The coordinator is not aware of this member')
      first.crash(failure, false)
      expect(follower.running).toBe(false)
      expect(follower.state).toBe('restarting')
      expect(errors).toEqual([failure])
      expect(delays).toEqual([1])
      expect(logger.lines.filter((l) => l.level !== 'info').map((l) => [l.level, l.message])).toEqual([
        ['error', 'Redirect follower crashed and kafkajs gave up on it; replacing it'],
        ['warn', 'Restarting the redirect follower'],
      ])
      await vi.waitFor(() => expect(kafka.consumers).toHaveLength(2), { timeout: 1000, interval: 2 })
      const second = kafka.current
      await vi.waitFor(() => expect(second.calls).toEqual(['connect', 'subscribe', 'run']), { timeout: 1000, interval: 2 })
      expect(first.calls.at(-1)).toBe('disconnect')
      expect(second.config.groupId).not.toBe(first.config.groupId)
      expect(second.subscription).toEqual(first.subscription)
      expect(follower.state).toBe('running')
      expect(follower.running).toBe(false)
      second.join({ [REDIRECT]: [0, 1] })
      expect(follower.running).toBe(true)
      // The new consumer reads from the beginning; what was applied is skipped, the rest is applied.
      expect(follower.position('orders', 0)).toBe(3n)
      await second.deliver(REDIRECT, 0, [at(0, pending(0, '1', k)), at(1, pending(0, '2', k)), at(2, tombstone(0, '1', k)), at(3, tombstone(0, '2', k))])
      expect(store.pendingIds('orders', 0, K)).toEqual([])
      expect(follower.position('orders', 0)).toBe(4n)
      // The old consumer's late events are ignored.
      first.crash(new Error('late'), false)
      await first.deliver(REDIRECT, 0, [at(4, pending(0, '9', k))])
      expect(store.pendingIds('orders', 0, K)).toEqual([])
      expect(follower.state).toBe('running')
    })

    it('keeps pending waits across a restart and resolves them from the new consumer', async () => {
      const { kafka, follower } = await startedRig()
      const waiting = track(follower.waitForPosition('orders', 0, 2n))
      kafka.current.crash(new Error('gave up'), false)
      await vi.waitFor(() => expect(kafka.consumers).toHaveLength(2), { timeout: 1000, interval: 2 })
      await vi.waitFor(() => expect(kafka.current.calls).toContain('run'), { timeout: 1000, interval: 2 })
      await kafka.current.deliver(REDIRECT, 0, [at(0, pending(0, '1', k)), at(1, pending(0, '2', k))])
      await flush()
      expect(waiting.state).toBe('resolved')
    })

    it('backs off with growing attempts while restarts fail, and starts over after a join', async () => {
      const { kafka, follower, errors, delays } = await startedRig()
      kafka.failConnects = 2
      kafka.current.crash(new Error('gave up'), false)
      await vi.waitFor(() => expect(kafka.consumers).toHaveLength(4), { timeout: 1000, interval: 2 })
      expect(delays).toEqual([1, 2, 3])
      expect(errors.map((e) => e.message)).toEqual(['gave up', 'Connection refused', 'Connection refused'])
      await vi.waitFor(() => expect(kafka.current.calls).toEqual(['connect', 'subscribe', 'run']), { timeout: 1000, interval: 2 })
      kafka.current.join({ [REDIRECT]: [0] })
      kafka.current.crash(new Error('gave up again'), false)
      expect(delays).toEqual([1, 2, 3, 1])
      await vi.waitFor(() => expect(kafka.consumers).toHaveLength(5), { timeout: 1000, interval: 2 })
      expect(follower.state).toBe('running')
    })

    it('replaces a consumer whose run() fails (it could not join its group)', async () => {
      const { kafka, errors, logger, follower } = rig()
      await follower.start() // not joined: run() is still pending
      const failure = new Error('GROUP_AUTHORIZATION_FAILED')
      kafka.current.running.reject(failure)
      await vi.waitFor(() => expect(kafka.consumers).toHaveLength(2), { timeout: 1000, interval: 2 })
      expect(errors).toEqual([failure])
      expect(logger.lines.filter((l) => l.level === 'error').map((l) => l.message)).toEqual(['The redirect follower could not join its group'])
    })

    it('does not restart when stopped during the restart delay', async () => {
      const { kafka, follower } = await startedRig({ restartDelayMs: () => 20 })
      kafka.current.crash(new Error('gave up'), false)
      await follower.stop()
      await new Promise((resolve) => setTimeout(resolve, 40))
      expect(kafka.consumers).toHaveLength(1)
      expect(follower.state).toBe('stopped')
    })

    it('restarts to pick up a redirect partition it is not assigned (added at runtime)', async () => {
      const { kafka, follower, logger } = await startedRig()
      follower.ensureFollowing('orders', 1) // assigned: nothing to do
      expect(follower.state).toBe('running')
      follower.ensureFollowing('orders', 2)
      expect(follower.state).toBe('restarting')
      expect(logger.lines.filter((l) => l.level === 'info').map((l) => l.fields)).toEqual([{ topic: 'orders', partition: 2 }])
      await vi.waitFor(() => expect(kafka.consumers).toHaveLength(2), { timeout: 1000, interval: 2 })
      await vi.waitFor(() => expect(kafka.current.calls).toContain('run'), { timeout: 1000, interval: 2 })
      kafka.current.join({ [REDIRECT]: [0, 1, 2] })
      expect(follower.follows('orders', 2)).toBe(true)
    })
  })
})

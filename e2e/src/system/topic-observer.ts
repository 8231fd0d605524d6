import type { Admin, Consumer, Kafka } from 'kafkajs'
import { randomName } from '@detour/testkit'
import { Observations, type ObservedTopics } from './observations.js'

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

/**
 * Reads the source (ids only), output, error, redirect and retry topics of a run from the beginning, as they grow, into
 * {@link Observations}. A private group that never commits; records are applied once per offset, so a
 * consumer that starts over (after a crash) does not double anything. A consumer that crashes for good
 * is replaced: the checker must not miss what the apps wrote.
 */
export class TopicObserver {
  readonly observations: Observations
  private consumer: Consumer | undefined
  private admin: Admin
  private started = false
  private watchdog: NodeJS.Timeout | undefined
  private lastProgress = { total: -1n, at: Date.now() }
  private stopping = false
  private replacing: Promise<void> | undefined
  /** Crashes of the observer's consumer (diagnostics). */
  readonly crashes: string[] = []

  constructor(
    private readonly kafka: Kafka,
    readonly topics: ObservedTopics,
    run: string,
    private readonly log: (line: string) => void = () => {},
    /** kafkajs `metadataMaxAge` of its consumer (see `childConsumerTiming`: set on the embedded broker only). */
    private readonly metadataMaxAge?: number,
  ) {
    this.observations = new Observations(topics, run)
    this.admin = kafka.admin()
  }

  private get list(): string[] {
    return [this.topics.source, this.topics.output, this.topics.error, this.topics.redirect, this.topics.retry]
  }

  async start(): Promise<void> {
    if (this.started) return
    this.started = true
    await this.admin.connect()
    await this.startConsumer()
    this.watchdog = setInterval(() => void this.checkStall(), 2000)
    this.watchdog.unref()
  }

  private positionsTotal(): bigint {
    let total = 0n
    for (const topic of this.list) for (let p = 0; p < 64; p++) total += this.observations.position(topic, p)
    return total
  }

  /**
   * Replaces a consumer that stopped reading although the topics grew (after broker faults on the
   * embedded cluster, requests were seen that the broker never answered).
   */
  private async checkStall(): Promise<void> {
    if (this.stopping || this.replacing) return
    const total = this.positionsTotal()
    if (total !== this.lastProgress.total) {
      this.lastProgress = { total, at: Date.now() }
      return
    }
    if (Date.now() - this.lastProgress.at < 8000) return
    let behind = true
    try {
      const marks = await withTimeout(this.highWatermarks(), 3000, 'fetching high watermarks')
      behind = marks.some((m) => this.observations.position(m.topic, m.partition) < m.high)
    } catch (error) {
      // The admin client is stuck as well: replace it, and the consumer with it.
      this.log(`observer: ${String(error)}; replacing its admin client`)
      const old = this.admin
      this.admin = this.kafka.admin()
      void withTimeout(old.disconnect(), 3000, 'disconnecting the admin').catch(() => undefined)
      await withTimeout(this.admin.connect(), 5000, 'connecting the admin').catch(() => undefined)
    }
    if (!behind || this.stopping || this.replacing || !this.consumer) return
    this.crashes.push(`${new Date().toISOString()} no progress for 8 s while behind; replaced`)
    this.log('observer consumer made no progress for 8 s although the topics grew; replacing it')
    this.lastProgress = { total, at: Date.now() }
    this.replacing = this.replace(this.consumer)
  }

  private async startConsumer(): Promise<void> {
    const consumer = this.kafka.consumer({
      groupId: randomName('detour-e2e-observer'),
      maxWaitTimeInMs: 100,
      sessionTimeout: 10_000,
      rebalanceTimeout: 10_000,
      heartbeatInterval: 500,
      ...(this.metadataMaxAge === undefined ? {} : { metadataMaxAge: this.metadataMaxAge }),
      allowAutoTopicCreation: false,
    })
    this.consumer = consumer
    consumer.on(consumer.events.CRASH, (event) => {
      const { error, restart } = event.payload
      this.crashes.push(`${new Date().toISOString()} ${error.name}: ${error.message} (restart: ${restart})`)
      this.log(`observer consumer crashed: ${error.name}: ${error.message} (kafkajs restarts it: ${restart})`)
      if (!restart && !this.stopping) this.replacing ??= this.replace(consumer)
    })
    // Hand-offs are transactions: their commit markers take offsets that no eachBatch delivers.
    consumer.on(consumer.events.END_BATCH_PROCESS, (event) => {
      this.observations.advance(event.payload.topic, event.payload.partition, BigInt(event.payload.lastOffset) + 1n)
    })
    await consumer.connect()
    await consumer.subscribe({ topics: this.list, fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        this.observations.apply(batch.topic, batch.partition, batch.messages)
      },
    })
  }

  /** A new consumer (new group, from the beginning): positions make the re-read idempotent. */
  private async replace(crashed: Consumer): Promise<void> {
    await withTimeout(crashed.disconnect(), 5000, 'disconnecting the observer').catch(() => undefined)
    while (!this.stopping) {
      try {
        await this.startConsumer()
        break
      } catch (error) {
        this.log(`observer consumer could not restart: ${String(error)}`)
        await sleep(1000)
      }
    }
    this.replacing = undefined
  }

  /** The high watermark of every partition of the observed topics. */
  async highWatermarks(): Promise<Array<{ topic: string; partition: number; high: bigint }>> {
    const out: Array<{ topic: string; partition: number; high: bigint }> = []
    for (const topic of this.list) {
      for (const { partition, high } of await this.admin.fetchTopicOffsets(topic)) out.push({ topic, partition, high: BigInt(high) })
    }
    return out
  }

  /** Waits until everything written so far has been read (each partition up to its current high watermark). */
  async catchUp(timeoutMs = 30_000): Promise<void> {
    const marks = await withTimeout(this.highWatermarks(), timeoutMs, 'fetching high watermarks')
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const behind = marks.filter((m) => this.observations.position(m.topic, m.partition) < m.high)
      if (behind.length === 0) return
      if (Date.now() > deadline) {
        const sample = behind
          .slice(0, 5)
          .map((m) => `${m.topic}/${m.partition} at ${this.observations.position(m.topic, m.partition)} of ${m.high}`)
          .join(', ')
        throw new Error(`The topic observer did not catch up within ${timeoutMs} ms: ${sample}${this.crashes.length > 0 ? `; its crashes: ${this.crashes.join('; ')}` : ''}`)
      }
      await sleep(50)
    }
  }

  async stop(): Promise<void> {
    if (!this.started) return
    this.started = false
    this.stopping = true
    if (this.watchdog) clearInterval(this.watchdog)
    await this.replacing
    await withTimeout(this.consumer?.disconnect() ?? Promise.resolve(), 10_000, 'disconnecting the observer').catch(() => undefined)
    await withTimeout(this.admin.disconnect(), 5000, 'disconnecting the admin').catch(() => undefined)
  }
}

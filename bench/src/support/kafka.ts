import type { Consumer, ConsumerRunConfig, Kafka, Message } from 'kafkajs'
import { randomName, type ConsumerTiming } from '@detour/testkit'

/** Writes records in batches (acks=all), one producer. Returns when everything is acknowledged. */
export async function fill(kafka: Kafka, topic: string, messages: readonly Message[], batchSize = 500): Promise<void> {
  const producer = kafka.producer({ allowAutoTopicCreation: false })
  await producer.connect()
  try {
    for (let i = 0; i < messages.length; i += batchSize) {
      await producer.send({ topic, acks: -1, messages: messages.slice(i, i + batchSize) })
    }
  } finally {
    await producer.disconnect()
  }
}

/** A promise with its resolve/reject exposed. */
export interface Deferred<T> {
  readonly promise: Promise<T>
  resolve(value: T): void
  reject(error: Error): void
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void
  let reject!: (error: Error) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** Rejects with `what` when `promise` takes longer than `ms` (a stuck benchmark fails instead of hanging). */
export async function within<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms: ${what()}`)), ms)
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Counts processed messages and remembers when the first arrived and when the `expected`-th finished:
 * throughput is measured from the first message to the last, so connecting and joining are excluded.
 */
export class Span {
  first: number | undefined
  last: number | undefined
  count = 0
  readonly done = deferred<void>()

  constructor(readonly expected: number) {}

  start(): void {
    this.first ??= performance.now()
  }

  finish(n = 1): void {
    this.count += n
    if (this.count >= this.expected && this.last === undefined) {
      this.last = performance.now()
      this.done.resolve()
    }
  }

  get seconds(): number {
    if (this.first === undefined || this.last === undefined) throw new Error('span not finished')
    return (this.last - this.first) / 1000
  }

  /** Messages per second over the span. */
  get rate(): number {
    return this.expected / this.seconds
  }
}

/**
 * A connected, subscribed, running consumer in a fresh group reading `topic` from the beginning, with the
 * run's consumer settings (`BenchContext.consumerConfig`, the same for Detour's consumers).
 */
export async function startConsumer(
  kafka: Kafka,
  topic: string,
  run: ConsumerRunConfig,
  consumerConfig: ConsumerTiming,
  groupId = randomName('bench-raw'),
): Promise<Consumer> {
  const consumer = kafka.consumer({ groupId, ...consumerConfig })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run(run)
  return consumer
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

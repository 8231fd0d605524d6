import { Partitioners, type Kafka, type Message, type PartitionerArgs, type Producer } from 'kafkajs'
import { encodeValue, type Workload, type WorkloadMessage } from './workload.js'

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

export interface WorkloadProducerOptions {
  /** A send that takes longer is abandoned and sent again on a new producer. @defaultValue 10000 */
  readonly sendTimeoutMs?: number
  /** Partitions of the source topic: each message's partition is computed here (kafkajs' default partitioner). */
  readonly partitions: number
  readonly log?: (line: string) => void
}

/**
 * Writes the workload to the source topic, in order, keyed by the message key (so each key stays in one
 * partition, in sequence order). One request in flight.
 *
 * It is test infrastructure and must not be the weak link under broker faults: a send that fails or
 * hangs (after a broker of the embedded cluster went down and up, a Produce request was seen appended
 * but never answered) is sent again on a new producer. That can duplicate a batch in the source topic, and
 * the abandoned producer's own retries can land its copy late, after newer messages of the same keys (seen
 * in the CORRUPT_MESSAGE scenario). The copies never reorder a key's first occurrences; they are processed
 * again where the log holds them, which the checker judges by source offset (see `sourceOrder` there).
 *
 * kafkajs 2.2.4 can also resolve a multi-partition `send()` without writing some partitions (its
 * `sendMessages.js` retry skips every broker that answered the first attempt, including one that became
 * the leader of a failed broker's partitions; kafkajs#1303): seen as messages missing from the source topic
 * after a broker was SIGKILLed. So each message's partition is set here, and a partition missing from the
 * acknowledgements is sent again before the next batch (per-key order holds: a key has one partition).
 * Detour's own writes send one record per request, which this kafkajs defect cannot drop.
 */
export class WorkloadProducer {
  /** Batches sent again after a failed or hung send. */
  resends = 0
  /** Partitions kafkajs acknowledged no write for (and that were sent again). */
  unacknowledged = 0
  private producer: Producer | undefined
  private readonly partitionOf: (message: Message) => number

  constructor(
    private readonly kafka: Kafka,
    private readonly topic: string,
    private readonly options: WorkloadProducerOptions,
  ) {
    const partitioner = Partitioners.DefaultPartitioner()
    const partitionMetadata = Array.from({ length: options.partitions }, (_, partitionId) => ({ partitionId, leader: 0 }))
    this.partitionOf = (message) => partitioner({ topic, partitionMetadata, message } as PartitionerArgs)
  }

  private create(): Producer {
    return this.kafka.producer({ maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false })
  }

  async connect(): Promise<void> {
    this.producer ??= this.create()
    await this.producer.connect()
  }

  private async replace(): Promise<void> {
    const old = this.producer
    this.producer = undefined
    // Disconnecting closes the sockets; a hung disconnect is not waited for long.
    if (old) await withTimeout(old.disconnect(), 3000, 'disconnecting the producer').catch(() => undefined)
    const fresh = this.create()
    await withTimeout(fresh.connect(), 10_000, 'connecting a new producer')
    this.producer = fresh
  }

  /**
   * Sends one batch; on failure sends it again on a new producer, and the messages of partitions without an
   * acknowledgement again, until every partition is acknowledged or `stopped()`.
   */
  async send(batch: readonly WorkloadMessage[], stopped: () => boolean = () => false): Promise<void> {
    const timeoutMs = this.options.sendTimeoutMs ?? 10_000
    let messages: Message[] = batch.map((m) => {
      const message: Message = { key: m.key, value: encodeValue(m), headers: { 'x-demo-ref': m.ref } }
      return { ...message, partition: this.partitionOf(message) }
    })
    for (let attempt = 1; ; attempt++) {
      try {
        if (!this.producer) await this.replace()
        const acks = await withTimeout(this.producer!.send({ topic: this.topic, acks: -1, messages }), timeoutMs, 'a workload send')
        const acknowledged = new Set(acks.filter((ack) => ack.errorCode === 0).map((ack) => ack.partition))
        const missing = messages.filter((m) => !acknowledged.has(m.partition!))
        if (missing.length === 0) return
        const partitions = [...new Set(missing.map((m) => m.partition))]
        this.unacknowledged += partitions.length
        this.options.log?.(`kafkajs resolved a workload send without acknowledging partition(s) ${partitions.join(', ')} (${missing.length} message(s)); sending them again`)
        messages = missing
      } catch (error) {
        if (stopped()) throw error
        this.resends++
        this.options.log?.(`workload send of ${batch.length} message(s) failed (${String(error)}); sending again on a new producer (attempt ${attempt + 1})`)
        await this.replace().catch((replaceError: unknown) => {
          this.producer = undefined
          this.options.log?.(`could not create a new workload producer: ${String(replaceError)}`)
        })
        await sleep(Math.min(2000, 100 * attempt))
      }
    }
  }

  /** Produces the whole workload (paced to `ratePerSec` when given) until done or `stopped()`. */
  async produce(workload: Workload, ratePerSec: number | undefined, onSent: (count: number) => void, stopped: () => boolean): Promise<void> {
    const chunk = ratePerSec === undefined ? 200 : Math.max(1, Math.round(ratePerSec / 10))
    const started = Date.now()
    let sent = 0
    while (sent < workload.messages.length && !stopped()) {
      const batch = workload.messages.slice(sent, sent + chunk)
      await this.send(batch, stopped)
      sent += batch.length
      onSent(sent)
      if (ratePerSec !== undefined) {
        const due = started + (sent / ratePerSec) * 1000
        if (due > Date.now()) await sleep(due - Date.now())
      }
    }
  }

  async disconnect(): Promise<void> {
    const producer = this.producer
    this.producer = undefined
    if (producer) await withTimeout(producer.disconnect(), 5000, 'disconnecting the producer').catch(() => undefined)
  }
}

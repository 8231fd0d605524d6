import { spawn, type ChildProcess } from 'node:child_process'
import { cpSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync, type WriteStream } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Kafka, logLevel } from 'kafkajs'
import { AdminTopics } from '../admin/admin-topics.js'
import { BrokerCapabilityError, type BrokerCapabilities, type ConsumerTiming, type TestBroker, type TopicSettings } from '../types.js'
import { ensureKafkaDistribution, storageTemplate, type KafkaDistribution } from './kafka-distribution.js'

export interface KafkaClusterOptions {
  /** Brokers (each also a KRaft controller). 3 gives a cluster that survives the loss of one. @defaultValue 1 */
  nodes?: number
  /** Where the broker logs (and data) go. @defaultValue a new folder under the OS temp dir */
  dir?: string
  /** Heap of each JVM, in MiB. @defaultValue 512 (one node), 384 (more) */
  heapMb?: number
  /**
   * `fast`: the JIT's first tier only (-XX:TieredStopAtLevel=1): starts in about half the time; right for
   * tests. `full`: the normal JIT, for benchmarks. @defaultValue 'fast'
   */
  jit?: 'fast' | 'full'
  /** Extra broker settings (`server.properties` keys). */
  config?: Readonly<Record<string, string>>
  /** Progress lines (the first run fetches Kafka with Maven). */
  log?: (line: string) => void
}

interface Node {
  readonly id: number
  readonly port: number
  readonly controllerPort: number
  readonly dataDir: string
  readonly configFile: string
  readonly logFile: string
  process: ChildProcess | undefined
  log: WriteStream | undefined
  /** Set while this node writes the class-data archive (see `start`). */
  archive: string | undefined
}

const live = new Set<KafkaCluster>()
process.once('exit', () => {
  // Last resort for a normal exit without stop(). A crash or SIGKILL is covered by run-kafka.sh.
  for (const cluster of live) cluster.killAllSync()
})

/**
 * Apache Kafka (KRaft, combined broker/controller nodes) as JVM child processes on loopback: the test kit's
 * "kafka" broker mode. The jars come from Maven Central through Maven and are cached; each node's storage
 * is formatted once and copied. Every JVM runs under `kafka/run-kafka.sh`, which kills it when this
 * process ends, however it ends.
 */
export class KafkaCluster implements TestBroker {
  readonly mode = 'kafka' as const
  readonly brokers: string[]
  readonly brokerIds: number[]
  readonly description: string
  readonly capabilities: BrokerCapabilities
  readonly topicAdmin: AdminTopics
  readonly consumerTiming: ConsumerTiming = { sessionTimeout: 4000, rebalanceTimeout: 4000, heartbeatInterval: 300, maxWaitTimeInMs: 100 }
  readonly dir: string
  private readonly nodes: Node[]
  private stopped = false

  private constructor(
    private readonly dist: KafkaDistribution,
    nodes: Node[],
    dir: string,
    private readonly options: KafkaClusterOptions,
  ) {
    this.nodes = nodes
    this.dir = dir
    this.brokers = nodes.map((node) => `127.0.0.1:${node.port}`)
    this.brokerIds = nodes.map((node) => node.id)
    this.description = `Apache Kafka ${dist.version} (KRaft, ${nodes.length} node${nodes.length === 1 ? '' : 's'}, ${this.brokers.join(',')})`
    this.capabilities = {
      faultInjection: false,
      brokerRestart: true,
      compaction: true,
      adminApi: true,
      transactions: true,
      partitionRetentionBytes: undefined,
    }
    this.topicAdmin = new AdminTopics(this.brokers)
  }

  /** Starts a cluster and resolves once every broker is registered and answers. */
  static async start(options: KafkaClusterOptions = {}): Promise<KafkaCluster> {
    const count = options.nodes ?? 1
    if (!Number.isInteger(count) || count < 1) throw new Error(`nodes must be a positive integer, got ${count}`)
    const dist = await ensureKafkaDistribution(options.log)
    const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'detour-kafka-'))
    mkdirSync(dir, { recursive: true })
    const ports = await freePorts(count * 2)
    const nodes: Node[] = Array.from({ length: count }, (_, i) => ({
      id: i + 1,
      port: ports[i * 2]!,
      controllerPort: ports[i * 2 + 1]!,
      dataDir: join(dir, `data-${i + 1}`),
      configFile: join(dir, `server-${i + 1}.properties`),
      logFile: join(dir, `kafka-${i + 1}.log`),
      process: undefined,
      log: undefined,
      archive: undefined,
    }))
    const cluster = new KafkaCluster(dist, nodes, dir, options)
    live.add(cluster)
    try {
      for (const node of nodes) {
        writeFileSync(node.configFile, cluster.properties(node, node.dataDir))
        const template = await storageTemplate(dist, node.id, (logDir) => cluster.properties(node, logDir))
        cpSync(template, node.dataDir, { recursive: true })
      }
      for (const node of nodes) cluster.launch(node)
      await cluster.waitReady(120_000)
    } catch (error) {
      const tail = cluster.logTail(40)
      await cluster.stop()
      throw new Error(`Apache Kafka did not start: ${(error as Error).message}\n${tail}`)
    }
    return cluster
  }

  private properties(node: Node, logDir: string): string {
    const n = this.nodes.length
    const voters = this.nodes.map((other) => `${other.id}@127.0.0.1:${other.controllerPort}`).join(',')
    const settings: Record<string, string> = {
      'process.roles': 'broker,controller',
      'node.id': String(node.id),
      'controller.quorum.voters': voters,
      listeners: `PLAINTEXT://127.0.0.1:${node.port},CONTROLLER://127.0.0.1:${node.controllerPort}`,
      'advertised.listeners': `PLAINTEXT://127.0.0.1:${node.port}`,
      'controller.listener.names': 'CONTROLLER',
      'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
      'inter.broker.listener.name': 'PLAINTEXT',
      'log.dirs': logDir,
      'auto.create.topics.enable': 'false',
      'num.partitions': '1',
      'default.replication.factor': String(Math.min(3, n)),
      // acks=all with one replica down still succeeds on a 3-node cluster, and fails with two down.
      'min.insync.replicas': String(n >= 3 ? 2 : 1),
      'offsets.topic.replication.factor': String(Math.min(3, n)),
      'offsets.topic.num.partitions': '8',
      'transaction.state.log.replication.factor': String(Math.min(3, n)),
      'transaction.state.log.min.isr': String(n >= 3 ? 2 : 1),
      'transaction.state.log.num.partitions': '8',
      // Tests join groups all the time: no initial delay, and sessions as short as 1 s are allowed.
      'group.initial.rebalance.delay.ms': '0',
      'group.min.session.timeout.ms': '1000',
      // Compaction observable within seconds (topics that want it set segment.ms and min.cleanable.dirty.ratio).
      'log.cleaner.backoff.ms': '1000',
      'log.cleaner.threads': '1',
      'log.cleaner.dedupe.buffer.size': String(8 * 1024 * 1024),
      // A killed broker leaves the ISR, and loses its leaderships, within seconds rather than 30 s.
      'replica.lag.time.max.ms': '5000',
      'broker.session.timeout.ms': '3000',
      'broker.heartbeat.interval.ms': '500',
      'num.network.threads': '2',
      'num.io.threads': '4',
      'num.recovery.threads.per.data.dir': '1',
      'share.coordinator.state.topic.replication.factor': String(Math.min(3, n)),
      'share.coordinator.state.topic.min.isr': String(n >= 3 ? 2 : 1),
      ...this.options.config,
    }
    return `${Object.entries(settings)
      .map(([key, value]) => `${key}=${value}`)
      .join('\n')}\n`
  }

  private launch(node: Node): void {
    const archive = join(this.dist.home, 'classes.jsa')
    const jvm = [
      `-Xms128m`,
      `-Xmx${this.options.heapMb ?? (this.nodes.length === 1 ? 512 : 384)}m`,
      '-XX:+UseSerialGC',
      '-XX:-UsePerfData',
      '-Djava.awt.headless=true',
      `-Dlog4j2.configurationFile=${this.dist.log4jConfig}`,
    ]
    if ((this.options.jit ?? 'fast') === 'fast') jvm.push('-XX:TieredStopAtLevel=1')
    // A class-data archive roughly halves the start. The first broker that runs without one writes it when
    // it exits (a graceful stop, see stop()); later starts load it.
    node.archive = undefined
    if (existsSync(archive)) jvm.push(`-XX:SharedArchiveFile=${archive}`)
    else if (node.id === 1 && (this.options.jit ?? 'fast') === 'fast') {
      node.archive = join(this.dist.home, `classes.${process.pid}.jsa`)
      jvm.push(`-XX:ArchiveClassesAtExit=${node.archive}`)
    }
    node.log = createWriteStream(node.logFile, { flags: 'a' })
    node.log.write(`--- ${new Date().toISOString()} starting node ${node.id}\n`)
    const child = spawn(this.dist.wrapper, [this.dist.java, ...jvm, '-cp', this.dist.classpath, 'kafka.Kafka', node.configFile], {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    })
    child.stdout?.pipe(node.log, { end: false })
    child.stderr?.pipe(node.log, { end: false })
    // The pipe stays open while this process lives: its end-of-file is what kills an orphaned JVM.
    child.stdin?.on('error', () => undefined)
    child.once('exit', () => {
      if (node.process === child) node.process = undefined
      child.stdin?.destroy()
    })
    node.process = child
  }

  private async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    const kafka = new Kafka({ clientId: 'detour-testkit-ready', brokers: this.brokers, logLevel: logLevel.NOTHING, retry: { retries: 0 } })
    for (;;) {
      for (const node of this.nodes) {
        if (node.process === undefined) throw new Error(`node ${node.id} exited during start-up`)
      }
      const admin = kafka.admin()
      try {
        await admin.connect()
        const cluster = await admin.describeCluster()
        if (cluster.brokers.length === this.nodes.length && cluster.controller !== null) return
      } catch {
        // not up yet
      } finally {
        await admin.disconnect().catch(() => undefined)
      }
      if (Date.now() > deadline) throw new Error(`not ready after ${timeoutMs} ms`)
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }

  async createTopic(name: string, partitions: number, settings: TopicSettings = {}): Promise<void> {
    await this.topicAdmin.createTopic({ topic: name, partitions, ...settings })
  }

  /** SIGKILLs a broker's JVM: no controlled shutdown, as when a machine dies. */
  async killBroker(brokerId: number): Promise<void> {
    const node = this.node(brokerId)
    const child = node.process
    if (!child?.pid) return
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    try {
      process.kill(-child.pid, 'SIGKILL')
    } catch {
      // already gone
    }
    await exited
    node.archive = undefined
  }

  /** Starts a killed (or stopped) broker again with its data, and waits until the cluster has it back. */
  async restartBroker(brokerId: number, timeoutMs = 120_000): Promise<void> {
    const node = this.node(brokerId)
    if (node.process) throw new Error(`broker ${brokerId} is running`)
    this.launch(node)
    await this.waitReady(timeoutMs)
  }

  isRunning(brokerId: number): boolean {
    return this.node(brokerId).process !== undefined
  }

  private node(brokerId: number): Node {
    const node = this.nodes.find((n) => n.id === brokerId)
    if (!node) throw new Error(`no broker ${brokerId} (brokers: ${this.brokerIds.join(', ')})`)
    return node
  }

  /** The last lines of every node's log (printed when a test fails). */
  logTail(lines = 60): string {
    return this.nodes
      .map((node) => {
        let text = ''
        try {
          text = readFileSync(node.logFile, 'utf8')
        } catch {
          return `--- ${node.logFile}: no log`
        }
        return `--- last ${lines} lines of ${node.logFile}\n${text.split('\n').slice(-lines - 1).join('\n')}`
      })
      .join('\n')
  }

  injectErrors(): void {
    throw new BrokerCapabilityError(this.mode, 'Protocol-level fault injection (use the embedded broker)')
  }
  injectBrokerErrors(): void {
    throw new BrokerCapabilityError(this.mode, 'Protocol-level fault injection (use the embedded broker)')
  }
  clearErrors(): void {
    throw new BrokerCapabilityError(this.mode, 'Protocol-level fault injection (use the embedded broker)')
  }
  setBrokerDown(): void {
    throw new BrokerCapabilityError(this.mode, 'setBrokerDown (use killBroker/restartBroker)')
  }
  setBrokerUp(): void {
    throw new BrokerCapabilityError(this.mode, 'setBrokerUp (use killBroker/restartBroker)')
  }
  setBrokerRtt(): void {
    throw new BrokerCapabilityError(this.mode, 'setBrokerRtt')
  }

  /**
   * Stops every JVM (SIGKILL: the data is thrown away) and deletes the data; the logs stay in `dir`. A node
   * that writes the class-data archive is stopped gracefully instead, so the JVM can write it.
   */
  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    await Promise.all(
      this.nodes.map(async (node) => {
        const child = node.process
        if (!child?.pid) return
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
        if (node.archive) {
          child.kill('SIGTERM')
          const timer = setTimeout(() => this.killGroup(child), 20_000)
          await exited
          clearTimeout(timer)
          const archive = join(this.dist.home, 'classes.jsa')
          if (existsSync(node.archive) && !existsSync(archive)) renameSync(node.archive, archive)
          rmSync(node.archive, { force: true })
          return
        }
        this.killGroup(child)
        await exited
      }),
    )
    for (const node of this.nodes) {
      node.log?.end()
      rmSync(node.dataDir, { recursive: true, force: true })
    }
    live.delete(this)
  }

  private killGroup(child: ChildProcess): void {
    if (!child.pid) return
    try {
      process.kill(-child.pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }

  /** Synchronous kill for the process `exit` hook. */
  killAllSync(): void {
    for (const node of this.nodes) if (node.process) this.killGroup(node.process)
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop()
  }
}

/** Distinct free loopback ports (bound and released; Kafka binds them moments later). */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const server = createServer()
          server.once('error', reject)
          server.listen(0, '127.0.0.1', () => resolve(server))
        }),
    ),
  )
  const ports = servers.map((server) => {
    const address = server.address()
    if (typeof address !== 'object' || address === null) throw new Error('no free port')
    return address.port
  })
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))))
  return ports
}

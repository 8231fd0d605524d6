import { EmbeddedBroker, type EmbeddedBrokerOptions } from './embedded/embedded-broker.js'
import { KafkaAdminBroker } from './external/kafka-admin-broker.js'
import { dockerAvailable, startContainerBroker } from './container/kafka-container.js'
import { KafkaCluster, type KafkaClusterOptions } from './kafka/kafka-cluster.js'
import { kafkaUnavailableReason } from './kafka/kafka-distribution.js'
import type { BrokerCapabilities, BrokerMode, TestBroker } from './types.js'

/** What a test needs from its broker. The broker is chosen to provide it (or the test is skipped, saying why). */
export type BrokerNeed =
  /** Protocol-level errors, dropped connections, brokers set down: only the embedded mock cluster. */
  | 'fault-injection'
  /** Broker processes that can be SIGKILLed and restarted: a cluster the test kit runs itself. */
  | 'broker-restart'
  /** Real log compaction. */
  | 'compaction'
  /** CreateTopics, DescribeConfigs, DescribeGroups, DeleteRecords… */
  | 'admin-api'
  /** Faithful transactions (aborted records invisible to read_committed, offsets committed in a transaction). */
  | 'transactions'

export interface StartBrokerOptions extends EmbeddedBrokerOptions, Pick<KafkaClusterOptions, 'jit' | 'log' | 'config'> {
  /** Force a mode (see {@link resolveBrokerMode} for the default choice). */
  mode?: BrokerMode
  /** What the caller needs; decides the mode when it matters. */
  needs?: readonly BrokerNeed[]
  /** Nodes of a cluster the test kit runs (mode `kafka`). More than one means a cluster of its own. @defaultValue 1 */
  nodes?: number
}

/**
 * A broker started once for a whole test run (vitest `globalSetup`) and shared by the test files, which
 * use random topic and group names. Passed to the test workers in `DETOUR_TEST_BROKER`.
 */
export interface SharedBrokerInfo {
  readonly mode: BrokerMode
  readonly brokers: string[]
  readonly description: string
  readonly reason: string
}

export const SHARED_BROKER_ENV = 'DETOUR_TEST_BROKER'

export interface BrokerChoice {
  readonly mode: BrokerMode
  readonly reason: string
  /** Set when the choice is the run's shared broker. */
  readonly shared?: SharedBrokerInfo
}

function sharedBroker(): SharedBrokerInfo | undefined {
  const raw = process.env[SHARED_BROKER_ENV]
  if (!raw) return undefined
  try {
    return JSON.parse(raw) as SharedBrokerInfo
  } catch {
    throw new Error(`${SHARED_BROKER_ENV} is not valid JSON: ${raw.slice(0, 200)}`)
  }
}

const MODE_CAPABILITIES: Record<BrokerMode, Omit<BrokerCapabilities, 'partitionRetentionBytes'>> = {
  external: { faultInjection: false, brokerRestart: false, compaction: true, adminApi: true, transactions: true },
  container: { faultInjection: false, brokerRestart: false, compaction: true, adminApi: true, transactions: true },
  kafka: { faultInjection: false, brokerRestart: true, compaction: true, adminApi: true, transactions: true },
  embedded: { faultInjection: true, brokerRestart: false, compaction: false, adminApi: false, transactions: false },
}

function provides(mode: BrokerMode, need: BrokerNeed, shared: boolean): boolean {
  const c = MODE_CAPABILITIES[mode]
  switch (need) {
    case 'fault-injection':
      return c.faultInjection
    case 'broker-restart':
      // A shared broker serves every test file at once: nobody may kill it.
      return c.brokerRestart && !shared
    case 'compaction':
      return c.compaction
    case 'admin-api':
      return c.adminApi
    case 'transactions':
      return c.transactions
  }
}

/**
 * Decides the broker mode. The one place that does. In order:
 * 1. `options.mode`, when given;
 * 2. `fault-injection` needed → `embedded` (only the mock injects protocol errors);
 * 3. `broker-restart` needed, or more than one node → `kafka`, a cluster of the caller's own;
 * 4. the run's shared broker (`DETOUR_TEST_BROKER`, set by the test run's global set-up);
 * 5. `KAFKA_BROKERS` set → `external`;
 * 6. `DETOUR_BROKER=container` and a Docker engine → `container`;
 * 7. `DETOUR_BROKER=embedded` → `embedded`;
 * 8. Java (and Maven, or Kafka's jars already cached) → `kafka`; otherwise `embedded`.
 *
 * Returns `unavailable` (with the reason) when the needs cannot be met here: the caller skips and says why.
 */
export async function resolveBrokerMode(
  requestedOrOptions?: BrokerMode | Pick<StartBrokerOptions, 'mode' | 'needs' | 'nodes'>,
): Promise<BrokerChoice & { unavailable?: string }> {
  const options = typeof requestedOrOptions === 'string' ? { mode: requestedOrOptions } : (requestedOrOptions ?? {})
  const needs = options.needs ?? []
  const choice = await choose(options.mode, needs, options.nodes ?? 1)
  const missing = needs.filter((need) => !provides(choice.mode, need, choice.shared !== undefined))
  if (missing.length > 0) {
    return { ...choice, unavailable: `needs ${missing.join(', ')}, which the ${choice.mode} broker cannot provide (${choice.reason})` }
  }
  if (choice.mode === 'kafka' && choice.shared === undefined) {
    const reason = kafkaUnavailableReason()
    if (reason) return { ...choice, unavailable: `needs a Kafka broker run by the test kit: ${reason}` }
  }
  return choice
}

async function choose(mode: BrokerMode | undefined, needs: readonly BrokerNeed[], nodes: number): Promise<BrokerChoice> {
  if (mode) return { mode, reason: 'requested by the caller' }
  if (needs.includes('fault-injection')) return { mode: 'embedded', reason: 'protocol-level fault injection exists only in the embedded broker' }
  if (needs.includes('broker-restart') || nodes > 1) {
    return { mode: 'kafka', reason: nodes > 1 ? `a ${nodes}-node cluster of its own` : 'broker restarts need a cluster of its own' }
  }
  const shared = sharedBroker()
  if (shared) return { mode: shared.mode, reason: `the test run's shared broker (${shared.reason})`, shared }
  if (process.env.KAFKA_BROKERS) return { mode: 'external', reason: 'KAFKA_BROKERS is set' }
  const requested = process.env.DETOUR_BROKER
  let fallback = ''
  if (requested === 'container') {
    if (await dockerAvailable()) return { mode: 'container', reason: 'DETOUR_BROKER=container and Docker answers' }
    fallback = 'DETOUR_BROKER=container but no Docker engine answers `docker info`; '
  } else if (requested === 'embedded') {
    return { mode: 'embedded', reason: 'DETOUR_BROKER=embedded' }
  } else if (requested !== undefined && requested !== '' && requested !== 'kafka') {
    throw new Error(`DETOUR_BROKER must be kafka, embedded or container, got "${requested}"`)
  }
  const unavailable = kafkaUnavailableReason()
  if (unavailable === undefined) return { mode: 'kafka', reason: `${fallback}Java is available: Apache Kafka run by the test kit` }
  return { mode: 'embedded', reason: `${fallback}${unavailable}: the embedded mock broker instead` }
}

/**
 * Starts (or connects to) a Kafka-protocol cluster for tests, the demo and benchmarks. Always `stop()` it
 * (or use `await using`). Throws when `needs` cannot be met here: check with {@link resolveBrokerMode} first
 * to skip instead.
 */
export async function startBroker(options: StartBrokerOptions = {}): Promise<TestBroker> {
  const choice = await resolveBrokerMode(options)
  if (choice.unavailable) throw new Error(`No suitable broker: ${choice.unavailable}`)
  if (choice.shared) return attachShared(choice.shared)
  switch (choice.mode) {
    case 'external': {
      const brokers = (process.env.KAFKA_BROKERS ?? '').split(',').map((b) => b.trim()).filter(Boolean)
      if (brokers.length === 0) throw new Error('external broker mode needs KAFKA_BROKERS=host:port[,host:port]')
      return new KafkaAdminBroker('external', brokers, `external cluster (${brokers.join(',')})`)
    }
    case 'container':
      return startContainerBroker()
    case 'kafka':
      return KafkaCluster.start({ nodes: options.nodes, jit: options.jit, log: options.log, config: options.config })
    case 'embedded':
      return new EmbeddedBroker(options)
  }
}

/** The run's shared broker, seen from a test file: stopping it is the global teardown's job. */
function attachShared(info: SharedBrokerInfo): TestBroker {
  const broker = new KafkaAdminBroker(info.mode, info.brokers, `${info.description}, shared by the test run`)
  if (info.mode === 'kafka') {
    // The test kit's own broker allows short sessions (group.min.session.timeout.ms=1000).
    Object.assign(broker, { consumerTiming: { sessionTimeout: 4000, rebalanceTimeout: 4000, heartbeatInterval: 300, maxWaitTimeInMs: 100 } })
  }
  return broker
}

/**
 * For a test run's global set-up: starts the broker the test files will share (a Kafka cluster run by the
 * test kit, or a container) and describes it for the workers. An external cluster needs no start, and the
 * embedded broker lives inside each test process, so both return `undefined`.
 */
export async function startSharedBroker(log: (line: string) => void = () => {}): Promise<{ info: SharedBrokerInfo; broker: TestBroker } | undefined> {
  const choice = await resolveBrokerMode()
  if (choice.shared || (choice.mode !== 'kafka' && choice.mode !== 'container')) {
    log(`test broker: ${choice.mode} (${choice.reason})`)
    return undefined
  }
  const started = Date.now()
  const broker = await startBroker({ log })
  const info: SharedBrokerInfo = { mode: choice.mode, brokers: broker.brokers, description: broker.description, reason: choice.reason }
  log(`test broker: ${broker.description}, started in ${((Date.now() - started) / 1000).toFixed(1)} s (${choice.reason})`)
  return { info, broker }
}

import { EmbeddedBroker, type EmbeddedBrokerOptions } from './embedded/embedded-broker.js'
import { KafkaAdminBroker } from './external/kafka-admin-broker.js'
import { dockerAvailable, startContainerBroker } from './container/kafka-container.js'
import type { BrokerMode, TestBroker } from './types.js'

export interface StartBrokerOptions extends EmbeddedBrokerOptions {
  /**
   * Force a mode. By default: `KAFKA_BROKERS` set → `external`; `DETOUR_BROKER=container` and a
   * Docker engine → `container`; otherwise `embedded`.
   */
  mode?: BrokerMode
}

/** Decides the broker mode from the environment. The one place that does. */
export async function resolveBrokerMode(requested?: BrokerMode): Promise<{ mode: BrokerMode; reason: string }> {
  if (requested) return { mode: requested, reason: 'requested by the caller' }
  if (process.env.KAFKA_BROKERS) return { mode: 'external', reason: 'KAFKA_BROKERS is set' }
  if (process.env.DETOUR_BROKER === 'container') {
    if (await dockerAvailable()) return { mode: 'container', reason: 'DETOUR_BROKER=container and Docker answers' }
    return { mode: 'embedded', reason: 'DETOUR_BROKER=container but no Docker engine answers `docker info`' }
  }
  return { mode: 'embedded', reason: 'default (no KAFKA_BROKERS, no DETOUR_BROKER=container)' }
}

/**
 * Starts (or connects to) a Kafka-protocol cluster for tests, the demo and benchmarks.
 * Always `stop()` it (or use `await using`).
 */
export async function startBroker(options: StartBrokerOptions = {}): Promise<TestBroker> {
  const { mode } = await resolveBrokerMode(options.mode)
  switch (mode) {
    case 'external': {
      const brokers = (process.env.KAFKA_BROKERS ?? '').split(',').map((b) => b.trim()).filter(Boolean)
      if (brokers.length === 0) throw new Error('external broker mode needs KAFKA_BROKERS=host:port[,host:port]')
      return new KafkaAdminBroker('external', brokers, `external cluster (${brokers.join(',')})`)
    }
    case 'container':
      return startContainerBroker()
    case 'embedded':
      return new EmbeddedBroker(options)
  }
}

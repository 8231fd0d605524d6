import { execFile } from 'node:child_process'
import { createServer } from 'node:net'
import { promisify } from 'node:util'
import { KafkaAdminBroker } from '../external/kafka-admin-broker.js'

/** The Apache Kafka image used wherever a Docker engine exists. Pinned here, and only here. */
export const KAFKA_IMAGE = 'apache/kafka:3.9.1'

/** True when a Docker engine answers `docker info`. */
export async function dockerAvailable(): Promise<boolean> {
  try {
    await promisify(execFile)('docker', ['info', '--format', '{{.ServerVersion}}'], { timeout: 10_000 })
    return true
  } catch {
    return false
  }
}

/** Starts Apache Kafka (KRaft, single node) with testcontainers. */
export async function startContainerBroker(): Promise<KafkaAdminBroker> {
  const { GenericContainer, Wait } = await import('testcontainers')
  const port = 9092
  // Kafka must advertise the address clients use, which includes the host port. It is chosen here
  // (a free local port) and bound explicitly, so it is known before the container starts.
  const hostPort = await freePort()
  const container = await new GenericContainer(KAFKA_IMAGE)
    .withExposedPorts({ container: port, host: hostPort })
    .withEnvironment({
      KAFKA_ADVERTISED_LISTENERS: `PLAINTEXT://localhost:${hostPort},INTERNAL://localhost:9094`,
      KAFKA_NODE_ID: '1',
      KAFKA_PROCESS_ROLES: 'broker,controller',
      KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:9093',
      KAFKA_LISTENERS: 'PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093,INTERNAL://0.0.0.0:9094',
      KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT',
      KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
      KAFKA_INTER_BROKER_LISTENER_NAME: 'INTERNAL',
      KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
      KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
      KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'false',
    })
    .withStartupTimeout(120_000)
    .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
    .start()
  const address = `localhost:${hostPort}`
  return new KafkaAdminBroker('container', [address], `testcontainers ${KAFKA_IMAGE} (${address})`, async () => {
    await container.stop()
  })
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no free port'))))
    })
  })
}

import type { Kafka } from 'kafkajs'
import { DetourConfigError, createKafka as createConnection, type KafkaConnectionSettings, type LogLevel, type Logger } from '@detour/core'
import { AdminUsageError } from '../errors/index.js'

/**
 * How to reach the cluster: core's connection settings, shared with the worker's `detour-retry run`
 * (`--brokers`, `--client-id`, `--ssl`, `--ssl-ca-file`, `--sasl-*`).
 */
export type { KafkaConnectionSettings, SaslMechanism } from '@detour/core'

/**
 * core's `createKafka` (TLS and SASL as the worker does it; credentials go to kafkajs only), with
 * contradictory settings reported as a usage error (exit code 2), like every other wrong flag of `detour`.
 */
export function createKafka(settings: KafkaConnectionSettings, logger: Logger, level: LogLevel): Kafka {
  try {
    return createConnection(settings, logger, level)
  } catch (error) {
    if (error instanceof DetourConfigError) throw new AdminUsageError(`${error.option} ${error.reason}`)
    throw error
  }
}

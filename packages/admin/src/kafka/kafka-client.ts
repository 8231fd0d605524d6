import { readFileSync } from 'node:fs'
import { Kafka, type SASLOptions } from 'kafkajs'
import { kafkajsLogCreator, kafkajsLogLevel, type LogLevel, type Logger } from '@detour/core'
import { AdminUsageError } from '../errors/index.js'

export type SaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512'

/**
 * How to reach the cluster: the same settings, with the same meaning, as the worker's `detour-retry run`
 * (`--brokers`, `--client-id`, `--ssl`, `--ssl-ca-file`, `--sasl-*`).
 *
 * This and {@link createKafka} repeat the behaviour of `packages/retry-app/src/cli/kafka-client.ts`; both
 * belong in `@detour/core` (one home for "flags → kafkajs client").
 */
export interface KafkaConnectionSettings {
  readonly brokers: readonly string[]
  readonly clientId: string
  /** TLS with the system's CAs (implied by {@link sslCaFile}). */
  readonly ssl: boolean
  /** PEM file with the CA certificates to trust. */
  readonly sslCaFile: string | undefined
  readonly saslMechanism: SaslMechanism | undefined
  readonly saslUsername: string | undefined
  readonly saslPassword: string | undefined
}

function sasl(settings: KafkaConnectionSettings): SASLOptions | undefined {
  const { saslMechanism: mechanism, saslUsername: username, saslPassword: password } = settings
  if (mechanism === undefined) {
    if (username !== undefined || password !== undefined) {
      throw new AdminUsageError('--sasl-username/--sasl-password need --sasl-mechanism (plain, scram-sha-256 or scram-sha-512)')
    }
    return undefined
  }
  if (username === undefined || password === undefined) {
    throw new AdminUsageError(`--sasl-mechanism ${mechanism} needs --sasl-username and --sasl-password`)
  }
  switch (mechanism) {
    case 'plain':
      return { mechanism, username, password }
    case 'scram-sha-256':
      return { mechanism, username, password }
    case 'scram-sha-512':
      return { mechanism, username, password }
  }
}

/** A kafkajs client from connection settings: TLS and SASL as the worker does it; credentials go to kafkajs only. */
export function createKafka(settings: KafkaConnectionSettings, logger: Logger, level: LogLevel): Kafka {
  if (settings.brokers.length === 0) throw new AdminUsageError('--brokers must list at least one host:port')
  const ssl = settings.sslCaFile !== undefined ? { ca: [readFileSync(settings.sslCaFile, 'utf8')] } : settings.ssl
  return new Kafka({
    clientId: settings.clientId,
    brokers: [...settings.brokers],
    ssl,
    sasl: sasl(settings),
    logLevel: kafkajsLogLevel(level),
    logCreator: kafkajsLogCreator(logger),
  })
}

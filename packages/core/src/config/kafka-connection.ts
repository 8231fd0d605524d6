import { readFileSync } from 'node:fs'
import { Kafka, type SASLOptions } from 'kafkajs'
import { DetourConfigError } from '../errors/detour-error.js'
import { kafkajsLogCreator, kafkajsLogLevel } from '../logging/kafkajs-logs.js'
import type { LogLevel, Logger } from '../logging/logger.js'

export const SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const
export type SaslMechanism = (typeof SASL_MECHANISMS)[number]

/**
 * How a command-line program reaches the cluster: `--brokers`, `--client-id`, `--ssl`, `--ssl-ca-file`,
 * `--sasl-mechanism`, `--sasl-username`, `--sasl-password` (and their `DETOUR_*` variables), with the
 * same meaning in `detour-retry run` and `detour`.
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

/**
 * Refuses contradictory connection settings (no broker, SASL credentials without a mechanism or a
 * mechanism without them) with a `DetourConfigError` naming the flags. {@link createKafka} checks the same;
 * a command line calls this while it validates its flags, before anything is read or connected.
 */
export function checkConnectionSettings(settings: KafkaConnectionSettings): void {
  if (settings.brokers.length === 0) throw new DetourConfigError('--brokers', 'must list at least one host:port')
  const { saslMechanism: mechanism, saslUsername: username, saslPassword: password } = settings
  if (mechanism === undefined && (username !== undefined || password !== undefined)) {
    throw new DetourConfigError('--sasl-username/--sasl-password', 'need --sasl-mechanism (plain, scram-sha-256 or scram-sha-512)')
  }
  if (mechanism !== undefined && (username === undefined || password === undefined)) {
    throw new DetourConfigError('--sasl-mechanism', `${mechanism} needs --sasl-username and --sasl-password`)
  }
}

function sasl(settings: KafkaConnectionSettings): SASLOptions | undefined {
  const { saslMechanism: mechanism, saslUsername: username = '', saslPassword: password = '' } = settings
  switch (mechanism) {
    case undefined:
      return undefined
    case 'plain':
      return { mechanism, username, password }
    case 'scram-sha-256':
      return { mechanism, username, password }
    case 'scram-sha-512':
      return { mechanism, username, password }
  }
}

/**
 * The kafkajs client of a command-line program: TLS (with a CA file) and SASL from the settings, logs
 * through `logger`. Credentials go to kafkajs only. Throws a `DetourConfigError` for contradictory
 * settings; connects nothing.
 */
export function createKafka(settings: KafkaConnectionSettings, logger: Logger, level: LogLevel): Kafka {
  checkConnectionSettings(settings)
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

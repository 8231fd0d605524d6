import { readFileSync } from 'node:fs'
import { Kafka, type SASLOptions } from 'kafkajs'
import { DetourConfigError, kafkajsLogCreator, kafkajsLogLevel, type LogLevel, type Logger } from '@detour/core'

export type SaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512'

export interface KafkaConnectionSettings {
  readonly brokers: readonly string[]
  readonly clientId: string
  readonly ssl: boolean
  readonly sslCaFile: string | undefined
  readonly saslMechanism: SaslMechanism | undefined
  readonly saslUsername: string | undefined
  readonly saslPassword: string | undefined
}

function sasl(settings: KafkaConnectionSettings): SASLOptions | undefined {
  const { saslMechanism: mechanism, saslUsername: username, saslPassword: password } = settings
  if (mechanism === undefined) return undefined
  if (username === undefined || password === undefined) {
    throw new DetourConfigError('sasl-username', `--sasl-mechanism ${mechanism} needs --sasl-username and --sasl-password`)
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

/** The kafkajs client of the CLI (TLS and SASL from the flags; credentials go to kafkajs only). */
export function createKafka(settings: KafkaConnectionSettings, logger: Logger, level: LogLevel): Kafka {
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

import { readFileSync } from 'node:fs'
import { Kafka, logLevel, type KafkaConfig, type LogEntry, type SASLOptions } from 'kafkajs'
import { DetourConfigError, type LogLevel, type Logger } from '@detour/core'

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

/** kafkajs' own logs are verbose: the worker's `info` shows kafkajs warnings and errors only. */
const KAFKAJS_LEVEL: Record<LogLevel, logLevel> = {
  debug: logLevel.INFO,
  info: logLevel.WARN,
  warn: logLevel.WARN,
  error: logLevel.ERROR,
  silent: logLevel.NOTHING,
}

/** Sends kafkajs log entries to a Detour logger (one JSON line each). */
export function kafkajsLogCreator(logger: Logger): KafkaConfig['logCreator'] {
  return () =>
    ({ namespace, level, log }: LogEntry) => {
      const { message, timestamp: _timestamp, logger: _name, ...fields } = log
      const line = { namespace: `kafkajs.${namespace}`, ...fields }
      if (level === logLevel.ERROR) logger.error(message, line)
      else if (level === logLevel.WARN) logger.warn(message, line)
      else if (level === logLevel.INFO) logger.info(message, line)
      else logger.debug(message, line)
    }
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
    logLevel: KAFKAJS_LEVEL[level],
    logCreator: kafkajsLogCreator(logger),
  })
}

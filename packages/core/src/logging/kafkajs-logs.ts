import { logLevel, type KafkaConfig, type LogEntry } from 'kafkajs'
import type { Logger, LogLevel } from './logger.js'

/**
 * kafkajs' own logs are verbose: at Detour's `info`, only kafkajs' warnings and errors are shown. Use as
 * `new Kafka({ logLevel: kafkajsLogLevel(level), logCreator: kafkajsLogCreator(logger) })`.
 */
export function kafkajsLogLevel(level: LogLevel): logLevel {
  switch (level) {
    case 'debug':
      return logLevel.INFO
    case 'info':
    case 'warn':
      return logLevel.WARN
    case 'error':
      return logLevel.ERROR
    case 'silent':
      return logLevel.NOTHING
  }
}

/** Sends kafkajs log entries to a Detour logger, with `namespace: kafkajs.<its namespace>` and its fields. */
export function kafkajsLogCreator(logger: Logger): NonNullable<KafkaConfig['logCreator']> {
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

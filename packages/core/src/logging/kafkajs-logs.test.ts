import { logLevel, type LogEntry } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { kafkajsLogCreator, kafkajsLogLevel } from './kafkajs-logs.js'
import type { LogFields, Logger } from './logger.js'

class RecordingLogger implements Logger {
  readonly lines: [string, string, LogFields | undefined][] = []
  debug(message: string, fields?: LogFields): void {
    this.lines.push(['debug', message, fields])
  }
  info(message: string, fields?: LogFields): void {
    this.lines.push(['info', message, fields])
  }
  warn(message: string, fields?: LogFields): void {
    this.lines.push(['warn', message, fields])
  }
  error(message: string, fields?: LogFields): void {
    this.lines.push(['error', message, fields])
  }
}

describe('kafkajsLogLevel', () => {
  it("keeps kafkajs one step quieter than Detour's level", () => {
    expect((['debug', 'info', 'warn', 'error', 'silent'] as const).map(kafkajsLogLevel)).toEqual([
      logLevel.INFO,
      logLevel.WARN,
      logLevel.WARN,
      logLevel.ERROR,
      logLevel.NOTHING,
    ])
  })
})

describe('kafkajsLogCreator', () => {
  it('routes each kafkajs level to the same Detour level, namespaced, with the entry fields but not its timestamp or logger name', () => {
    const logger = new RecordingLogger()
    const log = kafkajsLogCreator(logger)(logLevel.INFO)
    const entry = (level: logLevel, message: string): LogEntry => ({
      namespace: 'Consumer',
      level,
      label: 'x',
      log: { message, timestamp: '2024-05-01T00:00:00.000Z', logger: 'kafkajs', groupId: 'billing', retryCount: 2 },
    })
    log(entry(logLevel.ERROR, 'crash'))
    log(entry(logLevel.WARN, 'slow'))
    log(entry(logLevel.INFO, 'joined'))
    log(entry(logLevel.DEBUG, 'fetch'))
    log(entry(logLevel.NOTHING, 'odd'))
    const fields = { namespace: 'kafkajs.Consumer', groupId: 'billing', retryCount: 2 }
    expect(logger.lines).toEqual([
      ['error', 'crash', fields],
      ['warn', 'slow', fields],
      ['info', 'joined', fields],
      ['debug', 'fetch', fields],
      ['debug', 'odd', fields],
    ])
  })
})

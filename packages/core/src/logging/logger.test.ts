import { describe, expect, it, vi } from 'vitest'
import { childLogger, createJsonLogger, noopLogger, type JsonLoggerOptions, type LogFields, type Logger } from './logger.js'

function capture(options: Omit<JsonLoggerOptions, 'stream'> = {}): { logger: Logger; writes: string[]; lines: () => Record<string, unknown>[] } {
  const writes: string[] = []
  const logger = createJsonLogger({ ...options, stream: { write: (line: string) => writes.push(line) } })
  return { logger, writes, lines: () => writes.map((w) => JSON.parse(w) as Record<string, unknown>) }
}

describe('createJsonLogger', () => {
  it('writes one JSON line per call with level, time, message and fields', () => {
    const { logger, writes, lines } = capture({ level: 'debug' })
    const before = Date.now()
    logger.info('Started', { topic: 'orders', partition: 3, offset: '9223372036854775807' })
    logger.error('Multi\nline message')
    expect(writes).toHaveLength(2)
    for (const write of writes) {
      expect(write.endsWith('\n')).toBe(true)
      expect(write.slice(0, -1)).not.toContain('\n')
    }
    const [first, second] = lines()
    expect(first).toEqual({ level: 'info', time: expect.any(String), message: 'Started', topic: 'orders', partition: 3, offset: '9223372036854775807' })
    expect(Date.parse(first!.time as string)).toBeGreaterThanOrEqual(before)
    expect(Object.keys(first!).slice(0, 3)).toEqual(['level', 'time', 'message'])
    expect(second).toEqual({ level: 'error', time: expect.any(String), message: 'Multi\nline message' })
  })

  it('filters by level (default info)', () => {
    const levels = ['debug', 'info', 'warn', 'error'] as const
    const expected: Record<string, string[]> = {
      debug: ['debug', 'info', 'warn', 'error'],
      info: ['info', 'warn', 'error'],
      warn: ['warn', 'error'],
      error: ['error'],
      silent: [],
    }
    for (const [threshold, visible] of Object.entries(expected)) {
      const { logger, lines } = capture({ level: threshold as JsonLoggerOptions['level'] })
      for (const level of levels) logger[level](`at ${level}`)
      expect(lines().map((l) => l.level), threshold).toEqual(visible)
    }
    const { logger, lines } = capture()
    for (const level of levels) logger[level]('x')
    expect(lines().map((l) => l.level)).toEqual(['info', 'warn', 'error'])
  })

  it('redacts secret fields by default, at any depth', () => {
    const { logger, writes, lines } = capture()
    logger.info('Connecting', {
      password: 'hunter2',
      secret: 's3',
      token: 't0k',
      sasl: { mechanism: 'plain', username: 'u', password: 'p' },
      kafka: { brokers: ['b:9092'], sasl: { password: 'nested' }, ssl: { token: 'deep' } },
      user: 'alice',
    })
    expect(lines()[0]).toMatchObject({
      password: '[redacted]',
      secret: '[redacted]',
      token: '[redacted]',
      sasl: '[redacted]',
      kafka: { brokers: ['b:9092'], sasl: '[redacted]', ssl: { token: '[redacted]' } },
      user: 'alice',
    })
    for (const secret of ['hunter2', 's3', 't0k', 'nested', 'deep', '"p"']) expect(writes[0]).not.toContain(secret)
  })

  it('redacts a custom list instead of the default one', () => {
    const { logger, lines } = capture({ redact: ['apiKey'] })
    logger.warn('x', { apiKey: 'k', nested: { apiKey: 'k2' }, password: 'visible' })
    expect(lines()[0]).toMatchObject({ apiKey: '[redacted]', nested: { apiKey: '[redacted]' }, password: 'visible' })
  })

  it('never redacts its own level, time and message', () => {
    const { logger, lines } = capture({ redact: ['message', 'level', 'time'] })
    logger.info('hello', { nested: { message: 'secret' } })
    expect(lines()[0]).toEqual({ level: 'info', time: expect.any(String), message: 'hello', nested: { message: '[redacted]' } })
  })

  it('serialises errors, nested errors and bigints', () => {
    const { logger, lines } = capture()
    const error = new TypeError('bad input')
    logger.error('Failed', { error, detail: { cause: new RangeError('deep') }, offset: 9223372036854775807n })
    expect(lines()[0]).toEqual({
      level: 'error',
      time: expect.any(String),
      message: 'Failed',
      error: { name: 'TypeError', message: 'bad input' },
      detail: { cause: { name: 'RangeError', message: 'deep' } },
      offset: '9223372036854775807',
    })
  })

  it('still writes one line, without throwing, when fields cannot be serialised', () => {
    const { logger, writes, lines } = capture()
    const cyclic: LogFields = { name: 'loop' }
    cyclic.self = cyclic
    expect(() => logger.warn('Odd fields', { cyclic })).not.toThrow()
    expect(writes).toHaveLength(1)
    expect(lines()[0]).toMatchObject({ level: 'warn', message: 'Odd fields', logError: expect.stringContaining('fields not serialisable') })
  })

  it('writes to stderr by default', () => {
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
    try {
      createJsonLogger().warn('to stderr')
      expect(spy).toHaveBeenCalledTimes(1)
      expect(JSON.parse(String(spy.mock.calls[0]![0]))).toMatchObject({ level: 'warn', message: 'to stderr' })
    } finally {
      spy.mockRestore()
    }
  })
})

describe('childLogger', () => {
  it('adds the namespace and base fields; call fields win', () => {
    const { logger, lines } = capture({ level: 'debug' })
    const child = childLogger(logger, 'retry-worker', { component: 'worker', partition: 0 })
    child.debug('d')
    child.error('e', { partition: 5, id: 'orders/5/1' })
    expect(lines()).toEqual([
      { level: 'debug', time: expect.any(String), message: 'd', namespace: 'retry-worker', component: 'worker', partition: 0 },
      { level: 'error', time: expect.any(String), message: 'e', namespace: 'retry-worker', component: 'worker', partition: 5, id: 'orders/5/1' },
    ])
  })
})

describe('noopLogger', () => {
  it('accepts every level and writes nothing', () => {
    expect(() => {
      noopLogger.debug('x', { a: 1 })
      noopLogger.info('x')
      noopLogger.warn('x')
      noopLogger.error('x')
    }).not.toThrow()
  })
})

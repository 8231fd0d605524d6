/** Structured fields attached to a log line (`{ topic, partition, offset, id, attempt, stack }`). */
export type LogFields = Record<string, unknown>

/**
 * The logger Detour writes to. Inject your own (pino, winston and console all fit with a small adapter);
 * the default writes nothing.
 */
export interface Logger {
  debug(message: string, fields?: LogFields): void
  info(message: string, fields?: LogFields): void
  warn(message: string, fields?: LogFields): void
  error(message: string, fields?: LogFields): void
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 }

export const noopLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
}

/** A logger that prefixes every line with a namespace field (kafkajs-style child loggers). */
export function childLogger(logger: Logger, namespace: string, base: LogFields = {}): Logger {
  const wrap =
    (level: keyof Logger) =>
    (message: string, fields?: LogFields): void => {
      logger[level](message, { namespace, ...base, ...fields })
    }
  return { debug: wrap('debug'), info: wrap('info'), warn: wrap('warn'), error: wrap('error') }
}

export interface JsonLoggerOptions {
  /** @defaultValue 'info' */
  level?: LogLevel
  /** Where lines go. @defaultValue process.stderr */
  stream?: { write(line: string): unknown }
  /** Field names whose values are replaced by `[redacted]` (secrets), at any depth of the fields. */
  redact?: readonly string[]
}

/** One JSON object per line: `{ level, time, message, ...fields }`. Used by the retry worker's CLI. */
export function createJsonLogger(options: JsonLoggerOptions = {}): Logger {
  const threshold = LEVELS[options.level ?? 'info']
  const stream = options.stream ?? process.stderr
  const redact = new Set(options.redact ?? ['password', 'secret', 'token', 'sasl'])
  const write =
    (level: Exclude<LogLevel, 'silent'>) =>
    (message: string, fields?: LogFields): void => {
      if (LEVELS[level] < threshold) return
      const line: LogFields = { level, time: new Date().toISOString(), message }
      if (fields) {
        for (const [key, value] of Object.entries(fields)) line[key] = redact.has(key) ? '[redacted]' : value
      }
      // Nested fields (`{ kafka: { sasl: { password } } }`) are redacted too.
      const replacer = function (this: unknown, key: string, value: unknown): unknown {
        if (this !== line && redact.has(key)) return '[redacted]'
        if (value instanceof Error) return { name: value.name, message: value.message }
        return typeof value === 'bigint' ? value.toString() : value
      }
      let text: string
      try {
        text = JSON.stringify(line, replacer)
      } catch (error) {
        // A logger never throws into its caller (cyclic or otherwise unserialisable fields).
        text = JSON.stringify({ level, time: line.time, message, logError: `fields not serialisable: ${String(error)}` })
      }
      stream.write(`${text}\n`)
    }
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') }
}

export { noopLogger, childLogger, createJsonLogger } from './logger.js'
export type { Logger, LogFields, LogLevel, JsonLoggerOptions } from './logger.js'
export { kafkajsLogCreator, kafkajsLogLevel } from './kafkajs-logs.js'

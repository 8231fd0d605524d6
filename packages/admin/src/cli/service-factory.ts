import { createJsonLogger, type LogLevel, type Logger } from '@detour/core'
import { createKafka, type KafkaConnectionSettings } from '../kafka/kafka-client.js'
import { KafkaTopicLog } from '../kafka/kafka-topic-log.js'
import { KafkaTopicWriter } from '../kafka/kafka-topic-writer.js'
import { resolveScope, type ScopeInput } from '../model/scope.js'
import { AdminService } from '../service/admin-service.js'
import { WorkerClient } from '../worker/worker-client.js'

/** Everything the CLI needs to build an {@link AdminService}, from its flags. */
export interface ServiceSettings {
  readonly connection: KafkaConnectionSettings
  readonly scope: ScopeInput
  readonly logLevel: LogLevel
  readonly readerGroupPrefix: string
  readonly maxWaitTimeMs: number
  readonly readTimeoutMs: number
  readonly workerUrl: string | undefined
  readonly adminToken: string | undefined
  readonly appMetricsUrls?: readonly string[]
}

export type ServiceFactory = (settings: ServiceSettings, logger: Logger) => AdminService

/** The logger of the CLI: JSON lines on stderr, secrets redacted. */
export function cliLogger(level: LogLevel, stream: { write(line: string): unknown } = process.stderr): Logger {
  return createJsonLogger({ level, stream, redact: ['password', 'secret', 'token', 'sasl', 'saslPassword', 'adminToken'] })
}

/** The real factory: kafkajs from the connection flags, topics read with throwaway consumers. */
export const kafkaServiceFactory: ServiceFactory = (settings, logger) => {
  const kafka = createKafka(settings.connection, logger, settings.logLevel)
  const scope = resolveScope(settings.scope)
  return new AdminService({
    scope,
    log: new KafkaTopicLog({
      kafka,
      logger,
      groupIdPrefix: settings.readerGroupPrefix,
      readTimeoutMs: settings.readTimeoutMs,
      consumerConfig: { maxWaitTimeInMs: settings.maxWaitTimeMs },
    }),
    writer: new KafkaTopicWriter(kafka, logger),
    ...(settings.workerUrl !== undefined ? { worker: new WorkerClient({ url: settings.workerUrl, ...(settings.adminToken !== undefined ? { token: settings.adminToken } : {}) }) } : {}),
    appMetricsUrls: settings.appMetricsUrls ?? [],
    clientId: settings.connection.clientId,
    logger,
  })
}

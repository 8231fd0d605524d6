import { collectDefaultMetrics, Registry } from 'prom-client'
import { createJsonLogger, createKafka, type Logger } from '@detour/core'
import { startHttpServer, type RunningHttpServer } from '../http/http-server.js'
import { createRetryWorker, type RetryWorker } from '../worker/retry-worker.js'
import { loadHandler } from './load-handler.js'
import { redactedSettings, type RunSettings } from '../settings/index.js'

export interface CliIo {
  readonly stdout: { write(text: string): unknown }
  readonly stderr: { write(text: string): unknown }
  /** Directory the handler path is relative to. */
  readonly cwd: string
}

type StopReason = 'SIGTERM' | 'SIGINT' | 'crash'

/**
 * `detour-retry run`: starts the worker and its HTTP server, waits for SIGTERM/SIGINT (or a consumer
 * crash), stops gracefully. Exit code 0 when the stop was clean; 1 when work was abandoned, the consumer
 * crashed, or start-up failed. A second signal exits at once with 1.
 */
export async function runWorkerCommand(settings: RunSettings, io: CliIo): Promise<number> {
  const { cli } = settings
  const logger = createJsonLogger({ level: cli.logLevel, stream: io.stderr })
  logger.info('Starting the Detour retry worker', { config: redactedSettings(settings) })
  for (const deprecation of settings.deprecations) logger.warn(deprecation)
  let worker: RetryWorker | undefined
  let http: RunningHttpServer | undefined
  let stopRequested: Promise<StopReason> | undefined
  try {
    const loaded = await loadHandler(cli.handlerPath, io.cwd)
    const registry = new Registry()
    collectDefaultMetrics({ register: registry })
    worker = createRetryWorker({
      ...settings.worker,
      kafka: createKafka(settings.connection, logger, cli.logLevel),
      handler: loaded.handler,
      classify: loaded.classify,
      logger,
      registry,
    })
    http = await startHttpServer({ port: cli.metricsPort, host: cli.metricsHost, registry, worker, adminToken: cli.adminToken, logger })
    logger.info('HTTP server listening', {
      url: http.url,
      endpoints: ['/metrics', '/healthz', '/readyz', '/groups/held', 'POST /groups/release'],
      adminRoutes: cli.adminToken === undefined ? 'loopback only' : 'loopback or bearer token',
    })
    // Listen before starting: a SIGTERM during start-up still stops gracefully.
    stopRequested = waitForStop(worker)
    await worker.start()
  } catch (error) {
    logger.error('The retry worker could not start', { error: errorFields(error) })
    await shutdown(worker, http, logger)
    return 1
  }
  const reason = await stopRequested
  logger.info('Stopping the retry worker', { reason })
  const clean = await shutdown(worker, http, logger)
  return reason === 'crash' || !clean ? 1 : 0
}

function onSecondSignal(): void {
  process.stderr.write('detour-retry: second signal while stopping; exiting now\n')
  process.exit(1)
}

function waitForStop(worker: RetryWorker): Promise<StopReason> {
  return new Promise((resolve) => {
    const done = (reason: StopReason): void => {
      process.off('SIGTERM', onTerm)
      process.off('SIGINT', onInt)
      worker.off('crash', onCrash)
      // From now on a signal means "stop waiting": exit at once.
      process.on('SIGTERM', onSecondSignal)
      process.on('SIGINT', onSecondSignal)
      resolve(reason)
    }
    const onTerm = (): void => done('SIGTERM')
    const onInt = (): void => done('SIGINT')
    const onCrash = (): void => done('crash')
    process.once('SIGTERM', onTerm)
    process.once('SIGINT', onInt)
    worker.once('crash', onCrash)
  })
}

async function shutdown(worker: RetryWorker | undefined, http: RunningHttpServer | undefined, logger: Logger): Promise<boolean> {
  let clean = true
  if (worker) {
    try {
      const result = await worker.stop()
      clean = result.clean
    } catch (error) {
      clean = false
      logger.error('Stopping the retry worker failed', { error: errorFields(error) })
    }
  }
  await http?.close()
  return clean
}

function errorFields(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { message: String(error) }
  const code = (error as { code?: unknown }).code
  return { name: error.name, message: error.message, ...(typeof code === 'string' ? { code } : {}) }
}

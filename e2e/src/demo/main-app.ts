/**
 * An example main app: a kafkajs consumer whose handler is wrapped by Detour, exactly as a user writes
 * it. Configured by environment variables (all `DETOUR_*` except the demo's own `DEMO_*`):
 *
 * | variable | meaning | default |
 * |---|---|---|
 * | `DETOUR_BROKERS` | bootstrap servers, `host:port[,host:port]` | required |
 * | `DETOUR_GROUP_ID` | the consumer group (`DETOUR_CONSUMER_GROUP`: its former name) | required |
 * | `DETOUR_HAND_OFF` | `transactional` or `sequential` | transactional |
 * | `DETOUR_EACH_BATCH` | `true`: the handler runs through `detour.eachBatch` | false |
 * | `DETOUR_TOPICS` | source topics, comma-separated | required |
 * | `DETOUR_HANDLER` | module exporting `handler` (and optionally `classify`, `close`), relative to the cwd | required |
 * | `DETOUR_METRICS_PORT` / `DETOUR_METRICS_HOST` | HTTP server: `/metrics` (Detour's and the process's: memory, event loop, GC), `/readyz`, `/healthz`, `/stats` | 9465 / 127.0.0.1 |
 * | `DETOUR_CREATE_TOPICS` | create missing Detour topics at start (`false`: only check them) | true |
 * | `DETOUR_SESSION_TIMEOUT_MS`, `DETOUR_HEARTBEAT_INTERVAL_MS`, `DETOUR_MAX_WAIT_TIME_MS` | consumer timing | 6000, 500, 100 |
 * | `DETOUR_REBALANCE_TIMEOUT_MS` | how long a rebalance waits for a member still inside a handler (Detour heartbeats for it) | 30000 |
 * | `DETOUR_METADATA_MAX_AGE_MS` | consumers' periodic metadata refresh | 300000 (kafkajs) |
 * | `DETOUR_PARTITIONS_CONSUMED_CONCURRENTLY` | kafkajs `partitionsConsumedConcurrently` | 1 |
 * | `DETOUR_LOG_LEVEL` | debug, info, warn, error, silent (JSON lines on stderr) | info |
 * | `DEMO_INSTANCE` | instance name (client id, log field) | 0 |
 *
 * The consumer timing defaults suit the embedded broker (a fetch never returns early; a rebalance waits
 * for the session timeout of departed members) and are harmless on a real cluster.
 *
 * SIGTERM/SIGINT: stop consuming (in-flight messages finish), stop Detour, exit 0.
 */
import { createServer, type Server } from 'node:http'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Kafka, logLevel, type EachMessageHandler } from 'kafkajs'
import { collectDefaultMetrics, Registry } from 'prom-client'
import { createJsonLogger, kafkajsLogCreator, type ErrorClassifier, type LogLevel } from '@detour/core'
import { createDetour } from '@detour/main-app-sdk'

interface HandlerModule {
  handler?: EachMessageHandler
  classify?: ErrorClassifier
  close?: () => Promise<void>
}

function env(name: string, fallback?: string): string {
  const value = process.env[name]
  if (value !== undefined && value !== '') return value
  if (fallback !== undefined) return fallback
  throw new Error(`Set ${name} (see the header of main-app.ts)`)
}

function intEnv(name: string, fallback: number, min = 0): number {
  const raw = env(name, String(fallback))
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be an integer >= ${min}, got "${raw}"`)
  return value
}

function list(value: string): string[] {
  return value.split(',').map((part) => part.trim()).filter(Boolean)
}

const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent']


async function main(): Promise<void> {
  const level = env('DETOUR_LOG_LEVEL', 'info') as LogLevel
  if (!LOG_LEVELS.includes(level)) throw new Error(`DETOUR_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`)
  const instance = env('DEMO_INSTANCE', '0')
  const logger = createJsonLogger({ level, stream: process.stderr })
  const brokers = list(env('DETOUR_BROKERS'))
  const groupId = process.env.DETOUR_GROUP_ID || env('DETOUR_CONSUMER_GROUP')
  const handOff = env('DETOUR_HAND_OFF', 'transactional')
  if (handOff !== 'transactional' && handOff !== 'sequential') throw new Error('DETOUR_HAND_OFF must be transactional or sequential')
  const eachBatch = env('DETOUR_EACH_BATCH', 'false') === 'true'
  const topics = list(env('DETOUR_TOPICS'))
  const handlerPath = resolve(env('DETOUR_HANDLER'))
  const createTopics = env('DETOUR_CREATE_TOPICS', 'true') !== 'false'
  const sessionTimeout = intEnv('DETOUR_SESSION_TIMEOUT_MS', 6000, 1000)
  const rebalanceTimeout = intEnv('DETOUR_REBALANCE_TIMEOUT_MS', 30_000, 1000)
  const heartbeatInterval = intEnv('DETOUR_HEARTBEAT_INTERVAL_MS', 500, 50)
  const maxWaitTimeInMs = intEnv('DETOUR_MAX_WAIT_TIME_MS', 100, 0)
  const metadataMaxAge = intEnv('DETOUR_METADATA_MAX_AGE_MS', 300_000, 100)
  const partitionsConsumedConcurrently = intEnv('DETOUR_PARTITIONS_CONSUMED_CONCURRENTLY', 1, 1)
  const port = intEnv('DETOUR_METRICS_PORT', 9465)
  const host = env('DETOUR_METRICS_HOST', '127.0.0.1')

  const handlerModule = (await import(pathToFileURL(handlerPath).href)) as HandlerModule
  if (typeof handlerModule.handler !== 'function') throw new Error(`${handlerPath} must export a "handler" function`)

  const kafka = new Kafka({
    clientId: `detour-demo-main-${instance}`,
    brokers,
    logLevel: logLevel.WARN,
    logCreator: kafkajsLogCreator(logger),
  })
  const timing = { sessionTimeout, rebalanceTimeout, heartbeatInterval, maxWaitTimeInMs, metadataMaxAge }
  const consumer = kafka.consumer({ groupId, ...timing })
  // Detour's metrics and the process's own (memory, event loop lag, GC), as the retry worker's CLI serves them.
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const detour = createDetour({
    registry,
    kafka,
    consumer,
    groupId,
    topics,
    classify: handlerModule.classify,
    createTopics,
    handOff,
    followerConfig: timing,
    sessionTimeoutMs: sessionTimeout,
    logger,
  })
  detour.on('error', (error) => logger.error('Detour reported a background failure', { error: error.message }))

  let joined = false
  let stopping = false
  consumer.on(consumer.events.GROUP_JOIN, () => {
    joined = true
  })
  consumer.on(consumer.events.CRASH, (event) => {
    joined = false
    if (event.payload.restart) return
    logger.error('The consumer crashed and will not restart; exiting', { error: event.payload.error.message })
    if (!stopping) void shutdown(1)
  })

  const server: Server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname
    const reply = (status: number, body: unknown): void => {
      response.writeHead(status, { 'content-type': 'application/json; charset=utf-8' })
      response.end(`${JSON.stringify(body)}\n`)
    }
    if (path === '/metrics') {
      detour.registry.metrics().then(
        (text) => {
          response.writeHead(200, { 'content-type': detour.registry.contentType })
          response.end(text)
        },
        (error: unknown) => reply(500, { error: String(error) }),
      )
    } else if (path === '/readyz') {
      const ready = joined && detour.ready && !stopping
      reply(ready ? 200 : 503, { ready, joined, detourReady: detour.ready })
    } else if (path === '/healthz') {
      reply(200, { status: 'ok' })
    } else if (path === '/stats') {
      reply(200, detour.stats())
    } else {
      reply(404, { error: `no route ${path}` })
    }
  })
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolveListen())
  })

  async function shutdown(code: number): Promise<void> {
    if (stopping) return
    stopping = true
    logger.info('Stopping the main app', { instance })
    const force = setTimeout(() => {
      logger.error('Shutdown took longer than 15 s; exiting')
      process.exit(1)
    }, 15_000)
    force.unref()
    let exitCode = code
    for (const [what, step] of [
      ['consumer', () => consumer.disconnect()],
      ['detour', () => detour.stop()],
      ['handler', () => handlerModule.close?.() ?? Promise.resolve()],
    ] as const) {
      try {
        await step()
      } catch (error) {
        exitCode = 1
        logger.error(`Stopping the ${what} failed`, { error: error instanceof Error ? error.message : String(error) })
      }
    }
    server.closeAllConnections()
    server.close()
    logger.info('Main app stopped', { instance, exitCode })
    process.exit(exitCode)
  }
  process.once('SIGTERM', () => void shutdown(0))
  process.once('SIGINT', () => void shutdown(0))

  await detour.start()
  await consumer.connect()
  for (const topic of topics) await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run(
    eachBatch
      ? { partitionsConsumedConcurrently, eachBatch: detour.eachBatch(handlerModule.handler) }
      : { partitionsConsumedConcurrently, eachMessage: detour.eachMessage(handlerModule.handler) },
  )
  logger.info('Main app running', { instance, groupId, topics, metrics: `http://${host}:${port}/metrics` })
}

main().catch((error: unknown) => {
  process.stderr.write(`${JSON.stringify({ level: 'error', time: new Date().toISOString(), message: 'The main app failed to start', error: error instanceof Error ? { name: error.name, message: error.message, stack: error.stack } : String(error) })}\n`)
  process.exit(1)
})

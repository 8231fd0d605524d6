#!/usr/bin/env node
/**
 * Produces the demo's seeded workload to the compose stack's source topic: the same generator and value
 * shape as `pnpm demo` (e2e/src/system/workload.ts), keyed by the ordering key, so the example handler
 * fails the `transient` messages in the main app (→ retry worker) and dead-letters the `poison` ones.
 *
 * Runs inside the example-app image (copied to /app/e2e/tools/, next to e2e's dist and node_modules):
 *
 *   docker compose -f deploy/docker-compose.yml run --rm workload --messages 5000 --keys 200 --rate 500
 *
 * Options: --messages (2000) --keys (100) --failure-rate (0.05) --poison (5) --seed (random)
 *          --rate (messages/s, default: as fast as possible) --topic (detour-demo.orders)
 * Brokers: KAFKA_BROKERS or DETOUR_BROKERS (host:port[,host:port]).
 */
import { randomInt } from 'node:crypto'
import { parseArgs } from 'node:util'
import { Kafka, Partitioners, logLevel } from 'kafkajs'
import { encodeValue, generateWorkload } from '../dist/system/workload.js'

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '2000' },
    keys: { type: 'string', default: '100' },
    'failure-rate': { type: 'string', default: '0.05' },
    poison: { type: 'string', default: '5' },
    seed: { type: 'string' },
    rate: { type: 'string' },
    topic: { type: 'string', default: process.env.DEMO_SOURCE_TOPIC || 'detour-demo.orders' },
  },
  strict: true,
})

function number(flag, { integer = false, min = 0 } = {}) {
  const raw = values[flag]
  const value = Number(raw)
  if (!Number.isFinite(value) || value < min || (integer && !Number.isInteger(value))) {
    throw new Error(`--${flag} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got "${raw}"`)
  }
  return value
}

const brokers = (process.env.KAFKA_BROKERS || process.env.DETOUR_BROKERS || '')
  .split(',')
  .map((broker) => broker.trim())
  .filter(Boolean)
if (brokers.length === 0) throw new Error('Set KAFKA_BROKERS (or DETOUR_BROKERS) to host:port[,host:port]')

const seed = values.seed === undefined ? randomInt(1, 2 ** 31) : number('seed', { integer: true })
const rate = values.rate === undefined ? undefined : number('rate', { min: 0.001 })
const workload = generateWorkload({
  messages: number('messages', { integer: true }),
  keys: number('keys', { integer: true, min: 1 }),
  failureRate: number('failure-rate'),
  poison: number('poison', { integer: true }),
  seed,
  run: `compose-${seed}`,
})

const kafka = new Kafka({ clientId: 'detour-demo-workload', brokers, logLevel: logLevel.WARN })
const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false })
await producer.connect()
const chunk = rate === undefined ? 200 : Math.max(1, Math.round(rate / 10))
const started = Date.now()
let sent = 0
try {
  while (sent < workload.messages.length) {
    const batch = workload.messages.slice(sent, sent + chunk)
    await producer.send({
      topic: values.topic,
      acks: -1,
      messages: batch.map((message) => ({ key: message.key, value: encodeValue(message), headers: { 'x-demo-ref': message.ref } })),
    })
    sent += batch.length
    if (rate !== undefined) {
      const due = started + (sent / rate) * 1000
      if (due > Date.now()) await new Promise((resolve) => setTimeout(resolve, due - Date.now()))
    }
  }
} finally {
  await producer.disconnect()
}
console.log(
  JSON.stringify({
    run: workload.run,
    topic: values.topic,
    produced: sent,
    keys: workload.keys.length,
    transient: workload.transient,
    poison: workload.poison,
    seconds: (Date.now() - started) / 1000,
  }),
)

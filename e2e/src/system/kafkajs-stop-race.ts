#!/usr/bin/env node
/**
 * A minimal reproduction of the kafkajs 2.2.4 busy loop described in `kafkajs-stop-guard.ts`, on the
 * embedded broker (which can delay one broker's Fetch answers and take a broker out of the metadata):
 *
 * 1. a consumer reads a 6-partition topic led by three brokers;
 * 2. broker A answers its next Fetch only after 5 s: A's fetcher waits;
 * 3. broker B goes down and leaves the metadata: another fetcher throws `KafkaJSFetcherRebalanceError`,
 *    and the fetch manager waits for A's fetcher before it builds new fetchers;
 * 4. `consumer.disconnect()` meanwhile;
 * 5. A's answer arrives: the fetch manager builds fetchers for the stopped runner, and (without the
 *    guard) the process spins at 100% CPU with a starved event loop.
 *
 * Usage: `node kafkajs-stop-race.js [--guard] [--port N]`. With `--port`, answers HTTP there while its
 * event loop turns (a liveness URL for the supervisor). Exits 0 when the event loop stayed responsive.
 */
import { createServer } from 'node:http'
import { Kafka, logLevel } from 'kafkajs'
import { ApiKeys, EmbeddedBroker, randomName } from '@detour/testkit'
import { guardFetchAfterStop } from './kafkajs-stop-guard.js'

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
const args = process.argv.slice(2)
const started = Date.now()
const say = (line: string): void => console.log(`${((Date.now() - started) / 1000).toFixed(2)}s ${line}`)

const portAt = args.indexOf('--port')
if (portAt >= 0) createServer((_, response) => response.end('ok')).listen(Number(args[portAt + 1]), '127.0.0.1')
if (args.includes('--guard')) say(`guard installed: ${guardFetchAfterStop()}`)

// Event-loop lag, measured by a timer: a starved loop never gets here again.
let worstLagMs = 0
let expected = Date.now() + 100
setInterval(() => {
  worstLagMs = Math.max(worstLagMs, Date.now() - expected)
  expected = Date.now() + 100
}, 100).unref()

const broker = new EmbeddedBroker({ brokers: 3 })
const topic = randomName('stop-race')
await broker.createTopic(topic, 6)
const kafka = new Kafka({ clientId: 'stop-race', brokers: broker.brokers, logLevel: logLevel.NOTHING })
const admin = kafka.admin()
await admin.connect()
const metadata = await admin.fetchTopicMetadata({ topics: [topic] })
await admin.disconnect()
const leaders = [...new Set(metadata.topics[0]?.partitions.map((p) => p.leader) ?? [])].sort((a, b) => a - b)
if (leaders.length < 2) throw new Error(`the topic's partitions should have several leaders, got ${leaders.join(',')}`)
const [stuck, down] = leaders as [number, number]

const consumer = kafka.consumer({ groupId: randomName('stop-race'), maxWaitTimeInMs: 100, sessionTimeout: 6000, heartbeatInterval: 300, metadataMaxAge: 300 })
await consumer.connect()
await consumer.subscribe({ topic, fromBeginning: true })
const joined = new Promise((resolve) => consumer.on(consumer.events.GROUP_JOIN, resolve))
await consumer.run({ eachMessage: async () => undefined })
await joined
await sleep(500)
worstLagMs = 0

broker.injectBrokerErrors(stuck, ApiKeys.Fetch, [{ code: 0, delayMs: 5000 }])
await sleep(300)
broker.setBrokerDown(down)
say(`broker ${stuck} answers its next Fetch in 5 s; broker ${down} is down`)
await sleep(1500)
say('consumer.disconnect()')
let disconnected = false
const disconnecting = consumer.disconnect().then(
  () => (disconnected = true),
  () => (disconnected = true),
)
await Promise.race([disconnecting, sleep(3000)])
broker.setBrokerUp(down)
say('waiting 8 s for the delayed Fetch answer and what follows')
await sleep(8000)
say(`event loop responsive (worst lag ${worstLagMs} ms); disconnect ${disconnected ? 'finished' : 'still pending'}`)
await broker.stop()
process.exit(disconnected && worstLagMs < 2000 ? 0 : 1)

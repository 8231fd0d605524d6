import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import koffi from 'koffi'

/**
 * FFI bindings to the parts of librdkafka's mock cluster (`rdkafka_mock.h`) the embedded broker uses.
 * librdkafka comes from node-rdkafka's source build (`build/deps/librdkafka.so.1`); set
 * `DETOUR_LIBRDKAFKA` to use another copy (>= 2.12).
 */
export interface MockLibrary {
  readonly version: string
  confNew(): unknown
  confSet(conf: unknown, name: string, value: string): void
  kafkaNew(conf: unknown): unknown
  kafkaDestroy(rk: unknown): void
  clusterNew(rk: unknown, brokers: number): unknown
  clusterDestroy(mc: unknown): void
  bootstraps(mc: unknown): string
  topicCreate(mc: unknown, topic: string, partitions: number, replicationFactor: number): number
  brokerAdd(mc: unknown, brokerId: number): number
  setControllerId?: (mc: unknown, brokerId: number) => void
  initialRebalanceDelayMs(mc: unknown, ms: number): void
  pushRequestErrors(mc: unknown, apiKey: number, errors: number[]): void
  brokerPushRequestErrorRtts(mc: unknown, brokerId: number, apiKey: number, errors: Array<[number, number]>): number
  clearRequestErrors(mc: unknown, apiKey: number): void
  brokerSetDown(mc: unknown, brokerId: number): number
  brokerSetUp(mc: unknown, brokerId: number): number
  brokerSetRtt(mc: unknown, brokerId: number, rttMs: number): number
}

let cached: MockLibrary | undefined

export function locateLibrdkafka(): string {
  const fromEnv = process.env.DETOUR_LIBRDKAFKA
  if (fromEnv) return fromEnv
  const require = createRequire(import.meta.url)
  const pkg = dirname(require.resolve('node-rdkafka/package.json'))
  for (const candidate of [join(pkg, 'build/deps/librdkafka.so.1'), join(pkg, 'build/deps/librdkafka.so')]) {
    if (existsSync(candidate)) return candidate
  }
  throw new Error(
    `librdkafka not found under ${pkg}/build/deps: node-rdkafka's native build did not run. ` +
      'Re-run the install (pnpm install) and check that pnpm-workspace.yaml allows the node-rdkafka build.',
  )
}

export function loadMockLibrary(): MockLibrary {
  if (cached) return cached
  const lib = koffi.load(locateLibrdkafka())
  const versionStr = lib.func('const char* rd_kafka_version_str()') as () => string
  const confNew = lib.func('void* rd_kafka_conf_new()') as () => unknown
  const confSet = lib.func('int rd_kafka_conf_set(void*, const char*, const char*, _Out_ char*, size_t)') as (
    conf: unknown, name: string, value: string, err: Buffer, size: number) => number
  const kafkaNew = lib.func('void* rd_kafka_new(int, void*, _Out_ char*, size_t)') as (
    type: number, conf: unknown, err: Buffer, size: number) => unknown
  const kafkaDestroy = lib.func('void rd_kafka_destroy(void*)') as (rk: unknown) => void
  const clusterNew = lib.func('void* rd_kafka_mock_cluster_new(void*, int)') as (rk: unknown, n: number) => unknown
  const clusterDestroy = lib.func('void rd_kafka_mock_cluster_destroy(void*)') as (mc: unknown) => void
  const bootstraps = lib.func('const char* rd_kafka_mock_cluster_bootstraps(void*)') as (mc: unknown) => string
  const topicCreate = lib.func('int rd_kafka_mock_topic_create(void*, const char*, int, int)') as (
    mc: unknown, topic: string, partitions: number, rf: number) => number
  const brokerAdd = lib.func('int rd_kafka_mock_broker_add(void*, int32_t)') as (mc: unknown, id: number) => number
  const delay = lib.func('void rd_kafka_mock_group_initial_rebalance_delay_ms(void*, int32_t)') as (
    mc: unknown, ms: number) => void
  const pushArray = lib.func('void rd_kafka_mock_push_request_errors_array(void*, int16_t, size_t, const int*)') as (
    mc: unknown, apiKey: number, count: number, errors: number[]) => void
  const clearErrors = lib.func('void rd_kafka_mock_clear_request_errors(void*, int16_t)') as (
    mc: unknown, apiKey: number) => void
  const setDown = lib.func('int rd_kafka_mock_broker_set_down(void*, int32_t)') as (mc: unknown, id: number) => number
  const setUp = lib.func('int rd_kafka_mock_broker_set_up(void*, int32_t)') as (mc: unknown, id: number) => number
  const setRtt = lib.func('int rd_kafka_mock_broker_set_rtt(void*, int32_t, int)') as (
    mc: unknown, id: number, rtt: number) => number
  // Variadic: (mcluster, broker_id, ApiKey, cnt, [err, rtt]...).
  const brokerPushRtts = lib.func('int rd_kafka_mock_broker_push_request_error_rtts(void*, int32_t, int16_t, size_t, ...)') as (
    ...args: unknown[]) => number
  let setControllerId: MockLibrary['setControllerId']
  try {
    setControllerId = lib.func('void rd_kafka_mock_set_controller_id(void*, int32_t)') as (mc: unknown, id: number) => void
  } catch {
    setControllerId = undefined // librdkafka < 2.13: broker_add(0) is used instead
  }
  cached = {
    version: versionStr(),
    confNew,
    confSet(conf, name, value) {
      const err = Buffer.alloc(512)
      if (confSet(conf, name, value, err, err.length) !== 0) {
        throw new Error(`rd_kafka_conf_set(${name}) failed: ${err.toString('utf8').replace(/\0.*$/s, '')}`)
      }
    },
    kafkaNew(conf) {
      const err = Buffer.alloc(512)
      const rk = kafkaNew(0 /* RD_KAFKA_PRODUCER */, conf, err, err.length)
      if (!rk) throw new Error(`rd_kafka_new failed: ${err.toString('utf8').replace(/\0.*$/s, '')}`)
      return rk
    },
    kafkaDestroy,
    clusterNew,
    clusterDestroy,
    bootstraps,
    topicCreate,
    brokerAdd,
    setControllerId,
    initialRebalanceDelayMs: delay,
    pushRequestErrors(mc, apiKey, errors) {
      pushArray(mc, apiKey, errors.length, errors)
    },
    brokerPushRequestErrorRtts(mc, brokerId, apiKey, errors) {
      const varargs: unknown[] = []
      for (const [err, rtt] of errors) varargs.push('int', err, 'int', rtt)
      return brokerPushRtts(mc, brokerId, apiKey, errors.length, ...varargs)
    },
    clearRequestErrors: clearErrors,
    brokerSetDown: setDown,
    brokerSetUp: setUp,
    brokerSetRtt: setRtt,
  }
  return cached
}

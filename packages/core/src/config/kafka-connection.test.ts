import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Kafka } from 'kafkajs'
import { noopLogger } from '../logging/logger.js'
import { createKafka, type KafkaConnectionSettings } from './kafka-connection.js'

const base: KafkaConnectionSettings = {
  brokers: ['127.0.0.1:1'],
  clientId: 'test',
  ssl: false,
  sslCaFile: undefined,
  saslMechanism: undefined,
  saslUsername: undefined,
  saslPassword: undefined,
}

describe('createKafka', () => {
  it('builds a client without connecting', () => {
    expect(createKafka(base, noopLogger, 'silent')).toBeInstanceOf(Kafka)
  })

  it('reads the CA file and accepts SASL with its credentials', () => {
    const dir = mkdtempSync(join(tmpdir(), 'detour-ca-'))
    const ca = join(dir, 'ca.pem')
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\n')
    expect(createKafka({ ...base, ssl: true, sslCaFile: ca, saslMechanism: 'scram-sha-512', saslUsername: 'u', saslPassword: 'p' }, noopLogger, 'silent')).toBeInstanceOf(Kafka)
    expect(() => createKafka({ ...base, sslCaFile: join(dir, 'missing.pem') }, noopLogger, 'silent')).toThrow(/ENOENT/)
  })

  it('refuses contradictory settings, naming the flags', () => {
    expect(() => createKafka({ ...base, brokers: [] }, noopLogger, 'silent')).toThrow(/--brokers.*at least one host:port/)
    expect(() => createKafka({ ...base, saslMechanism: 'plain', saslUsername: 'u' }, noopLogger, 'silent')).toThrow(/plain needs --sasl-username and --sasl-password/)
    expect(() => createKafka({ ...base, saslUsername: 'u' }, noopLogger, 'silent')).toThrow(/--sasl-username\/--sasl-password.*need --sasl-mechanism/)
  })
})

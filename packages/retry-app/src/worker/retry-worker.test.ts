import { describe, expect, it } from 'vitest'
import { Kafka } from 'kafkajs'
import { noopLogger } from '@detour/core'
import { createRetryWorker } from './retry-worker.js'

// No broker: the worker's kafkajs clients are never connected; the test swaps in what it needs.
const kafka = new Kafka({ clientId: 'retry-worker-test', brokers: ['127.0.0.1:1'] })

describe('RetryWorker.stop', () => {
  it('F6: is bounded: a disconnect that never returns ends the stop at shutdownTimeoutMs + grace + closeTimeoutMs, unclean and timed out', async () => {
    const worker = createRetryWorker({
      kafka,
      groupId: 'orders-app',
      topics: ['orders'],
      handler: async () => {},
      shutdownTimeoutMs: 50,
      closeTimeoutMs: 100,
      handlerTimeoutMs: 200,
      logger: noopLogger,
    })
    // As if started: running, its consumer joined. The broker then stops answering: the disconnect hangs.
    const internals = worker as unknown as {
      currentState: string
      startPromise: Promise<void>
      clients: { consumer: { pause: () => void; disconnect: () => Promise<void> } }
    }
    internals.currentState = 'running'
    internals.startPromise = Promise.resolve()
    internals.clients.consumer.pause = () => {}
    internals.clients.consumer.disconnect = () => new Promise<void>(() => {})
    const started = Date.now()
    const result = await worker.stop()
    expect(Date.now() - started).toBeLessThan(2000)
    expect(result).toEqual({ clean: false, abandoned: 0, timedOut: true })
    expect(worker.state).toBe('stopped')
  })
})

import type { Consumer, EachMessageHandler } from 'kafkajs'
import { createDetour, type Detour, type DetourOptions } from '@detour/main-app-sdk'
import { randomName } from '@detour/testkit'
import type { BenchContext } from '../suite/types.js'

export interface DetourApp {
  readonly detour: Detour
  readonly consumer: Consumer
  readonly groupId: string
  stop(): Promise<void>
}

export interface DetourAppSettings {
  readonly topic: string
  /** The application's handler; Detour wraps it. */
  readonly handler: EachMessageHandler
  /**
   * Sees every message around the wrapped handler (timing). Called with the wrapped handler's promise.
   * @defaultValue the wrapped handler as is
   */
  readonly around?: (wrapped: EachMessageHandler) => EachMessageHandler
  readonly groupId?: string
  readonly detour?: Partial<DetourOptions>
  /**
   * `eachBatch`: the consumer runs `detour.eachBatch(handler)` (the hand-offs of a batch share one
   * transaction); `around` is not used then.
   * @defaultValue 'eachMessage'
   */
  readonly api?: 'eachMessage' | 'eachBatch'
  /** Called after `detour.start()` and before the consumer connects (e.g. to listen for `ready`). */
  readonly beforeConsume?: (detour: Detour) => void
}

/**
 * A consumer wrapped by Detour, started the documented way: `detour.start()`, then connect, subscribe
 * from the beginning and `run({ eachMessage: detour.eachMessage(handler) })`. Same consumer settings
 * as the raw side.
 */
export async function startDetourApp(ctx: BenchContext, settings: DetourAppSettings): Promise<DetourApp> {
  const groupId = settings.groupId ?? randomName('bench-app')
  const consumer = ctx.kafka.consumer({ groupId, ...ctx.consumerConfig })
  const detour = createDetour({
    kafka: ctx.kafka,
    consumer,
    groupId,
    topics: [settings.topic],
    topicAdmin: ctx.broker.topicAdmin,
    followerConfig: { maxWaitTimeInMs: ctx.consumerConfig.maxWaitTimeInMs },
    ...settings.detour,
  })
  let stopped = false
  const stop = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    await consumer.disconnect()
    await detour.stop()
  }
  try {
    await detour.start()
    settings.beforeConsume?.(detour)
    await consumer.connect()
    await consumer.subscribe({ topic: settings.topic, fromBeginning: true })
    if (settings.api === 'eachBatch') {
      await consumer.run({ eachBatch: detour.eachBatch(settings.handler) })
    } else {
      const wrapped = detour.eachMessage(settings.handler)
      await consumer.run({ eachMessage: settings.around ? settings.around(wrapped) : wrapped })
    }
  } catch (error) {
    await stop().catch(() => undefined)
    throw error
  }
  return { detour, consumer, groupId, stop }
}

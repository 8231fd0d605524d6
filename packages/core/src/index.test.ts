import { describe, expect, it } from 'vitest'
import * as core from './index.js'

describe('@detour/core public API', () => {
  it('exports exactly these runtime names', () => {
    expect(Object.keys(core).sort()).toEqual(
      [
        'DeserializationError',
        'DetourConfigError',
        'DetourError',
        'DetourFencedError',
        'DetourHandOffError',
        'DetourHeaders',
        'DetourStoppingError',
        'DetourTimeoutError',
        'DetourTopicError',
        'ErrorCodes',
        'GroupStore',
        'HeaderLimits',
        'KEYLESS_GROUP_PREFIX',
        'KafkaTopicAdmin',
        'MALFORMED_GROUP_PREFIX',
        'MAX_TIMER_DELAY_MS',
        'METRIC_PREFIX',
        'MalformedRecordError',
        'REDIRECT_KEY_SEPARATOR',
        'RETRY_TOPIC_CONFIG',
        'RedirectFollower',
        'RedirectPartitionDecoder',
        'SafeEmitter',
        'StableOffsetReader',
        'UnprocessableMessageError',
        'buildDeadLetterRecord',
        'buildRedirectRecord',
        'buildRetryRecord',
        'buildTombstone',
        'childLogger',
        'classifyError',
        'constantBackoff',
        'counter',
        'createFollowerMetrics',
        'createJsonLogger',
        'decodeRedirectRecord',
        'decodeRetryRecord',
        'defaultGroupKey',
        'defaultTopicNaming',
        'describeError',
        'detourTopics',
        'detourTopicsFor',
        'displayGroupKey',
        'exponentialBackoff',
        'gauge',
        'groupKeyToStoreKey',
        'headerBuffer',
        'headerString',
        'histogram',
        'isDeserializationError',
        'isDetourError',
        'isFencedError',
        'isProgrammingError',
        'isRebalanceError',
        'isRecordTooLargeError',
        'isUnprocessableError',
        'isValidOffset',
        'isValidTopicName',
        'kafkajsLogCreator',
        'kafkajsLogLevel',
        'messageId',
        'noopLogger',
        'parseMessageId',
        'parseRedirectKey',
        'parseTopicPartitionKey',
        'provisionTopics',
        'redirectKey',
        'resolveBackoff',
        'resolveGroupKey',
        'someInChain',
        'topicPartitionKey',
        'truncateUtf8',
        'userHeaders',
        'writeDeadLetter',
      ].sort(),
    )
  })

  it('exposes the header contract and limits', () => {
    expect(Object.values(core.DetourHeaders).every((name) => name.startsWith('detour-'))).toBe(true)
    expect(new Set(Object.values(core.DetourHeaders)).size).toBe(Object.values(core.DetourHeaders).length)
    expect(core.DetourHeaders.ID).toBe('detour-id')
    expect(core.DetourHeaders.GROUP_KEY).toBe('detour-group-key')
    expect(core.HeaderLimits).toEqual({ errorMessageBytes: 1024, stackBytes: 4096 })
  })
})

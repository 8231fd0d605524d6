import { describe, expect, it } from 'vitest'
import * as core from './index.js'

describe('@detour/core public API', () => {
  it('exports exactly these runtime names', () => {
    expect(Object.keys(core).sort()).toEqual(
      [
        'DeserializationError',
        'DetourConfigError',
        'DetourError',
        'DetourHandOffError',
        'DetourHeaders',
        'DetourTimeoutError',
        'DetourTopicError',
        'ErrorCodes',
        'GroupStore',
        'HeaderLimits',
        'KafkaTopicAdmin',
        'METRIC_PREFIX',
        'MalformedRecordError',
        'UnprocessableMessageError',
        'buildDeadLetterRecord',
        'buildRedirectRecord',
        'buildRetryRecord',
        'buildTombstone',
        'childLogger',
        'classifyError',
        'constantBackoff',
        'counter',
        'createJsonLogger',
        'decodeRedirectRecord',
        'decodeRetryRecord',
        'defaultGroupKey',
        'defaultTopicNaming',
        'describeError',
        'detourTopics',
        'displayGroupKey',
        'exponentialBackoff',
        'gauge',
        'groupKeyToStoreKey',
        'headerBuffer',
        'headerString',
        'histogram',
        'isDeserializationError',
        'isDetourError',
        'isProgrammingError',
        'isRecordTooLargeError',
        'isUnprocessableError',
        'isValidOffset',
        'isValidTopicName',
        'messageId',
        'noopLogger',
        'parseMessageId',
        'parseRedirectKey',
        'provisionTopics',
        'redirectKey',
        'resolveGroupKey',
        'truncateUtf8',
        'userHeaders',
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

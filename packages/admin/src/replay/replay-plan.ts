import type { IHeaders, Message } from 'kafkajs'
import { buildRedirectRecord, buildRetryRecord, DetourHeaders, headerString, messageId, userHeaders } from '@detour/core'
import { coordinatesText, type DeadLetter } from '../dlt/dead-letter.js'
import type { PendingIndex } from '../inspect/pending-index.js'
import type { TopicMessages } from '../kafka/topic-log.js'
import { AdminHeaders } from '../model/admin-headers.js'
import type { AdminScope } from '../model/scope.js'
import type { LedgerEntry } from './replay-ledger.js'

/**
 * Where a replay sends a dead letter:
 * - `source`: back to its original topic and partition as a new message (key, value and user headers
 *   byte for byte, plus `detour-replayed-from`). The main app routes it like any new message: if its group
 *   has pending ids in that partition, it waits behind them.
 * - `retry`: back into the retry flow under its original id: a redirect record and a retry record for that
 *   id, in one transaction, appended behind the group's pending ids.
 */
export type ReplayTarget = 'source' | 'retry'

export interface ReplayDecision {
  readonly deadLetter: DeadLetter
  readonly action: 'replay' | 'skip'
  /** Why it is skipped, or a note about the replay (e.g. the pending ids it will wait behind). */
  readonly note: string | undefined
  /** The writes of the replay (without the ledger record), when it is replayed. */
  readonly writes: readonly TopicMessages[]
  /** Pending ids of the dead letter's group in its source partition at planning time. */
  readonly pendingAhead: number
}

export interface ReplayPlan {
  readonly to: ReplayTarget
  readonly force: boolean
  readonly decisions: readonly ReplayDecision[]
}

export interface PlanInput {
  readonly deadLetters: readonly DeadLetter[]
  readonly to: ReplayTarget
  /** Replay again what the ledger says was replayed. @defaultValue false */
  readonly force?: boolean
  readonly scope: AdminScope
  /** The ledgers of the dead letters' error topics, by dead-letter coordinates. */
  readonly ledger: ReadonlyMap<string, LedgerEntry>
  /** The redirect topics read to their end: who is pending now. */
  readonly pending: PendingIndex
  readonly now?: Date
}

function skip(deadLetter: DeadLetter, note: string, pendingAhead = 0): ReplayDecision {
  return { deadLetter, action: 'skip', note, writes: [], pendingAhead }
}

/** Headers of a record replayed to the source topic: the user headers as they were, plus where it came from. */
function sourceHeaders(deadLetter: DeadLetter): IHeaders {
  const headers = userHeaders(deadLetter.headers)
  headers[AdminHeaders.REPLAYED_FROM] = coordinatesText(deadLetter.coordinates)
  return headers
}

/**
 * Decides, for each selected dead letter, whether and how it is replayed. Pure: reads nothing, writes
 * nothing; the same plan is shown by a dry run and carried out by `--execute`.
 */
export function planReplay(input: PlanInput): ReplayPlan {
  const { scope, pending, to } = input
  const force = input.force ?? false
  const groups = pending.groups()
  const decisions = input.deadLetters.map((deadLetter): ReplayDecision => {
    const coordinates = coordinatesText(deadLetter.coordinates)
    const source = deadLetter.source
    const groupKey = deadLetter.groupKey ?? null
    const id = deadLetter.id ?? (source ? messageId(source) : undefined)
    const ahead = source
      ? (groups.find(
          (group) =>
            group.sourceTopic === source.topic &&
            group.partition === source.partition &&
            groupKey !== null &&
            group.groupKey !== null &&
            group.groupKey.equals(groupKey),
        )?.ids.length ?? 0)
      : 0
    const replayed = input.ledger.get(coordinates)
    if (replayed && !force) {
      return skip(deadLetter, `already replayed ${replayed.count > 1 ? `${replayed.count} times, last ` : ''}at ${replayed.replayedAt} to ${replayed.to}${replayed.target ? ` (${replayed.target.topic}/${replayed.target.partition})` : ''}; --force replays it again`, ahead)
    }
    if (!source) return skip(deadLetter, 'the dead letter does not name its source message (no detour-original-topic/-partition/-offset headers)')
    const topics = scope.topics.get(source.topic)
    if (!topics) return skip(deadLetter, `its source topic ${source.topic} is not one of --topics`)
    if (deadLetter.reason === 'record-too-large' && deadLetter.value === null) {
      return skip(deadLetter, `the dead letter has no value (record-too-large): the original is at ${source.topic}/${source.partition}/${source.offset}`)
    }
    if (deadLetter.reason === 'malformed') {
      return skip(deadLetter, 'a malformed retry record: its bytes are not the original message; replay the original from its source topic')
    }
    if (deadLetter.consumerGroup !== undefined && deadLetter.consumerGroup !== scope.consumerGroup) {
      return skip(deadLetter, `written for consumer group ${deadLetter.consumerGroup}, not ${scope.consumerGroup}`)
    }
    const waits = ahead > 0 ? `its group has ${ahead} pending id${ahead === 1 ? '' : 's'} in ${source.topic}/${source.partition}: the replay waits behind ${ahead === 1 ? 'it' : 'them'}` : undefined
    if (to === 'source') {
      const message: Message = { partition: source.partition, key: deadLetter.key, value: deadLetter.value, headers: sourceHeaders(deadLetter) }
      return { deadLetter, action: 'replay', note: waits, writes: [{ topic: source.topic, messages: [message] }], pendingAhead: ahead }
    }
    // to === 'retry': under the original id.
    if (id === undefined || id !== messageId(source)) return skip(deadLetter, `its detour-id ${id ?? '(none)'} does not match its source coordinates`)
    if (pending.find(id)) {
      return skip(
        deadLetter,
        `${id} is still pending (held?): a second redirect record for it would be released together with the first; release it first (detour release --id ${id}) or replay --to source`,
        ahead,
      )
    }
    const now = input.now ?? new Date()
    const replayedFrom = coordinates
    const redirect = buildRedirectRecord({ source, id, groupKey, reason: 'failure', consumerGroup: scope.consumerGroup, now })
    redirect.headers = { ...redirect.headers, [AdminHeaders.REPLAYED_FROM]: replayedFrom }
    const error = Object.assign(new Error(deadLetter.errorMessage ?? 'replayed from the error topic'), { name: deadLetter.errorName ?? 'Error' })
    const retry = buildRetryRecord({
      source,
      message: {
        key: deadLetter.key,
        value: deadLetter.value,
        headers: deadLetter.headers,
        timestamp: headerString(deadLetter.headers, DetourHeaders.ORIGINAL_TIMESTAMP) ?? deadLetter.timestamp,
      },
      id,
      groupKey,
      reason: 'failure',
      consumerGroup: scope.consumerGroup,
      error,
      now,
    })
    retry.headers = { ...retry.headers, [AdminHeaders.REPLAYED_FROM]: replayedFrom }
    return {
      deadLetter,
      action: 'replay',
      note: waits,
      writes: [
        { topic: topics.redirect, messages: [redirect] },
        { topic: topics.retry, messages: [retry] },
      ],
      pendingAhead: ahead,
    }
  })
  return { to, force, decisions }
}

import { isFencedError, noopLogger, type Logger } from '@detour/core'
import { coordinatesText } from '../dlt/dead-letter.js'
import { AdminError, AdminErrorCodes, AdminUsageError } from '../errors/index.js'
import type { TopicLog, TopicWriter, TransactionalWriter, WrittenRecord } from '../kafka/topic-log.js'
import { ReplayLedger, replayTransactionalId, type LedgerEntry } from './replay-ledger.js'
import type { ReplayDecision, ReplayPlan } from './replay-plan.js'

export interface ReplayOutcome {
  /** The dead letter, `<error topic>/<partition>/<offset>`. */
  readonly deadLetter: string
  readonly action: 'replayed' | 'skipped'
  readonly note: string | undefined
  /** Where the replay's records landed (source record; or redirect and retry records). */
  readonly written: readonly WrittenRecord[]
}

export interface ReplayExecution {
  readonly replayed: number
  readonly skipped: number
  readonly outcomes: readonly ReplayOutcome[]
}

export interface ReplayerOptions {
  readonly log: TopicLog
  readonly writer: TopicWriter
  /** Recorded in the ledger as who replayed. */
  readonly clientId: string
  readonly logger?: Logger
  /** For tests. */
  readonly sleep?: (ms: number) => Promise<void>
  readonly now?: () => Date
}

export interface ExecuteOptions {
  /** Replays per second at most. @defaultValue 10 */
  readonly rate?: number
  /** Called after each dead letter (replayed or skipped). */
  readonly onOutcome?: (outcome: ReplayOutcome) => void
}

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Carries out a replay plan. Per error topic it claims the transactional id of that topic's replays (which
 * fences a concurrent replay of the same topic and settles its open transaction), then reads the ledger —
 * so it sees everything replayed before the claim — and writes each replay and its ledger entry in one
 * transaction, at most `rate` per second. A dead letter the ledger lists is skipped unless the plan forces.
 */
export class Replayer {
  private readonly logger: Logger
  private readonly sleep: (ms: number) => Promise<void>
  private readonly now: () => Date

  constructor(private readonly options: ReplayerOptions) {
    this.logger = options.logger ?? noopLogger
    this.sleep = options.sleep ?? defaultSleep
    this.now = options.now ?? (() => new Date())
  }

  async execute(plan: ReplayPlan, options: ExecuteOptions = {}): Promise<ReplayExecution> {
    const rate = options.rate ?? 10
    if (!(rate > 0) || !Number.isFinite(rate)) throw new AdminUsageError(`--rate must be a positive number of replays per second, got ${rate}`)
    const interval = 1000 / rate
    const outcomes: ReplayOutcome[] = []
    const report = (outcome: ReplayOutcome): void => {
      outcomes.push(outcome)
      options.onOutcome?.(outcome)
    }
    const byTopic = new Map<string, ReplayDecision[]>()
    for (const decision of plan.decisions) {
      if (decision.action === 'skip') {
        report({ deadLetter: coordinatesText(decision.deadLetter.coordinates), action: 'skipped', note: decision.note, written: [] })
        continue
      }
      const list = byTopic.get(decision.deadLetter.coordinates.topic) ?? []
      list.push(decision)
      byTopic.set(decision.deadLetter.coordinates.topic, list)
    }
    let last = 0
    for (const [errorTopic, decisions] of byTopic) {
      const ledger = new ReplayLedger(this.options.log, errorTopic)
      await this.options.writer.createTopic({ topic: ledger.topic, partitions: 1, compact: true })
      let transactional: TransactionalWriter
      try {
        transactional = await this.options.writer.transactional(replayTransactionalId(errorTopic))
      } catch (error) {
        throw new AdminError(`Cannot start the replay transaction of ${errorTopic}: ${(error as Error).message}`, AdminErrorCodes.WRITE_FAILED, {
          cause: error,
          retriable: true,
        })
      }
      try {
        // After the claim: replays of this topic committed before it are in the ledger now.
        const entries = await ledger.load()
        for (const decision of decisions) {
          const deadLetter = coordinatesText(decision.deadLetter.coordinates)
          const previous = entries.get(deadLetter)
          if (previous && !plan.force) {
            report({ deadLetter, action: 'skipped', note: `replayed meanwhile at ${previous.replayedAt} (by ${previous.by})`, written: [] })
            continue
          }
          const wait = last + interval - Date.now()
          if (wait > 0) await this.sleep(wait)
          last = Date.now()
          const target = decision.writes[decision.writes.length - 1]!
          const entry: LedgerEntry = {
            deadLetter,
            replayedAt: this.now().toISOString(),
            to: plan.to,
            target: { topic: target.topic, partition: target.messages[0]?.partition ?? 0 },
            count: (previous?.count ?? 0) + 1,
            by: this.options.clientId,
          }
          let written: WrittenRecord[]
          try {
            written = await transactional.commit([...decision.writes, { topic: ledger.topic, messages: [ReplayLedger.record(entry)] }])
          } catch (error) {
            const done = outcomes.filter((outcome) => outcome.action === 'replayed').length
            if (isFencedError(error)) {
              throw new AdminError(
                `Another replay of ${errorTopic} took over (this one was fenced) after ${done} replays; ${deadLetter} was not replayed. Run the replay again: the ledger skips what is done.`,
                AdminErrorCodes.REPLAY_FENCED,
                { cause: error },
              )
            }
            throw new AdminError(`Replaying ${deadLetter} failed after ${done} replays: ${(error as Error).message}. Nothing of it was written; run the replay again.`, AdminErrorCodes.WRITE_FAILED, {
              cause: error,
              retriable: true,
            })
          }
          entries.set(deadLetter, entry)
          // The ledger record is the last one written: the replay's own records come before it.
          report({ deadLetter, action: 'replayed', note: decision.note, written: written.slice(0, -1) })
          this.logger.info('Replayed a dead letter', { deadLetter, to: plan.to, written: written.slice(0, -1) })
        }
      } finally {
        await transactional.close().catch((error: unknown) => this.logger.debug('Closing the replay producer failed', { error }))
      }
    }
    return {
      replayed: outcomes.filter((outcome) => outcome.action === 'replayed').length,
      skipped: outcomes.filter((outcome) => outcome.action === 'skipped').length,
      outcomes,
    }
  }
}

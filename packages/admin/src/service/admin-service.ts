import { noopLogger, type Logger } from '@detour/core'
import { fetchAppStatus, type AppStatus } from '../apps/app-metrics.js'
import { DeadLetterBrowser, type DeadLetterPage } from '../dlt/dead-letter-browser.js'
import { coordinatesText, parseCoordinates, type DeadLetter } from '../dlt/dead-letter.js'
import { isNarrowing, type DeadLetterFilter } from '../dlt/dead-letter-filter.js'
import { AdminRefusedError, AdminUsageError } from '../errors/index.js'
import type { InspectReport } from '../inspect/inspect-report.js'
import { Inspector, type InspectOptions } from '../inspect/inspector.js'
import { RedirectTail } from '../inspect/redirect-tail.js'
import type { TopicLog, TopicWriter } from '../kafka/topic-log.js'
import type { AdminScope } from '../model/scope.js'
import { DirectRelease, type DirectReleasePreview, type DirectReleaseResult } from '../release/direct-release.js'
import { ReplayLedger, type LedgerEntry } from '../replay/replay-ledger.js'
import { planReplay, type ReplayPlan, type ReplayTarget } from '../replay/replay-plan.js'
import { Replayer, type ExecuteOptions, type ReplayExecution } from '../replay/replayer.js'
import type { HeldGroup, WorkerClient } from '../worker/worker-client.js'

export interface AdminServiceOptions {
  readonly scope: AdminScope
  readonly log: TopicLog
  readonly writer: TopicWriter
  /** A running worker's HTTP API (held groups, release). */
  readonly worker?: WorkerClient
  /** Main apps' `/metrics` URLs, for their readiness. */
  readonly appMetricsUrls?: readonly string[]
  /** Recorded in the replay ledger as who replayed. */
  readonly clientId: string
  readonly logger?: Logger
  readonly now?: () => number
  /** For tests: the replay's pacing. */
  readonly sleep?: (ms: number) => Promise<void>
  /** For tests: how app metrics are fetched. */
  readonly fetch?: typeof fetch
}

/** Which dead letters a replay takes: coordinates, or filters (with `all` when no filter narrows). */
export interface ReplaySelection {
  /** `<partition>:<offset>` or `<error topic>/<partition>/<offset>`. */
  readonly coordinates?: readonly string[]
  readonly filter?: DeadLetterFilter
  /** Take every dead letter of the scope's error topics when no filter narrows. */
  readonly all?: boolean
  /** At most this many dead letters may match (more is refused: narrow the filters). @defaultValue 1000 */
  readonly max?: number
}

/** A dead letter with its replay record, when the ledger has one. */
export interface DeadLetterWithReplay {
  readonly deadLetter: DeadLetter
  readonly replayed: LedgerEntry | undefined
}

/**
 * The operator surface's one core: everything the `detour` CLI and the web console show and do goes
 * through here, so both faces read the same data and apply the same safety rules.
 */
export class AdminService {
  readonly scope: AdminScope
  readonly tail: RedirectTail
  readonly inspector: Inspector
  readonly browser: DeadLetterBrowser
  private readonly logger: Logger

  constructor(private readonly options: AdminServiceOptions) {
    this.scope = options.scope
    this.logger = options.logger ?? noopLogger
    this.tail = new RedirectTail(options.log, options.scope)
    this.inspector = new Inspector({ log: options.log, scope: options.scope, tail: this.tail, worker: options.worker, now: options.now })
    this.browser = new DeadLetterBrowser(options.log, options.scope)
  }

  get worker(): WorkerClient | undefined {
    return this.options.worker
  }

  get appMetricsUrls(): readonly string[] {
    return this.options.appMetricsUrls ?? []
  }

  /** Pending ids per topic, partition and group; held groups; retry state. */
  inspect(options: InspectOptions = {}): Promise<InspectReport> {
    return this.inspector.inspect(options)
  }

  private requireWorker(what: string): WorkerClient {
    if (!this.options.worker) throw new AdminUsageError(`${what} needs --worker-url (the worker's HTTP server)`)
    return this.options.worker
  }

  /** The groups the worker holds. */
  held(): Promise<HeldGroup[]> {
    return this.requireWorker('Listing held groups').held()
  }

  /** The worker's held group with this id (for the confirmation), or `undefined`. */
  async heldGroup(id: string): Promise<HeldGroup | undefined> {
    return (await this.held()).find((group) => group.id === id)
  }

  /** Releases a held group through the worker (it writes the tombstone and unblocks its queue). */
  releaseViaWorker(id: string): Promise<HeldGroup | undefined> {
    return this.requireWorker('Releasing a held group').release(id)
  }

  private directRelease(): DirectRelease {
    return new DirectRelease(this.scope, this.inspector, this.options.writer)
  }

  previewDirectRelease(id: string): Promise<DirectReleasePreview> {
    return this.directRelease().preview(id)
  }

  releaseDirect(preview: DirectReleasePreview, options: { force?: boolean } = {}): Promise<DirectReleaseResult> {
    return this.directRelease().release(preview, options)
  }

  /** Every ledger entry of the scope's error topics. */
  async ledger(): Promise<Map<string, LedgerEntry>> {
    const ledgers = await Promise.all(this.browser.errorTopics.map((errorTopic) => new ReplayLedger(this.options.log, errorTopic).load()))
    return new Map(ledgers.flatMap((entries) => [...entries]))
  }

  async listDeadLetters(filter: DeadLetterFilter, options: { limit?: number } = {}): Promise<DeadLetterPage & { replays: Map<string, LedgerEntry> }> {
    const [page, replays] = await Promise.all([this.browser.list(filter, options), this.ledger()])
    return { ...page, replays }
  }

  async showDeadLetter(coordinates: string): Promise<DeadLetterWithReplay> {
    const parsed = parseCoordinates(coordinates, this.browser.defaultErrorTopic)
    const [deadLetter, ledger] = await Promise.all([this.browser.show(parsed), new ReplayLedger(this.options.log, parsed.topic).load()])
    const replayed = ledger.get(coordinatesText(parsed))
    return { deadLetter, replayed }
  }

  /** The dead letters a selection takes, in offset order. */
  async select(selection: ReplaySelection): Promise<DeadLetter[]> {
    const coordinates = selection.coordinates ?? []
    const filter = selection.filter ?? {}
    if (coordinates.length > 0) {
      if (isNarrowing(filter)) throw new AdminUsageError('Give either dead-letter coordinates or filters, not both')
      const defaultTopic = this.browser.defaultErrorTopic
      return Promise.all(coordinates.map((text) => this.browser.show(parseCoordinates(text, defaultTopic))))
    }
    if (!isNarrowing(filter) && !selection.all) {
      throw new AdminUsageError('Select dead letters to replay: coordinates, a filter (--reason, --error-name, --key, --since, --until, --source-partition, --source-offset), or --all')
    }
    const max = selection.max ?? 1000
    const selected: DeadLetter[] = []
    await this.browser.scan(filter, (deadLetter) => {
      selected.push(deadLetter)
    })
    if (selected.length > max) {
      throw new AdminRefusedError(`${selected.length} dead letters match, more than --max ${max}: narrow the filters (--since, --reason…) or raise --max`)
    }
    return selected
  }

  /** What a replay would do (a dry run). */
  async planReplay(selection: ReplaySelection, options: { to: ReplayTarget; force?: boolean }): Promise<ReplayPlan> {
    // Independent reads at once (each reading consumer's join waits group.initial.rebalance.delay.ms).
    const [deadLetters, ledger] = await Promise.all([this.select(selection), this.ledger(), this.tail.catchUp()])
    return planReplay({ deadLetters, to: options.to, force: options.force, scope: this.scope, ledger, pending: this.tail.index, now: new Date(this.options.now?.() ?? Date.now()) })
  }

  /** Carries out a plan made by {@link planReplay}. */
  executeReplay(plan: ReplayPlan, options: ExecuteOptions = {}): Promise<ReplayExecution> {
    const replayer = new Replayer({ log: this.options.log, writer: this.options.writer, clientId: this.options.clientId, logger: this.logger, sleep: this.options.sleep })
    return replayer.execute(plan, options)
  }

  /** Readiness of the main apps whose metrics URLs were given. */
  apps(): Promise<AppStatus[]> {
    return Promise.all(this.appMetricsUrls.map((url) => fetchAppStatus(url, { fetch: this.options.fetch })))
  }

  async close(): Promise<void> {
    await this.options.writer.close()
  }
}

export {
  AdminErrorCodes,
  AdminError,
  AdminUsageError,
  AdminNotFoundError,
  AdminRefusedError,
  WorkerRequestError,
  isAdminError,
  ExitCodes,
  exitCodeOf,
} from './errors/index.js'
export type { AdminErrorCode, ExitCode } from './errors/index.js'
export { AdminHeaders } from './model/admin-headers.js'
export { resolveScope, errorTopicsOf, topicsOf } from './model/scope.js'
export type { AdminScope, ScopeInput } from './model/scope.js'
export { createKafka } from './kafka/kafka-client.js'
export type { KafkaConnectionSettings, SaslMechanism } from './kafka/kafka-client.js'
export type { TopicLog, TopicWriter, TransactionalWriter, LogRecord, PartitionBounds, PartitionRange, RangeOutcome, TopicMessages, WrittenRecord } from './kafka/topic-log.js'
export { KafkaTopicLog } from './kafka/kafka-topic-log.js'
export type { KafkaTopicLogOptions } from './kafka/kafka-topic-log.js'
export { KafkaTopicWriter } from './kafka/kafka-topic-writer.js'
export { PendingIndex } from './inspect/pending-index.js'
export type { PendingEntry, PendingGroup, ApplyOutcome } from './inspect/pending-index.js'
export { RedirectTail } from './inspect/redirect-tail.js'
export type { RedirectProgress } from './inspect/redirect-tail.js'
export { Inspector } from './inspect/inspector.js'
export type { InspectorDeps, InspectOptions } from './inspect/inspector.js'
export type { InspectReport, TopicView, PartitionView, GroupView, PendingIdView, PendingState, OldestPending } from './inspect/inspect-report.js'
export { WorkerClient } from './worker/worker-client.js'
export type { HeldGroup, WorkerClientOptions } from './worker/worker-client.js'
export { decodeDeadLetter, deadLetterJson, parseCoordinates, coordinatesText, showBytes, failedAtMs } from './dlt/dead-letter.js'
export type { DeadLetter, DeadLetterCoordinates, DeadLetterJson, ShownBytes, ShownHeader } from './dlt/dead-letter.js'
export { matchesFilter, parseTime, isNarrowing } from './dlt/dead-letter-filter.js'
export type { DeadLetterFilter } from './dlt/dead-letter-filter.js'
export { DeadLetterBrowser } from './dlt/dead-letter-browser.js'
export type { DeadLetterPage, ListOptions } from './dlt/dead-letter-browser.js'
export { ReplayLedger, ledgerTopicFor, replayTransactionalId } from './replay/replay-ledger.js'
export type { LedgerEntry } from './replay/replay-ledger.js'
export { planReplay } from './replay/replay-plan.js'
export type { ReplayTarget, ReplayDecision, ReplayPlan, PlanInput } from './replay/replay-plan.js'
export { Replayer } from './replay/replayer.js'
export type { ReplayerOptions, ExecuteOptions, ReplayOutcome, ReplayExecution } from './replay/replayer.js'
export { DirectRelease, previewFrom, directReleaseRefusal } from './release/direct-release.js'
export type { DirectReleasePreview, DirectReleaseResult } from './release/direct-release.js'
export { parsePrometheusText, appStatusFrom, fetchAppStatus } from './apps/app-metrics.js'
export type { Sample, AppStatus } from './apps/app-metrics.js'
export { AdminService } from './service/admin-service.js'
export type { AdminServiceOptions, ReplaySelection, DeadLetterWithReplay } from './service/admin-service.js'
export { startConsoleServer, defaultStaticDir } from './console/console-server.js'
export type { ConsoleServerOptions, RunningConsole } from './console/console-server.js'
export { ConsoleApi } from './console/console-api.js'
export type { ApiResponse } from './console/console-api.js'
export { runCli } from './cli/cli.js'
export type { CliOptions } from './cli/cli.js'

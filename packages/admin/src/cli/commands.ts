import { coordinatesText, deadLetterJson } from '../dlt/dead-letter.js'
import type { DeadLetterFilter } from '../dlt/dead-letter-filter.js'
import { AdminUsageError, ExitCodes, type ExitCode } from '../errors/index.js'
import type { ReplayTarget } from '../replay/replay-plan.js'
import type { AdminService } from '../service/admin-service.js'
import { startConsoleServer } from '../console/console-server.js'
import { directReleaseRefusal } from '../release/direct-release.js'
import type { Logger } from '@detour/core'
import type { Confirm } from './prompt.js'
import {
  renderDeadLetter,
  renderDeadLetters,
  renderDirectPreview,
  renderExecution,
  renderHeld,
  renderInspect,
  renderPlan,
} from './format.js'

/** Where a command writes and how it asks. */
export interface CommandIo {
  readonly stdout: { write(text: string): unknown }
  readonly stderr: { write(text: string): unknown }
  readonly confirm: Confirm
  /** Resolves when a long-running command (the console) should stop. */
  readonly stopped: () => Promise<void>
}

function print(io: CommandIo, text: string): void {
  io.stdout.write(text.endsWith('\n') ? text : `${text}\n`)
}

function printJson(io: CommandIo, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`)
}

/** Asks for confirmation unless `--yes`; a missing terminal is a usage error (exit 2), a "no" exits 4. */
async function confirmed(io: CommandIo, yes: boolean, question: string): Promise<boolean> {
  if (yes) return true
  const answer = await io.confirm(question)
  if (answer === undefined) throw new AdminUsageError('Confirmation needed but stdin is not a terminal: add --yes to proceed without asking')
  if (!answer) io.stderr.write('Nothing was written.\n')
  return answer
}

export async function inspectCommand(service: AdminService, io: CommandIo, args: { json: boolean; retryScan: boolean }): Promise<ExitCode> {
  const report = await service.inspect({ retryScan: args.retryScan })
  if (args.json) printJson(io, report)
  else print(io, renderInspect(report))
  for (const warning of report.warnings) if (args.json) io.stderr.write(`warning: ${warning}\n`)
  return report.pendingIds > 0 || (report.worker?.held.length ?? 0) > 0 ? ExitCodes.OK : ExitCodes.NOTHING
}

export async function dltListCommand(service: AdminService, io: CommandIo, args: { json: boolean; filter: DeadLetterFilter; limit: number }): Promise<ExitCode> {
  const page = await service.listDeadLetters(args.filter, { limit: args.limit })
  if (args.json) {
    printJson(io, {
      errorTopics: page.errorTopics,
      matched: page.matched,
      scanned: page.scanned,
      complete: page.complete,
      deadLetters: page.deadLetters.map((deadLetter) => {
        const replayed = page.replays.get(coordinatesText(deadLetter.coordinates))
        return { ...deadLetterJson(deadLetter, { withValue: false }), ...(replayed ? { replayed } : {}) }
      }),
    })
  } else {
    print(io, `${page.matched} of ${page.scanned} dead letters on ${page.errorTopics.join(', ')} match${page.matched > page.deadLetters.length ? ` (newest ${page.deadLetters.length} shown; --limit)` : ''}`)
    if (page.deadLetters.length > 0) print(io, renderDeadLetters(page.deadLetters, page.replays))
    if (!page.complete) io.stderr.write('warning: some partitions could not be read to their end\n')
  }
  return page.matched > 0 ? ExitCodes.OK : ExitCodes.NOTHING
}

export async function dltShowCommand(service: AdminService, io: CommandIo, args: { json: boolean; coordinates: string }): Promise<ExitCode> {
  const { deadLetter, replayed } = await service.showDeadLetter(args.coordinates)
  if (args.json) printJson(io, { ...deadLetterJson(deadLetter), ...(replayed ? { replayed } : {}) })
  else print(io, renderDeadLetter(deadLetter, replayed))
  return ExitCodes.OK
}

export interface ReplayArgs {
  readonly json: boolean
  readonly coordinates: string[]
  readonly filter: DeadLetterFilter
  readonly all: boolean
  readonly to: ReplayTarget
  readonly execute: boolean
  readonly force: boolean
  readonly rate: number
  readonly max: number
  readonly yes: boolean
}

export async function dltReplayCommand(service: AdminService, io: CommandIo, args: ReplayArgs): Promise<ExitCode> {
  const plan = await service.planReplay({ coordinates: args.coordinates, filter: args.filter, all: args.all, max: args.max }, { to: args.to, force: args.force })
  const replays = plan.decisions.filter((decision) => decision.action === 'replay').length
  if (!args.execute || replays === 0) {
    if (args.json) {
      printJson(io, {
        dryRun: true,
        to: plan.to,
        replays,
        decisions: plan.decisions.map((d) => ({
          deadLetter: coordinatesText(d.deadLetter.coordinates),
          action: d.action,
          note: d.note,
          writes: d.writes.map((w) => ({ topic: w.topic, partition: w.messages[0]?.partition })),
        })),
      })
    } else {
      print(io, renderPlan(plan, true))
    }
    return replays > 0 ? ExitCodes.OK : ExitCodes.NOTHING
  }
  if (!args.json) print(io, renderPlan(plan, false))
  const question = `Replay ${replays} dead letter${replays === 1 ? '' : 's'} to ${args.to}${args.to === 'source' ? ' (their original topics)' : ' (the retry flow, under their original ids)'}?`
  if (!(await confirmed(io, args.yes, question))) return ExitCodes.DECLINED
  const execution = await service.executeReplay(plan, {
    rate: args.rate,
    onOutcome: (outcome) => {
      if (!args.json) io.stderr.write(`${outcome.action} ${outcome.deadLetter}${outcome.written.length ? ` -> ${outcome.written.map((w) => `${w.topic}/${w.partition}/${w.offset}`).join(' + ')}` : ''}\n`)
    },
  })
  if (args.json) printJson(io, { dryRun: false, to: plan.to, ...execution })
  else print(io, renderExecution(execution))
  return execution.replayed > 0 ? ExitCodes.OK : ExitCodes.NOTHING
}

export interface ReleaseArgs {
  readonly json: boolean
  readonly id: string
  readonly direct: boolean
  readonly force: boolean
  readonly yes: boolean
}

export async function releaseCommand(service: AdminService, io: CommandIo, args: ReleaseArgs): Promise<ExitCode> {
  if (args.direct) {
    const preview = await service.previewDirectRelease(args.id)
    if (!args.json) print(io, renderDirectPreview(preview))
    const refused = directReleaseRefusal(preview, args.force)
    if (refused) throw refused
    if (!(await confirmed(io, args.yes, `Write the tombstone of ${args.id} to ${preview.redirectTopic}/${preview.partition}?`))) return ExitCodes.DECLINED
    const result = await service.releaseDirect(preview, { force: args.force })
    if (args.json) printJson(io, { released: args.id, direct: true, preview, result })
    else {
      print(io, `Released ${args.id}: tombstone at ${result.tombstone.topic}/${result.tombstone.partition}/${result.tombstone.offset}`)
      if (!result.verified) io.stderr.write(`warning: ${args.id} still shows as pending on a read right after the write\n`)
    }
    return ExitCodes.OK
  }
  const group = await service.heldGroup(args.id)
  if (!group) {
    io.stderr.write(`The worker at ${service.worker?.url ?? '?'} holds no group with id ${args.id}\n`)
    return ExitCodes.NOTHING
  }
  if (!args.json) print(io, renderHeld([group]))
  if (!(await confirmed(io, args.yes, `Release the held group of ${args.id} through the worker (it writes the tombstone; the group continues)?`))) return ExitCodes.DECLINED
  const released = await service.releaseViaWorker(args.id)
  if (args.json) printJson(io, { released: args.id, direct: false, group: released ?? group })
  else print(io, `Released ${args.id} through the worker at ${service.worker?.url ?? '?'}`)
  return ExitCodes.OK
}

export interface ConsoleArgs {
  readonly host: string
  readonly port: number
  readonly token: string | undefined
  readonly refreshMs: number
}

export async function consoleCommand(service: AdminService, io: CommandIo, args: ConsoleArgs, logger: Logger): Promise<ExitCode> {
  const running = await startConsoleServer({ service, host: args.host, port: args.port, token: args.token, refreshMs: args.refreshMs, logger })
  io.stderr.write(`Detour console on ${running.url}${args.token !== undefined ? ' (token required)' : ''}; Ctrl-C stops it\n`)
  try {
    await io.stopped()
  } finally {
    await running.close()
  }
  return ExitCodes.OK
}

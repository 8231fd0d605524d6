import { readFileSync } from 'node:fs'
import os from 'node:os'

export interface MachineInfo {
  readonly node: string
  readonly cpuModel: string
  /** `nproc`: CPUs this process may use. */
  readonly cores: number
  readonly platform: string
  readonly totalMemoryGiB: number
}

function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('model name'))
    if (line) return line.slice(line.indexOf(':') + 1).trim()
  } catch {
    // not Linux: fall back to what Node reports
  }
  return os.cpus()[0]?.model ?? 'unknown'
}

/** 1, 5 and 15 minute load averages, rounded (other work on the machine shows up here). */
export function loadAverage(): number[] {
  return os.loadavg().map((l) => Math.round(l * 100) / 100)
}

export function machineInfo(): MachineInfo {
  return {
    node: process.version,
    cpuModel: cpuModel(),
    cores: os.availableParallelism(),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    totalMemoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
  }
}

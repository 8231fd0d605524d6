/** One sample of the Prometheus text format. */
export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

function unescape(value: string): string {
  return value.replace(/\\(["\\n])/g, (_match, c: string) => (c === 'n' ? '\n' : c))
}

function number(text: string): number {
  if (text === '+Inf') return Number.POSITIVE_INFINITY
  if (text === '-Inf') return Number.NEGATIVE_INFINITY
  return Number(text)
}

/** Parses the Prometheus text exposition format (what `/metrics` answers); comments and bad lines are skipped. */
export function parsePrometheusText(text: string): Sample[] {
  const samples: Sample[] = []
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line.length === 0 || line.startsWith('#')) continue
    const match = SAMPLE.exec(line)
    if (!match) continue
    const labels: Record<string, string> = {}
    for (const label of (match[2] ?? '').matchAll(LABEL)) labels[label[1]!] = unescape(label[2]!)
    const value = number(match[3]!)
    if (!Number.isNaN(value)) samples.push({ name: match[1]!, labels, value })
  }
  return samples
}

/** What the console shows of a main app, from its `/metrics`. */
export interface AppStatus {
  readonly url: string
  readonly reachable: boolean
  readonly error?: string
  /** `detour_ready` (1 when every assigned partition is rebuilt); `undefined` when the app does not export it. */
  readonly ready: boolean | undefined
  /** `detour_pending_ids`: pending ids of the app's assigned partitions. */
  readonly pendingIds: number | undefined
  /** `detour_rebuild_duration_seconds`: how many rebuilds, their mean, and the upper bound of the slowest bucket used. */
  readonly rebuild: { readonly count: number; readonly meanSeconds: number | undefined; readonly maxBucketSeconds: number | undefined } | undefined
}

function sum(samples: readonly Sample[], name: string): number | undefined {
  const matching = samples.filter((sample) => sample.name === name)
  return matching.length === 0 ? undefined : matching.reduce((total, sample) => total + sample.value, 0)
}

/** Reads `detour_ready`, `detour_pending_ids` and `detour_rebuild_duration_seconds` from a main app's metrics text. */
export function appStatusFrom(url: string, text: string): AppStatus {
  const samples = parsePrometheusText(text)
  const ready = samples.filter((sample) => sample.name === 'detour_ready')
  const count = sum(samples, 'detour_rebuild_duration_seconds_count')
  const total = sum(samples, 'detour_rebuild_duration_seconds_sum')
  // The smallest bucket bound that holds every rebuild: an upper bound of the slowest one.
  const buckets = samples
    .filter((sample) => sample.name === 'detour_rebuild_duration_seconds_bucket' && sample.labels.le !== undefined)
    .map((sample) => ({ le: number(sample.labels.le!), value: sample.value }))
    .sort((a, b) => a.le - b.le)
  const all = buckets.find((bucket) => count !== undefined && count > 0 && bucket.value >= count)
  return {
    url,
    reachable: true,
    ready: ready.length === 0 ? undefined : ready.every((sample) => sample.value === 1),
    pendingIds: sum(samples, 'detour_pending_ids'),
    rebuild:
      count === undefined
        ? undefined
        : {
            count,
            meanSeconds: count > 0 && total !== undefined ? total / count : undefined,
            maxBucketSeconds: all === undefined || !Number.isFinite(all.le) ? undefined : all.le,
          },
  }
}

/** Fetches a main app's metrics and reads its readiness; an unreachable app is reported, not thrown. */
export async function fetchAppStatus(url: string, options: { timeoutMs?: number; fetch?: typeof fetch } = {}): Promise<AppStatus> {
  const doFetch = options.fetch ?? fetch
  try {
    const response = await doFetch(url, { signal: AbortSignal.timeout(options.timeoutMs ?? 5000) })
    if (response.status !== 200) {
      return { url, reachable: false, error: `answered ${response.status}`, ready: undefined, pendingIds: undefined, rebuild: undefined }
    }
    return appStatusFrom(url, await response.text())
  } catch (error) {
    return { url, reachable: false, error: (error as Error).message, ready: undefined, pendingIds: undefined, rebuild: undefined }
  }
}

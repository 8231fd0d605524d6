/**
 * The offset metadata of the worker's commits: which worker instance owns a retry partition, and whether
 * it still works on it (`active`) or has handed it over with every handler settled (`released`):
 * `detour:owner=<instanceId>;state=active|released`. A new owner reads it to know whether it may start.
 */
export type OwnerState = 'active' | 'released'

export interface OwnerMetadata {
  readonly owner: string
  readonly state: OwnerState
}

const PATTERN = /^detour:owner=([^;]+);state=(active|released)$/

export function formatOwnerMetadata(owner: string, state: OwnerState): string {
  return `detour:owner=${owner};state=${state}`
}

/** `undefined` for absent or foreign metadata (a commit by something else than a Detour worker). */
export function parseOwnerMetadata(metadata: string | null | undefined): OwnerMetadata | undefined {
  if (!metadata) return undefined
  const match = PATTERN.exec(metadata)
  if (!match) return undefined
  return { owner: match[1] as string, state: match[2] as OwnerState }
}

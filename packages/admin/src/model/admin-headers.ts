/**
 * Headers the operator surface writes, beside core's `DetourHeaders` (they belong there once the lead
 * merges this package's contract section into docs/ARCHITECTURE.md).
 */
export const AdminHeaders = {
  /**
   * On a replayed record: the dead letter it was replayed from, `<error topic>/<partition>/<offset>`.
   * On records replayed to the source topic and to the retry topic.
   */
  REPLAYED_FROM: 'detour-replayed-from',
} as const

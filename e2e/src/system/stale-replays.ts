/** A processing of one message of a key: its sequence number, in the order the output topic holds them. */
export interface KeyProcessing {
  readonly seq: number
}

/** A replay that leaves a last-writer-wins handler behind: see {@link findStaleReplays}. */
export interface StaleReplay {
  /** Position of the stale processing in the key's sequence. */
  readonly index: number
  /** Position of the processing of the highest message seen before it. */
  readonly latestIndex: number
  /** Messages in (seq, latest] that had been processed and were not processed again after it, ascending. */
  readonly notReplayed: readonly number[]
}

/**
 * The stale replays in one key's processings (output-topic order). A processing of message n is a stale
 * replay when a later message m > n of the key was processed before it and not every message in (n, m]
 * that had been processed is processed again after it: a last-writer-wins handler (an upsert, a balance,
 * a snapshot) is left with n's state, or shows it meanwhile, although m was already applied. Replaying
 * forward (n, then every processed message after it again, in any number of repetitions) ends in the
 * right state and is only duplication.
 *
 * `isReplay(index)` says whether a processing counts here: the caller leaves out first processings, which
 * its first-processing check judges (a message processed for the first time after a later one is an order
 * violation of that kind, not a replay). Messages that were never processed (dead-lettered) are not
 * required again.
 */
export function findStaleReplays(processings: readonly KeyProcessing[], isReplay: (index: number) => boolean): StaleReplay[] {
  const lastIndex = new Map<number, number>()
  processings.forEach((p, index) => lastIndex.set(p.seq, index))
  const found: StaleReplay[] = []
  let latest = -1
  let latestIndex = -1
  processings.forEach(({ seq }, index) => {
    if (seq < latest && isReplay(index)) {
      const notReplayed: number[] = []
      for (let later = seq + 1; later <= latest; later++) {
        const last = lastIndex.get(later)
        if (last !== undefined && last < index) notReplayed.push(later)
      }
      if (notReplayed.length > 0) found.push({ index, latestIndex, notReplayed })
    }
    if (seq > latest) {
      latest = seq
      latestIndex = index
    }
  })
  return found
}

import type { Admin } from 'kafkajs'

/**
 * Reads the last stable offsets (LSO) of a topic's partitions: the offset below which every record is
 * decided (committed, or aborted and hidden from `read_committed` readers). kafkajs' `fetchTopicOffsets`
 * asks with `read_committed` isolation, so its `high` is the LSO.
 *
 * Callers need a reading taken *after* they asked (a barrier): concurrent callers share one request, and a
 * caller that arrives while a request is in flight waits for the next one instead of reusing it.
 */
export class StableOffsetReader {
  private readonly topics = new Map<string, { inFlight?: Promise<Map<number, bigint>>; next?: Promise<Map<number, bigint>> }>()

  constructor(private readonly admin: () => Admin) {}

  read(topic: string): Promise<Map<number, bigint>> {
    let state = this.topics.get(topic)
    if (!state) {
      state = {}
      this.topics.set(topic, state)
    }
    if (state.next) return state.next
    if (!state.inFlight) return this.start(topic, state)
    const current = state.inFlight
    const next = current.then(
      () => undefined,
      () => undefined,
    ).then(() => {
      if (state.next === next) state.next = undefined
      return this.start(topic, state)
    })
    state.next = next
    return next
  }

  private start(topic: string, state: { inFlight?: Promise<Map<number, bigint>> }): Promise<Map<number, bigint>> {
    const request = this.admin()
      .fetchTopicOffsets(topic)
      .then((offsets) => new Map(offsets.map(({ partition, high }) => [partition, BigInt(high)])))
    state.inFlight = request
    const clear = (): void => {
      if (state.inFlight === request) state.inFlight = undefined
    }
    request.then(clear, clear)
    return request
  }
}

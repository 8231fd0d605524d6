// Handler module for the CLI tests: appends one JSON line per call to the file named by
// RETRY_FIXTURE_CALLS_FILE. Records whose value is "fail" throw an ordinary (transient) error.
import { appendFileSync } from 'node:fs'
import process from 'node:process'

export async function handler({ topic, partition, message }) {
  const file = process.env.RETRY_FIXTURE_CALLS_FILE
  if (!file) throw new Error('RETRY_FIXTURE_CALLS_FILE is not set')
  const id = message.headers?.['detour-id']?.toString()
  appendFileSync(file, `${JSON.stringify({ topic, partition, offset: message.offset, id, value: message.value?.toString() })}\n`)
  if (message.value?.toString() === 'fail') throw new Error('fixture failure')
}

export function classify(error) {
  return error instanceof Error && error.message === 'fixture failure' ? 'transient' : undefined
}

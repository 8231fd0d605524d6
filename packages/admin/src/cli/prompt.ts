import { createInterface } from 'node:readline/promises'

/** Asks a yes/no question on the terminal; `undefined` when there is no terminal to ask on. */
export type Confirm = (question: string) => Promise<boolean | undefined>

/** Asks on stdin/stderr when both are terminals (stdout may be piped to a file). */
export const terminalConfirm: Confirm = async (question) => {
  if (!process.stdin.isTTY) return undefined
  const rl = createInterface({ input: process.stdin, output: process.stderr })
  try {
    const answer = await rl.question(`${question} [y/N] `)
    return /^y(es)?$/i.test(answer.trim())
  } finally {
    rl.close()
  }
}

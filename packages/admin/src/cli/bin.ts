#!/usr/bin/env node
import { hideBin } from 'yargs/helpers'
import { runCli } from './cli.js'

const code = await runCli(hideBin(process.argv))
process.exitCode = code
// Sockets kafkajs leaves behind must not keep a finished command alive.
setTimeout(() => process.exit(code), 2000).unref()

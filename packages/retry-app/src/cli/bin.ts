#!/usr/bin/env node
import { hideBin } from 'yargs/helpers'
import { runCli } from './cli.js'

const code = await runCli(hideBin(process.argv))
process.exitCode = code
// Abandoned handlers or sockets must not keep a stopped worker alive.
setTimeout(() => process.exit(code), 2000).unref()

#!/usr/bin/env node
import { main } from './program'

/** Bound on the wait for open handles to close after a command finished (then the process exits anyway). */
const EXIT_GRACE_MS = 2000

// A reader that went away (`srpc stream … | head -1`) is not a failure worth a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0)
  process.stderr.write(`srpc: cannot write to stdout: ${err.message}\n`)
  process.exit(1)
})

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code
  // Everything was closed; if something still holds the loop, do not hang the user's shell.
  setTimeout(() => process.exit(code), EXIT_GRACE_MS).unref()
})

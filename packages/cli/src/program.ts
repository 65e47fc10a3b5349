import { RpcError } from '@srpc/protocol'
import { Command, CommanderError } from 'commander'
import { version } from '../package.json'
import { benchCommand } from './commands/bench'
import { callCommand } from './commands/call'
import { certsCommand } from './commands/certs'
import { healthCommand } from './commands/health'
import { listCommand } from './commands/list'
import { pingCommand } from './commands/ping'
import { sessionCommand } from './commands/session'
import { streamCommand } from './commands/stream'
import { ENV_ADDRESS, ENV_CA, ENV_CERT, ENV_CERT_DIR, ENV_KEY } from './connection'
import { CliError, describeError, UsageError } from './errors'
import {
  EXIT_FAILURE,
  EXIT_INTERRUPTED,
  EXIT_NOT_SERVING,
  EXIT_OK,
  EXIT_PARTIAL,
  EXIT_USAGE,
  exitCodeOf,
  RPC_EXIT_CODES,
} from './exit-codes'
import { type Io, processIo } from './io'
import { NotJsonError } from './output'

export const VERSION: string = version

const FOOTER = `
Examples:
  $ srpc call 127.0.0.1:8443 /echo -d '{"hello":"world"}' --cert-dir .srpc-certs
  $ SRPC_ADDRESS=127.0.0.1:8443 SRPC_CERT_DIR=.srpc-certs srpc list

Environment:
  ${ENV_ADDRESS}    server host:port when ADDR is left out
  ${ENV_CERT_DIR}   certificate set folder (--cert-dir)
  ${ENV_CA}         CA certificate file (--ca)
  ${ENV_CERT}       client certificate file (--cert), with ${ENV_KEY} (--key)
  Options given on the command line win over the environment.

Exit codes:
  ${EXIT_OK}    success
  ${EXIT_FAILURE}    local failure (a file, a certificate set)
  ${EXIT_USAGE}    usage error
  ${EXIT_NOT_SERVING}    health: NOT_SERVING
  ${EXIT_PARTIAL}    bench or ping: some calls or pings failed
  ${Object.entries(RPC_EXIT_CODES)
    .map(([code, exit]) => `${exit}   ${code}`)
    .join('\n  ')}
  ${EXIT_INTERRUPTED}  interrupted (Ctrl-C)
`

/** The `srpc` program with every command; output goes to `io`. */
export function createProgram(io: Io): Command {
  const program = new Command('srpc')
    .description('srpc on the command line: call, stream, session, list, health, ping, bench, certs')
    .version(VERSION, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help (every command has its own, with examples)')
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .exitOverride()
    .showSuggestionAfterError()
    .addHelpText('after', FOOTER)
  const commands = [
    callCommand(io),
    streamCommand(io),
    sessionCommand(io),
    listCommand(io),
    healthCommand(io),
    pingCommand(io),
    benchCommand(io),
    certsCommand(io),
  ]
  for (const command of commands) {
    program.addCommand(command)
    inherit(command, program)
  }
  return program
}

/** Settings `.command()` would copy (output, exit override), for commands built apart; usage after errors. */
function inherit(command: Command, parent: Command): void {
  command.copyInheritedSettings(parent)
  command.showHelpAfterError(`\n${usageOf(command)}`)
  for (const sub of command.commands) inherit(sub, command)
}

function usageOf(command: Command): string {
  const names: string[] = []
  for (let c: Command | null = command; c !== null; c = c.parent) names.unshift(c.name())
  const path = names.join(' ')
  return `Usage: ${path} ${command.usage()}\nRun \`${path} --help\` for every option and examples.`
}

/**
 * Runs `srpc` with `argv` (the arguments after the program name) and resolves with the exit
 * code; errors are reported on `io.stderr`, never thrown.
 */
export async function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  const program = createProgram(io)
  try {
    await program.parseAsync([...argv], { from: 'user' })
    return io.exitCode ?? EXIT_OK
  } catch (err) {
    return report(err, io)
  }
}

const TLS_HINT =
  'hint: --ca FILE (or --cert-dir DIR) names the CA that signed the server certificate; a server that wants a client certificate needs --cert FILE --key FILE (or --cert-dir DIR)'

function report(err: unknown, io: Io): number {
  const say = (text: string) => io.stderr.write(`${text}\n`)
  if (err instanceof CommanderError) {
    // --help and --version end here with 0; a usage mistake was already printed by commander.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return EXIT_OK
    return EXIT_USAGE
  }
  if (err instanceof UsageError) {
    const command = err.command
    say(`error: ${err.message}`)
    if (command) say(`\n${usageOf(command)}`)
    return EXIT_USAGE
  }
  if (err instanceof CliError || err instanceof NotJsonError) {
    say(`srpc: error: ${err.message}`)
    return EXIT_FAILURE
  }
  if (RpcError.is(err)) {
    say(`srpc: ${err.code}: ${describeError(err)}`)
    if (err.code === 'UNAUTHENTICATED') say(TLS_HINT)
    return exitCodeOf(err)
  }
  // Not a user mistake: a bug or an unexpected failure. The stack helps whoever reports it.
  say(`srpc: unexpected error: ${describeError(err)}`)
  if (io.env.SRPC_DEBUG) say(err instanceof Error ? (err.stack ?? '') : String(err))
  else say('(set SRPC_DEBUG=1 to see where it happened)')
  return EXIT_FAILURE
}

import { createInterface } from 'node:readline'
import type { ClientSession } from '@srpc/client'
import { Command } from 'commander'
import { act, connectForRoute, examples, optionalTimeout, routeTarget } from '../command-kit'
import { addConnectionOptions, type ConnectionFlags } from '../connection'
import { parseDuration } from '../duration'
import { UsageError } from '../errors'
import { EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK } from '../exit-codes'
import { type Io, interruptSignal, warnTo, write } from '../io'
import { formatMessage, parseOutputMode } from '../output'
import { checkKind, decodeOutput, encodeInput } from '../reflection'
import { addOutputOption, outputFor } from './call'

/** After stdin ends, how long the server gets to end its half before the session is cancelled. */
export const DEFAULT_CLOSE_TIMEOUT = '5s'

interface SessionFlags extends ConnectionFlags {
  timeout?: string
  closeTimeout: string
  output: string
  reflect?: boolean
}

export function sessionCommand(io: Io): Command {
  const command = new Command('session')
    .description(
      'open a bidirectional session: each stdin line is sent as a message, each message received is printed; end of input (Ctrl-D) closes our half',
    )
    .argument('[ADDR]', 'server host:port (default: $SRPC_ADDRESS)')
    .argument('[ROUTE]', 'route of the session, such as /chat')
    .option('--timeout <duration>', 'deadline of the whole session (default: none)')
    .option(
      '--close-timeout <duration>',
      'after end of input, how long the server may keep talking before the session is cancelled',
      DEFAULT_CLOSE_TIMEOUT,
    )
  addOutputOption(command)
  command.option('--no-reflect', 'do not ask the server reflection for the route codec and kind')
  addConnectionOptions(command)
  examples(command, [
    'srpc session 127.0.0.1:8443 /chat --cert-dir .srpc-certs',
    `printf '%s\\n' '{"text":"hi"}' '{"text":"bye"}' | srpc session 127.0.0.1:8443 /chat`,
  ])
  return command.action(
    act(io, async (first: string | undefined, second: string | undefined, flags: SessionFlags) => {
      const target = routeTarget(first, second, flags, io)
      const output = parseOutputMode(flags.output)
      const timeout = optionalTimeout(flags.timeout)
      const closeTimeout = parseDuration('--close-timeout', flags.closeTimeout, 3_600_000)
      const warn = warnTo(io)
      const { pool, info } = await connectForRoute(target, flags, command, io)
      const interrupt = interruptSignal()
      try {
        checkKind(info, 'session', 'session')
        const mode = outputFor(output, info?.codec)
        const session = await pool.createBidirectionalSession(target.route, {
          timeout,
          metadata: target.metadata,
          signal: interrupt.signal,
          closeTimeout,
        })
        if (io.stdin.isTTY)
          warn(`session open on ${target.route}: type a message per line, Ctrl-D to end, Ctrl-C to cancel`)
        const warnOnce = once(warn)
        const rejected = await converse(
          session,
          io,
          mode,
          (message) => decodeOutput(info, message, mode),
          (line, n) => {
            try {
              return encodeInput(info, Buffer.from(line, 'utf8'), `line ${n}`, warnOnce)
            } catch (err) {
              if (!(err instanceof UsageError)) throw err
              warn(`${err.message}: not sent`)
              return undefined
            }
          },
        )
        return rejected > 0 ? EXIT_FAILURE : EXIT_OK
      } catch (err) {
        if (interrupt.interrupted()) {
          warn('session cancelled (Ctrl-C)')
          return EXIT_INTERRUPTED
        }
        throw err
      } finally {
        interrupt.dispose()
        await pool.close({ timeout: 1000 })
      }
    }),
  )
}

/**
 * Sends stdin's lines and prints the server's messages at the same time. Ends when the server
 * ended its half and we ended ours (stdin's end, or the server's end first: nobody would read
 * what we still type). Returns how many lines were not sent; throws the session's error.
 */
async function converse(
  session: ClientSession,
  io: Io,
  mode: ReturnType<typeof parseOutputMode>,
  decode: (message: Uint8Array) => Uint8Array,
  encode: (line: string, n: number) => Buffer | undefined,
): Promise<number> {
  const lines = createInterface({ input: io.stdin, terminal: false, crlfDelay: Number.POSITIVE_INFINITY })
  const printing = (async () => {
    try {
      for await (const message of session) await write(io.stdout, formatMessage(decode(message), mode, true))
    } finally {
      // The server is done talking (or the session failed): stop reading what the user types.
      lines.close()
    }
  })()
  // Kept from failing unobserved while the send loop below is still running.
  printing.catch(() => {})
  let rejected = 0
  let n = 0
  try {
    for await (const line of lines) {
      n++
      const bytes = encode(line, n)
      if (bytes === undefined) {
        rejected++
        continue
      }
      if (session.ended) break
      await session.send(bytes)
    }
  } finally {
    lines.close()
  }
  if (!session.ended) await session.close()
  await printing
  return rejected
}

function once(warn: (line: string) => void): (line: string) => void {
  let said = false
  return (line) => {
    if (said) return
    said = true
    warn(line)
  }
}

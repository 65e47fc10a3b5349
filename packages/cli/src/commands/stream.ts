import { Command } from 'commander'
import { act, connectForRoute, examples, optionalTimeout, routeTarget } from '../command-kit'
import { addConnectionOptions, type ConnectionFlags } from '../connection'
import { EXIT_INTERRUPTED, EXIT_OK } from '../exit-codes'
import { type Io, interruptSignal, warnTo, write } from '../io'
import { formatMessage, parseOutputMode } from '../output'
import { readPayload } from '../payload'
import { checkKind, decodeOutput, encodeInput } from '../reflection'
import { addOutputOption, outputFor } from './call'

interface StreamFlags extends ConnectionFlags {
  data?: string
  timeout?: string
  output: string
  reflect?: boolean
}

export function streamCommand(io: Io): Command {
  const command = new Command('stream')
    .description('open a server stream and print each chunk as it arrives, one per line; Ctrl-C cancels it')
    .argument('[ADDR]', 'server host:port (default: $SRPC_ADDRESS)')
    .argument('[ROUTE]', 'route of the stream, such as /stream/time')
    .option('-d, --data <payload>', 'request payload: text or JSON, @file for a file, - for stdin')
    .option('--timeout <duration>', 'deadline of the whole stream (default: none, until it ends or Ctrl-C)')
  addOutputOption(command)
  command.option('--no-reflect', 'do not ask the server reflection for the route codec and kind')
  addConnectionOptions(command)
  examples(command, [
    'srpc stream 127.0.0.1:8443 /stream/time --cert-dir .srpc-certs',
    `srpc stream 127.0.0.1:8443 /prices -d '{"symbol":"ACME"}' --output json | jq .price`,
  ])
  return command.action(
    act(io, async (first: string | undefined, second: string | undefined, flags: StreamFlags) => {
      const target = routeTarget(first, second, flags, io)
      const output = parseOutputMode(flags.output)
      const timeout = optionalTimeout(flags.timeout)
      const payload = await readPayload(flags.data, io.stdin)
      const { pool, info } = await connectForRoute(target, flags, command, io)
      const interrupt = interruptSignal()
      try {
        checkKind(info, 'server-stream', 'stream')
        const request = encodeInput(info, payload, 'the -d payload', warnTo(io))
        const mode = outputFor(output, info?.codec)
        const stream = pool.callStream(target.route, request, {
          timeout,
          metadata: target.metadata,
          signal: interrupt.signal,
        })
        for await (const chunk of stream)
          await write(io.stdout, formatMessage(decodeOutput(info, chunk, mode), mode, true))
        return EXIT_OK
      } catch (err) {
        // Ctrl-C cancelled the stream on the server; that is how a user ends one, not a failure to report.
        if (interrupt.interrupted()) {
          warnTo(io)('stream cancelled (Ctrl-C)')
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

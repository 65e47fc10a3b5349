import { Command, Option } from 'commander'
import { act, connectForRoute, examples, optionalTimeout, routeTarget } from '../command-kit'
import { addConnectionOptions, type ConnectionFlags } from '../connection'
import { EXIT_OK } from '../exit-codes'
import { type Io, warnTo, write } from '../io'
import { formatMessage, OUTPUT_MODES, type OutputMode, parseOutputMode } from '../output'
import { readPayload } from '../payload'
import { checkKind, decodeOutput, encodeInput } from '../reflection'

/** A request-response call waits this long unless --timeout says otherwise. */
export const DEFAULT_CALL_TIMEOUT = '30s'

interface CallFlags extends ConnectionFlags {
  data?: string
  timeout?: string
  output: string
  reflect?: boolean
}

export function callCommand(io: Io): Command {
  const command = new Command('call')
    .description('make one request-response call and print the reply')
    .argument('[ADDR]', 'server host:port (default: $SRPC_ADDRESS)')
    .argument('[ROUTE]', 'route to call, such as /echo')
    .option('-d, --data <payload>', 'request payload: text or JSON, @file for a file, - for stdin')
    .option('--timeout <duration>', 'deadline of the call, told to the server too', DEFAULT_CALL_TIMEOUT)
  addOutputOption(command)
  command.option('--no-reflect', 'do not ask the server reflection for the route codec and kind')
  addConnectionOptions(command)
  examples(command, [
    `srpc call 127.0.0.1:8443 /echo -d '{"name":"Ada"}' --cert-dir .srpc-certs`,
    'SRPC_ADDRESS=127.0.0.1:8443 srpc call /echo -d @request.json --output raw > reply.bin',
    `srpc call 127.0.0.1:8443 /users/get -H authorization='Bearer abc' -d '{"id":7}' --ca ca.pem`,
  ])
  return command.action(
    act(io, async (first: string | undefined, second: string | undefined, flags: CallFlags) => {
      const target = routeTarget(first, second, flags, io)
      const output = parseOutputMode(flags.output)
      const timeout = optionalTimeout(flags.timeout)
      const payload = await readPayload(flags.data, io.stdin)
      const { pool, info } = await connectForRoute(target, flags, command, io)
      try {
        checkKind(info, 'unary', 'call')
        const request = encodeInput(info, payload, 'the -d payload', warnTo(io))
        const reply = await pool.call(target.route, request, { timeout, metadata: target.metadata })
        await write(
          io.stdout,
          formatMessage(decodeOutput(info, reply, output), outputFor(output, info?.codec), false),
        )
        return EXIT_OK
      } finally {
        await pool.close({ timeout: 1000 })
      }
    }),
  )
}

export function addOutputOption(command: Command): Command {
  return command.addOption(
    new Option('-o, --output <mode>', 'how replies are printed').choices(OUTPUT_MODES).default('auto'),
  )
}

/** A codec the CLI cannot decode (protobuf, one of a user's own) prints as hex unless the user chose a mode. */
export function outputFor(mode: OutputMode, codec: string | undefined): OutputMode {
  if (mode !== 'auto' || codec === undefined || ['json', 'bytes', 'msgpack'].includes(codec)) return mode
  return 'hex'
}

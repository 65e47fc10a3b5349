import { RpcError } from '@srpc/client'
import { Code } from '@srpc/protocol'
import { Command } from 'commander'
import { act, examples } from '../command-kit'
import {
  addConnectionOptions,
  addressAndRoute,
  type ConnectionFlags,
  openPool,
  parseMetadata,
} from '../connection'
import { MAX_TIMEOUT, parseDuration } from '../duration'
import { EXIT_INTERRUPTED, EXIT_NOT_SERVING, EXIT_OK } from '../exit-codes'
import { type Io, interruptSignal, warnTo, write } from '../io'
import { parseJson } from '../output'

/** The health routes every srpc server serves (as grpc.health.v1's Check and Watch). */
export const HEALTH_CHECK_ROUTE = '/srpc.health/check'
export const HEALTH_WATCH_ROUTE = '/srpc.health/watch'

interface HealthFlags extends ConnectionFlags {
  watch?: boolean
  json?: boolean
  timeout: string
}

export function healthCommand(io: Io): Command {
  const command = new Command('health')
    .description(
      'ask the health service whether the server (or SERVICE) takes calls; exit 0 when SERVING, 3 when not',
    )
    .argument('[ADDR]', 'server host:port (default: $SRPC_ADDRESS)')
    .argument('[SERVICE]', 'service name as the server set it (default: "", the whole server)')
    .option(
      '-w, --watch',
      'follow the status: print it now and at each change, until the server ends or Ctrl-C',
    )
    .option('--json', 'print the answers as JSON lines ({"status":"SERVING"})')
    .option('--timeout <duration>', 'deadline of the check (not of --watch)', '10s')
  addConnectionOptions(command)
  examples(command, [
    'srpc health 127.0.0.1:8443 --cert-dir .srpc-certs',
    'srpc health 127.0.0.1:8443 payments --watch',
    'until srpc health 127.0.0.1:8443 2>/dev/null; do sleep 1; done   # wait for a server to come up',
  ])
  return command.action(
    act(io, async (first: string | undefined, second: string | undefined, flags: HealthFlags) => {
      // ADDR may come from SRPC_ADDRESS: then the one argument given is the service.
      let addressArg = first
      let service = second
      if (second === undefined && first !== undefined && io.env.SRPC_ADDRESS && !/:\d+$/.test(first)) {
        addressArg = undefined
        service = first
      }
      const { address } = addressAndRoute(addressArg, undefined, io.env, false)
      const timeout = parseDuration('--timeout', flags.timeout, MAX_TIMEOUT)
      const request = JSON.stringify({ service: service ?? '' })
      const metadata = parseMetadata(flags.header)
      const pool = await openPool(address, flags, command, warnTo(io))
      const show = (status: string) =>
        write(io.stdout, flags.json ? `${JSON.stringify({ status })}\n` : `${status}\n`)
      try {
        if (!flags.watch) {
          const status = statusOf(
            await pool
              .call(HEALTH_CHECK_ROUTE, request, { timeout, metadata })
              .catch(unknownService(service)),
          )
          await show(status)
          return status === 'SERVING' ? EXIT_OK : EXIT_NOT_SERVING
        }
        const interrupt = interruptSignal()
        let last: string | undefined
        try {
          for await (const chunk of pool.callStream(HEALTH_WATCH_ROUTE, request, {
            metadata,
            signal: interrupt.signal,
          })) {
            last = statusOf(chunk)
            await show(last)
          }
        } catch (err) {
          if (interrupt.interrupted()) return EXIT_INTERRUPTED
          throw err
        } finally {
          interrupt.dispose()
        }
        // The server ended the watch (it shuts down, and says NOT_SERVING last).
        return last === 'SERVING' ? EXIT_OK : EXIT_NOT_SERVING
      } finally {
        await pool.close({ timeout: 1000 })
      }
    }),
  )
}

/** The status in a health answer (`{"status":"SERVING"}`); DATA_LOSS for anything else. */
export function statusOf(reply: Uint8Array): string {
  const status = (parseJson(reply)?.value as { status?: unknown } | undefined)?.status
  if (typeof status !== 'string') {
    throw new RpcError(Code.DATA_LOSS, `the health service answered something that is not {"status":…}`)
  }
  return status
}

function unknownService(service: string | undefined) {
  return (err: unknown): never => {
    if (RpcError.is(err, Code.NOT_FOUND) && service) {
      // The cause says which: a service never set, or no health service at all.
      throw new RpcError(Code.NOT_FOUND, `health of ${JSON.stringify(service)}`, { cause: err })
    }
    if (RpcError.is(err, Code.NOT_FOUND)) {
      throw new RpcError(Code.NOT_FOUND, `the server has no health service (${HEALTH_CHECK_ROUTE})`, {
        cause: err,
      })
    }
    throw err
  }
}

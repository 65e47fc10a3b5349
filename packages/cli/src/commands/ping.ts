import { setTimeout as sleep } from 'node:timers/promises'
import { Code } from '@srpc/protocol'
import { Command } from 'commander'
import { act, examples } from '../command-kit'
import { addConnectionOptions, addressAndRoute, type ConnectionFlags, openPool } from '../connection'
import { parseCount, parseDuration } from '../duration'
import { EXIT_OK, EXIT_PARTIAL, RPC_EXIT_CODES } from '../exit-codes'
import { type Io, interruptSignal, warnTo, write } from '../io'

export const MAX_PINGS = 100_000

interface PingFlags extends ConnectionFlags {
  count: string
  interval: string
  timeout: string
}

export function pingCommand(io: Io): Command {
  const command = new Command('ping')
    .description('measure round trips over the connection keepalive PING, like ping(8)')
    .argument('[ADDR]', 'server host:port (default: $SRPC_ADDRESS)')
    .option('-c, --count <n>', `pings to send (1 to ${MAX_PINGS})`, '4')
    .option('-i, --interval <duration>', 'wait between two pings', '1s')
    .option('--timeout <duration>', 'how long one ping may take before it counts as lost', '5s')
  addConnectionOptions(command, { metadata: false })
  examples(command, [
    'srpc ping 127.0.0.1:8443 --cert-dir .srpc-certs',
    'srpc ping 127.0.0.1:8443 -c 100 -i 10ms',
  ])
  return command.action(
    act(io, async (first: string | undefined, flags: PingFlags) => {
      const { address } = addressAndRoute(first, undefined, io.env, false)
      const count = parseCount('--count', flags.count, 1, MAX_PINGS)
      const interval = parseDuration('--interval', flags.interval, 3_600_000)
      const timeout = parseDuration('--timeout', flags.timeout, 3_600_000)
      const pool = await openPool(address, flags, command, warnTo(io), { keepalive: false })
      const interrupt = interruptSignal()
      const rtts: number[] = []
      let sent = 0
      try {
        const started = performance.now()
        await pool.connect()
        const connected = performance.now() - started
        await write(
          io.stdout,
          `PING ${address} over srpc keepalive: connected (TCP + TLS) in ${ms(connected)} ms\n`,
        )
        for (let seq = 1; seq <= count && !interrupt.interrupted(); seq++) {
          if (seq > 1) await sleep(interval, undefined, { signal: interrupt.signal }).catch(() => {})
          if (interrupt.interrupted()) break
          sent++
          const [rtt] = await pool.ping({ timeout })
          if (rtt === undefined || Number.isNaN(rtt)) {
            await write(
              io.stdout,
              `no reply from ${address}: seq=${seq} (lost after ${timeout} ms or disconnected)\n`,
            )
          } else {
            rtts.push(rtt)
            await write(io.stdout, `reply from ${address}: seq=${seq} time=${ms(rtt)} ms\n`)
          }
        }
      } finally {
        interrupt.dispose()
        await pool.close({ timeout: 1000 })
      }
      const lost = sent - rtts.length
      const lines = [
        '',
        `--- ${address} ping statistics ---`,
        `${sent} sent, ${rtts.length} received, ${sent === 0 ? 0 : Math.round((lost / sent) * 100)}% lost`,
      ]
      if (rtts.length > 0) {
        const avg = rtts.reduce((a, b) => a + b, 0) / rtts.length
        const min = rtts.reduce((a, b) => Math.min(a, b))
        const max = rtts.reduce((a, b) => Math.max(a, b))
        lines.push(`rtt min/avg/max = ${ms(min)}/${ms(avg)}/${ms(max)} ms`)
      }
      await write(io.stdout, `${lines.join('\n')}\n`)
      if (sent > 0 && rtts.length === 0) {
        warnTo(io)(`${address} answered no ping`)
        return RPC_EXIT_CODES[Code.UNAVAILABLE]
      }
      return lost > 0 ? EXIT_PARTIAL : EXIT_OK
    }),
  )
}

function ms(value: number): string {
  return value.toFixed(3)
}

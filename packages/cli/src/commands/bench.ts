import { Code } from '@srpc/protocol'
import { SingleBar } from 'cli-progress'
import { Command } from 'commander'
import { formatReport, reportOf } from '../bench/report'
import { type BenchProgress, runBench } from '../bench/run'
import { act, examples, REFLECTION_TIMEOUT, routeTarget } from '../command-kit'
import { addConnectionOptions, type ConnectionFlags, openPool } from '../connection'
import { MAX_TIMEOUT, parseCount, parseDuration } from '../duration'
import { EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL, RPC_EXIT_CODES } from '../exit-codes'
import { type Io, interruptSignal, warnTo, write } from '../io'
import { readPayload } from '../payload'
import { checkKind, describeRoute, encodeInput } from '../reflection'

/** Calls made when neither -n nor -z is given (as ghz). */
export const DEFAULT_BENCH_TOTAL = 200
export const MAX_BENCH_TOTAL = 10_000_000
export const MAX_BENCH_DURATION = 3_600_000
export const MAX_CONCURRENCY = 10_000
export const MAX_CONNECTIONS = 1000

interface BenchFlags extends ConnectionFlags {
  data?: string
  concurrency: string
  total?: string
  duration?: string
  connections: string
  timeout: string
  json?: boolean
  progress?: boolean
  reflect?: boolean
}

export function benchCommand(io: Io): Command {
  const command = new Command('bench')
    .description('load a request-response route, like ghz: calls/s, latency percentiles and a histogram')
    .argument('[ADDR]', 'server host:port (default: $SRPC_ADDRESS)')
    .argument('[ROUTE]', 'request-response route to call, such as /echo')
    .option('-d, --data <payload>', 'payload of every call: text or JSON, @file for a file, - for stdin')
    .option('-c, --concurrency <n>', `calls in flight at once (1 to ${MAX_CONCURRENCY})`, '50')
    .option('-n, --total <n>', `calls to make (default ${DEFAULT_BENCH_TOTAL} unless -z is given)`)
    .option('-z, --duration <duration>', 'run for this long (with -n: whichever comes first; at most 1h)')
    .option('--connections <n>', `connections to spread the calls over (1 to ${MAX_CONNECTIONS})`, '1')
    .option('--timeout <duration>', 'deadline of each call', '20s')
    .option('--json', 'print the summary as JSON (for scripts and CI)')
    .option('--no-progress', 'no progress bar, even on a terminal')
    .option('--no-reflect', 'do not ask the server reflection for the route codec and kind')
  addConnectionOptions(command)
  examples(command, [
    `srpc bench 127.0.0.1:8443 /echo -d '{"hello":"world"}' -c 50 -n 100000 --cert-dir .srpc-certs`,
    'srpc bench 127.0.0.1:8443 /echo -c 200 -z 30s --connections 4 --json > result.json',
  ])
  return command.action(
    act(io, async (first: string | undefined, second: string | undefined, flags: BenchFlags) => {
      const target = routeTarget(first, second, flags, io)
      const concurrency = parseCount('--concurrency', flags.concurrency, 1, MAX_CONCURRENCY)
      const connections = parseCount('--connections', flags.connections, 1, MAX_CONNECTIONS)
      const durationMs =
        flags.duration === undefined
          ? undefined
          : parseDuration('--duration', flags.duration, MAX_BENCH_DURATION)
      const total =
        flags.total !== undefined
          ? parseCount('--total', flags.total, 1, MAX_BENCH_TOTAL)
          : durationMs === undefined
            ? DEFAULT_BENCH_TOTAL
            : undefined
      const timeout = parseDuration('--timeout', flags.timeout, MAX_TIMEOUT)
      const payload = await readPayload(flags.data, io.stdin)
      const warn = warnTo(io)
      const pool = await openPool(target.address, flags, command, warn, {
        size: connections,
        maxQueued: concurrency + 1,
      })
      const interrupt = interruptSignal()
      let bar: SingleBar | undefined
      try {
        await pool.connect()
        const info =
          flags.reflect === false ? undefined : await describeRoute(pool, target.route, REFLECTION_TIMEOUT)
        checkKind(info, 'unary', 'bench')
        const request = encodeInput(info, payload, 'the -d payload', warn)
        const options = { timeout, metadata: target.metadata }
        if (flags.progress !== false && io.stderr.isTTY) bar = progressBar(io, total, durationMs)
        const result = await runBench(
          () => pool.call(target.route, request, options),
          { total, durationMs, concurrency },
          interrupt.signal,
          bar === undefined ? undefined : (state) => updateBar(bar!, state, total, durationMs),
        )
        bar?.stop()
        bar = undefined
        const report = reportOf(result, {
          address: target.address,
          route: target.route,
          concurrency,
          connections,
        })
        await write(io.stdout, flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report))
        if (result.stoppedBy === 'interrupt') return EXIT_INTERRUPTED
        if (result.ok === report.count) return EXIT_OK
        if (result.ok > 0) return EXIT_PARTIAL
        // Every call failed: exit as the most common failure would in `srpc call`.
        const [code] = Object.entries(result.errors).sort((a, b) => b[1] - a[1])[0]
        return RPC_EXIT_CODES[code as Code] ?? RPC_EXIT_CODES[Code.UNKNOWN]
      } finally {
        bar?.stop()
        interrupt.dispose()
        await pool.close({ timeout: 1000 })
      }
    }),
  )
}

/** A bar on stderr (stdout stays the summary's): by calls with -n, by time with -z alone. */
function progressBar(io: Io, total: number | undefined, durationMs: number | undefined): SingleBar {
  const bar = new SingleBar({
    stream: io.stderr as NodeJS.WritableStream,
    format: ' {bar} {percentage}% | {calls} calls | {rate} calls/s | {errors} errors',
    barCompleteChar: '█',
    barIncompleteChar: '░',
    hideCursor: true,
    clearOnComplete: true,
    fps: 10,
  })
  bar.start(total !== undefined && durationMs === undefined ? total : 1000, 0, {
    calls: 0,
    rate: '0',
    errors: 0,
  })
  return bar
}

function updateBar(
  bar: SingleBar,
  state: BenchProgress,
  total: number | undefined,
  durationMs: number | undefined,
): void {
  const elapsed = state.elapsedMs
  const rate = elapsed > 0 ? ((state.count / elapsed) * 1000).toFixed(0) : '0'
  const payload = { calls: state.count, rate, errors: state.errorCount }
  if (total !== undefined && durationMs === undefined) return bar.update(state.count, payload)
  // By time, or by whichever of count and time is further along.
  const byTime = durationMs === undefined ? 0 : elapsed / durationMs
  const byCount = total === undefined ? 0 : state.count / total
  bar.update(Math.min(1000, Math.round(Math.max(byTime, byCount) * 1000)), payload)
}

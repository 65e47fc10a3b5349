/**
 * Offload run: the latency of a light route while a CPU-heavy route on the same server runs on
 * the event loop, or on a @srpc/threads pool. One server process, one load process.
 *
 *   node apps/stress/dist/offload-bench.js [--duration S] [--heavy-ms MS] [--threads T]
 */
import { selfSigned } from '@srpc/tlsutil'
import { parseFlags } from './args'
import { HEADER, Load, row, ServerProcess } from './processes'
import { machine, table } from './stats'

const { values } = parseFlags(process.argv.slice(2), {
  duration: { min: 2, max: 300 },
  'heavy-ms': { min: 1, max: 1000 },
  threads: { min: 1, max: 64 },
  warmup: { min: 0, max: 60 },
})
const DURATION_MS = (values.duration ?? 10) * 1000
const WARMUP_MS = (values.warmup ?? 1) * 1000
const HEAVY_MS = values['heavy-ms'] ?? 20
const THREADS = values.threads ?? 1
const LIGHT_LOOPS = 8
const HEAVY_LOOPS = 2

async function main(): Promise<void> {
  console.log(`offload runs: ${machine()}`)
  console.log(
    `load: 1 client process; /light with ${LIGHT_LOOPS} calls in flight, and /heavy-* (${HEAVY_MS} ms of CPU each) ` +
      `with ${HEAVY_LOOPS} in flight; ${THREADS} thread(s); ${DURATION_MS / 1000} s per run (first ${WARMUP_MS / 1000} s not counted)\n`,
  )
  const { serverOptions, clientOptions } = await selfSigned(['127.0.0.1'])
  const rows: string[][] = []
  const runs: [string, string | undefined][] = [
    ['light alone', undefined],
    ['light + heavy on the event loop', '/heavy-inline'],
    ['light + heavy on threads', '/heavy-threads'],
  ]
  for (const [label, heavy] of runs) {
    const server = new ServerProcess('./offload-server.js', {
      SRPC_STRESS_KEY: String(serverOptions.key),
      SRPC_STRESS_CERT: String(serverOptions.cert),
      SRPC_STRESS_HEAVY_MS: String(HEAVY_MS),
      SRPC_STRESS_THREADS: String(THREADS),
    })
    const load = new Load()
    try {
      const ready = await server.next('ready')
      const routes = [{ route: '/light', concurrency: LIGHT_LOOPS }]
      if (heavy) routes.push({ route: heavy, concurrency: HEAVY_LOOPS })
      const { started, ended } = await load.run({
        address: `127.0.0.1:${ready.port}`,
        ca: String(clientOptions.ca),
        routes,
        durationMs: DURATION_MS,
        size: undefined,
        timeoutMs: 10_000,
      })
      const results = await load.window(started + WARMUP_MS, ended)
      for (const r of results) rows.push(row(`${label}: ${r.route}`, r))
    } finally {
      load.stop()
      await server.stop()
    }
  }
  console.log(table(HEADER, rows))
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})

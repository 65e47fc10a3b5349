/**
 * Cluster runs: calls/s and latency for 1 and 2 (or --workers-list) cluster workers under load
 * from a separate client process, then a rolling restart (SIGHUP to the primary) under steady
 * load, counting calls made and failed and the latency during the restart.
 *
 *   node apps/stress/dist/cluster-bench.js [--duration S] [--concurrency C] [--size N] [--max-workers W] [--cpu-ms MS]
 *
 * The rolling restart always calls /echo; with --size it uses a pool of that size, else the default pool.
 */
import { selfSigned } from '@srpc/tlsutil'
import { parseFlags } from './args'
import { freePort, HEADER, Load, row, ServerProcess } from './processes'
import { machine, sleep, table } from './stats'

const { values } = parseFlags(process.argv.slice(2), {
  duration: { min: 2, max: 300 },
  concurrency: { min: 1, max: 10_000 },
  size: { min: 1, max: 64 },
  'max-workers': { min: 1, max: 64 },
  warmup: { min: 0, max: 60 },
  'cpu-ms': { min: 0, max: 100, integer: false },
})
const DURATION_MS = (values.duration ?? 10) * 1000
const WARMUP_MS = (values.warmup ?? 2) * 1000
const CONCURRENCY = values.concurrency ?? 64
const SIZE = values.size ?? 4
const MAX_WORKERS = values['max-workers'] ?? 2
// With --cpu-ms, the throughput runs call /cpu (that many ms of CPU per call) instead of /echo.
const CPU_MS = values['cpu-ms']
const ROUTE = CPU_MS === undefined ? '/echo' : '/cpu'

async function main(): Promise<void> {
  console.log(`cluster runs: ${machine()}`)
  console.log(
    `load: 1 client process, ${CONCURRENCY} calls in flight on a Pool of ${SIZE} connections, ${CPU_MS === undefined ? '/echo 64 B' : `/cpu (${CPU_MS} ms of CPU per call)`}, ` +
      `${DURATION_MS / 1000} s per run (first ${WARMUP_MS / 1000} s not counted)\n`,
  )
  const { serverOptions, caCert } = await certificates()
  const rows: string[][] = []

  for (let workers = 1; workers <= MAX_WORKERS; workers++) {
    const port = await freePort()
    const primary = new ServerProcess('./cluster-server.js', {
      SRPC_STRESS_WORKERS: String(workers),
      SRPC_STRESS_CPU_MS: String(CPU_MS ?? 1),
      SRPC_STRESS_PORT: String(port),
      SRPC_STRESS_KEY: String(serverOptions.key),
      SRPC_STRESS_CERT: String(serverOptions.cert),
    })
    const load = new Load()
    try {
      await primary.next('ready')
      const { started, ended } = await load.run({
        address: `127.0.0.1:${port}`,
        ca: caCert,
        routes: [{ route: ROUTE, concurrency: CONCURRENCY }],
        durationMs: DURATION_MS,
        size: SIZE,
        timeoutMs: 10_000,
      })
      const [result] = await load.window(started + WARMUP_MS, ended)
      rows.push(row(`${workers} worker${workers > 1 ? 's' : ''}`, result))
      const from = primary.events.length
      primary.child.kill('SIGUSR2')
      const stats = (await primary.next('stats', 5000, from)) as unknown as {
        workers: { pid: number; calls: number }[]
      }
      console.log(
        `${workers} workers: calls per worker ${stats.workers.map((w) => `${w.pid}=${w.calls}`).join(', ')}`,
      )
    } finally {
      load.stop()
      await primary.stop()
    }
  }
  console.log(`\n${table(HEADER, rows)}\n`)

  // Rolling restart under steady load: the default pool (one connection) unless --size is given.
  const restartWorkers = Math.max(2, MAX_WORKERS)
  const port = await freePort()
  const primary = new ServerProcess('./cluster-server.js', {
    SRPC_STRESS_WORKERS: String(restartWorkers),
    SRPC_STRESS_PORT: String(port),
    SRPC_STRESS_KEY: String(serverOptions.key),
    SRPC_STRESS_CERT: String(serverOptions.cert),
  })
  const load = new Load()
  try {
    await primary.next('ready')
    const duration = Math.max(DURATION_MS, 12_000)
    const running = load.run({
      address: `127.0.0.1:${port}`,
      ca: caCert,
      routes: [{ route: '/echo', concurrency: CONCURRENCY }],
      durationMs: duration,
      size: values.size,
      timeoutMs: 10_000,
    })
    await sleep(duration / 3)
    const from = primary.events.length
    primary.child.kill('SIGHUP')
    const restarting = await primary.next('restarting', 5000, from)
    const restarted = await primary.next('restarted', 60_000, from)
    const { started, ended } = await running
    const [before] = await load.window(started + WARMUP_MS, restarting.at)
    const [during] = await load.window(restarting.at, restarted.at)
    const [after] = await load.window(restarted.at, ended)
    const [all] = await load.window(started, ended)
    const pool = values.size ? `Pool of ${values.size}` : 'default Pool (1 connection)'
    console.log(
      `rolling restart (SIGHUP) of ${restartWorkers} workers under load, ${pool}, ${CONCURRENCY} calls in flight; ` +
        `restart took ${((restarted.at - restarting.at) / 1000).toFixed(2)} s`,
    )
    console.log(
      `\n${table(HEADER, [row('before', before), row('during restart', during), row('after', after), row('whole run', all)])}\n`,
    )
    if (all.failed > 0) console.log('errors:', JSON.stringify(all.errors, null, 2))
    process.exitCode = all.failed === 0 ? 0 : 1
  } finally {
    load.stop()
    await primary.stop()
  }
}

async function certificates() {
  const { serverOptions, clientOptions } = await selfSigned(['127.0.0.1'])
  return { serverOptions, caCert: String(clientOptions.ca) }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})

/**
 * Scale test: N concurrent TLS connections to one srpc server process, opened at a set rate
 * from K client processes, then one `/ping` call per connection per second. Reports accept
 * rate, handshake time, call results and the server's memory per connection.
 *
 *   bash apps/stress/run.sh scale [--connections N] [--duration S] [--clients K] [--rate R] [--quick]
 *
 * Exit code 0 only when every connection was made and every call got its own payload back.
 */
import { selfSigned } from '@srpc/tlsutil'
import { type NumberFlag, parseFlags } from './args'
import { Worker } from './child'
import {
  LATENCY_WINDOW,
  type ScaleConnected,
  type ScaleLoadResult,
  type ServerListening,
  type ServerSample,
  type ServerStart,
} from './messages'
import {
  cpuPercent,
  formatTally,
  kib,
  LogHistogram,
  machine,
  mergeTally,
  mib,
  ms,
  openFileLimit,
  type ProcessSample,
  percentile,
  sleep,
  type Tally,
  table,
  totalResources,
} from './stats'

const USAGE = `usage: bash apps/stress/run.sh scale [--connections N] [--duration S] [--clients K] [--rate R] [--idle S] [--quick]

  --connections N  concurrent TLS connections (default 10000; --quick: 300)
  --duration S     seconds of load, one call per connection per second (default 60; --quick: 5)
  --clients K      client processes sharing the connections (default N/2500, at least 2, at most 8)
  --rate R         connection attempts started per second, all clients together (default 500; --quick: 300)
  --idle S         seconds the connections sit idle before the idle memory sample (default 5; --quick: 2)
  --quick          the short CI variant (300 connections x 5 s)`

const CALL_INTERVAL_MS = 1000
const CALL_TIMEOUT_MS = 10_000
const CONNECT_TIMEOUT_MS = 20_000
/** Open files the server needs beyond one per connection (Node, IPC, the listener, …). */
const FD_HEADROOM = 256
const CLOSE_WAIT_MS = 15_000
const AFTER_CLOSE_WAIT_MS = 3000
/** Connection attempts under way at once, all clients together. */
const MAX_PENDING = 128

type ClientSample = ProcessSample & { pools: number }

const FLAGS = {
  connections: { min: 1, max: 100_000 },
  duration: { min: 1, max: 3600 },
  clients: { min: 1, max: 32 },
  rate: { min: 1, max: 100_000 },
  idle: { min: 0, max: 600 },
} satisfies Record<string, NumberFlag>
type FlagName = keyof typeof FLAGS

const started = performance.now()
function log(message: string): void {
  console.log(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${message}`)
}

async function main(): Promise<number> {
  let flags: ReturnType<typeof parseFlags<FlagName>>
  try {
    flags = parseFlags(process.argv.slice(2), FLAGS)
  } catch (err) {
    console.error(`scale: ${(err as Error).message}\n\n${USAGE}`)
    return 2
  }
  if (flags.help) {
    console.log(USAGE)
    return 0
  }
  const quick = flags.quick
  const connections = flags.values.connections ?? (quick ? 300 : 10_000)
  const duration = flags.values.duration ?? (quick ? 5 : 60)
  const clients = Math.min(
    connections,
    flags.values.clients ?? Math.min(8, Math.max(2, Math.ceil(connections / 2500))),
  )
  const rate = flags.values.rate ?? (quick ? 300 : 500)
  const idleSeconds = flags.values.idle ?? (quick ? 2 : 5)

  // Every connection is a file descriptor in the server process: check before we start.
  const limit = openFileLimit()
  const needed = connections + FD_HEADROOM
  if (limit !== undefined && limit < needed) {
    console.error(
      `scale: ${connections} connections need at least ${needed} open files in the server process, but the limit is ${limit}.\n` +
        'Run through apps/stress/run.sh (it raises `ulimit -n` to the hard limit), raise the hard limit\n' +
        '(`ulimit -Hn`; e.g. docker run --ulimit nofile=65536:65536, or /etc/security/limits.conf), or pass a smaller --connections.',
    )
    return 2
  }

  const connectPhaseMs = (connections / rate) * 1000 + CONNECT_TIMEOUT_MS + 30_000
  const loadPhaseMs = duration * CALL_INTERVAL_MS + CALL_TIMEOUT_MS + 30_000
  const lifetimeMs = connectPhaseMs + loadPhaseMs + 2 * idleSeconds * 1000 + 120_000

  log(
    `scale: ${connections} connections from ${clients} client processes, ${rate} conn/s ramp, ` +
      `one call per connection per second for ${duration} s (open-file limit ${limit ?? 'unknown'})`,
  )
  log(machine())
  const tls = await selfSigned(['127.0.0.1'])
  const server = new Worker('server', 'server-main', { lifetimeMs, nodeArgs: ['--expose-gc'] })
  const workers = Array.from(
    { length: clients },
    (_, i) => new Worker(`client ${i}`, 'scale-client', { lifetimeMs, nodeArgs: ['--expose-gc'] }),
  )
  const all = [server, ...workers]
  // A hard stop for the whole run: whatever hangs, the children are killed by pid and we exit.
  const watchdog = setTimeout(() => {
    console.error(`scale: run exceeded ${Math.round(lifetimeMs / 1000)} s, killing workers`)
    for (const worker of all) worker.process.kill('SIGKILL')
    process.exit(1)
  }, lifetimeMs + 10_000)
  watchdog.unref()

  try {
    return await run({ server, workers, tls, connections, duration, rate, idleSeconds, connectPhaseMs })
  } finally {
    await server.request('stop', null, 10_000).catch(() => {})
    await Promise.all(all.map((w) => w.reap(5000)))
  }
}

interface RunPlan {
  server: Worker
  workers: Worker[]
  tls: { key: string; cert: string; ca: string }
  connections: number
  duration: number
  rate: number
  idleSeconds: number
  connectPhaseMs: number
}

async function run(plan: RunPlan): Promise<number> {
  const { server, workers, connections, duration } = plan
  const start: ServerStart = {
    key: plan.tls.key,
    cert: plan.tls.cert,
    maxConnections: Math.max(20_000, connections),
  }
  const { port } = await server.request<ServerListening>('start', start, 20_000)
  log(`server listening on 127.0.0.1:${port} (pid ${server.pid})`)

  const sampleServer = (collect: boolean) => server.request<ServerSample>('sample', { collect }, 30_000)
  const sampleClients = (collect: boolean) =>
    Promise.all(workers.map((w) => w.request<ClientSample>('sample', { collect }, 30_000)))
  const serverSamples: { phase: string; sample: ServerSample }[] = []
  const clientSamples: { phase: string; samples: ClientSample[] }[] = []
  const sampleAll = async (phase: string, collect: boolean) => {
    const [s, c] = await Promise.all([sampleServer(collect), sampleClients(collect)])
    serverSamples.push({ phase, sample: s })
    clientSamples.push({ phase, samples: c })
    return s
  }
  await sampleAll('before connections', true)

  // --- connect ---
  log(`opening ${connections} connections`)
  const shares = workers.map(
    (_, i) => Math.floor(connections / workers.length) + (i < connections % workers.length ? 1 : 0),
  )
  const connectResults = await Promise.all(
    workers.map((w, i) =>
      w.request<ScaleConnected>(
        'connect',
        {
          port,
          ca: plan.tls.ca,
          count: shares[i],
          rate: plan.rate / workers.length,
          // Bounded so that past the machine's capacity attempts wait here, not in the accept queue.
          maxPending: Math.max(8, Math.ceil(MAX_PENDING / workers.length)),
          connectTimeout: CONNECT_TIMEOUT_MS,
        },
        plan.connectPhaseMs,
      ),
    ),
  )
  const connected = connectResults.reduce((n, r) => n + r.connected, 0)
  const connectFailures: Tally = {}
  for (const r of connectResults) mergeTally(connectFailures, r.failures)
  const handshakes = connectResults.flatMap((r) => r.handshakeMs).sort((a, b) => a - b)
  log(`${connected} of ${connections} connected (failures: ${formatTally(connectFailures)})`)

  // Right at the end of the ramp (no forced GC): CPU spent on accepting and handshakes.
  await sampleAll('all connected', false)
  log(`idle for ${plan.idleSeconds} s`)
  await sleep(plan.idleSeconds * 1000)
  const idle = await sampleAll('connected, idle', true)
  log(`server: ${idle.connections} connections, RSS ${mib(idle.rss)}`)

  // --- load ---
  const startAt = Date.now() + 1000
  log(`load: ${connected} connections x ${duration} calls`)
  const loading = Promise.all(
    workers.map((w) =>
      w.request<ScaleLoadResult>(
        'load',
        { startAt, calls: duration, intervalMs: CALL_INTERVAL_MS, timeoutMs: CALL_TIMEOUT_MS },
        duration * CALL_INTERVAL_MS + CALL_TIMEOUT_MS + 60_000,
      ),
    ),
  )
  // Sample halfway through, without forcing a collection (that would stall the calls).
  const middle = sleep(startAt + (duration * CALL_INTERVAL_MS) / 2 - Date.now()).then(() =>
    sampleAll('load, middle', false),
  )
  // If the load fails, the error below is the one to report, not this sample's.
  middle.catch(() => {})
  const loadResults = await loading
  await middle
  await sampleAll('load, end', false)
  const loadElapsed = (Date.now() - startAt) / 1000
  // Idle again after carrying calls: per-call state and read/write buffers should be gone.
  await sleep(plan.idleSeconds * 1000)
  const idleAgain = await sampleAll('idle after load', true)

  // --- close ---
  await Promise.all(workers.map((w) => w.request('close', null, 30_000)))
  const closeBy = performance.now() + CLOSE_WAIT_MS
  let after = await sampleServer(false)
  while (after.connections > 0 && performance.now() < closeBy) {
    await sleep(250)
    after = await sampleServer(false)
  }
  // Closed connections linger in timers for a moment (close grace): let them go before sampling.
  await sleep(AFTER_CLOSE_WAIT_MS)
  await sampleAll('after close', true)

  // --- report ---
  const latency = new LogHistogram()
  const windows = Array.from({ length: Math.ceil(duration / LATENCY_WINDOW) }, () => new LogHistogram())
  const calls = { ok: 0, failed: 0, mismatched: 0, lateStarts: 0, disconnects: 0 }
  const callErrors: Tally = {}
  for (const r of loadResults) {
    latency.merge(r.latency)
    r.latencyByWindow.forEach((w, i) => {
      windows[i].merge(w)
    })
    calls.ok += r.ok
    calls.failed += r.failed
    calls.mismatched += r.mismatched
    calls.lateStarts += r.lateStarts
    calls.disconnects += r.disconnects
    mergeTally(callErrors, r.errors)
  }
  const final = serverSamples[serverSamples.length - 1].sample
  const acceptSeconds = final.acceptSpanMs / 1000
  const peakAccept = Math.max(0, ...final.acceptsPerSecond)
  const before = serverSamples[0].sample
  const per = (s: ServerSample, key: 'rss' | 'heapUsed' | 'external') =>
    connected > 0 ? kib((s[key] - before[key]) / connected) : 'n/a'
  const midSample = serverSamples.find((s) => s.phase === 'load, middle')!.sample
  const clientBefore = sumClients(clientSamples[0].samples)
  const clientIdle = sumClients(clientSamples.find((s) => s.phase === 'connected, idle')!.samples)

  console.log('')
  console.log(
    `== srpc scale: ${connections} connections, ${duration} s, ${workers.length} client processes ==`,
  )
  console.log(
    table(
      ['measure', 'value'],
      [
        ['connections made', `${connected} of ${connections}`],
        ['connect failures', formatTally(connectFailures)],
        ['ramp (target)', `${plan.rate} conn/s`],
        [
          'accept rate (server)',
          `${final.accepted} accepted in ${acceptSeconds.toFixed(1)} s = ${(final.accepted / Math.max(acceptSeconds, 0.001)).toFixed(0)} conn/s (busiest second: ${peakAccept})`,
        ],
        [
          'handshake (connect to ready)',
          `p50 ${ms(percentile(handshakes, 50))}, p99 ${ms(percentile(handshakes, 99))}, max ${ms(handshakes[handshakes.length - 1] ?? Number.NaN)}`,
        ],
        ['server TLS client errors', formatTally(final.clientErrors)],
        [
          'calls ok',
          `${calls.ok} of ${connected * duration} (${(calls.ok / loadElapsed).toFixed(0)} calls/s)`,
        ],
        ['calls failed', `${calls.failed} (${formatTally(callErrors)})`],
        ['replies not matching request', String(calls.mismatched)],
        [
          'call latency',
          `p50 ${ms(latency.percentile(50))}, p99 ${ms(latency.percentile(99))}, max ${ms(latency.max)}`,
        ],
        ['calls started >100 ms late', String(calls.lateStarts)],
        ['connections lost during load', String(calls.disconnects)],
        ['server handler errors', String(final.handlerErrors)],
      ],
    ),
  )
  console.log('')
  console.log(
    table(
      ['call slots', 'calls', 'p50', 'p99', 'max'],
      windows.map((w, i) => [
        `${i * LATENCY_WINDOW}-${Math.min(duration, (i + 1) * LATENCY_WINDOW)} s`,
        String(w.total),
        ms(w.percentile(50)),
        ms(w.percentile(99)),
        ms(w.max),
      ]),
    ),
  )
  console.log('')
  console.log('server process (RSS = resident memory; heap and external after a forced GC where marked *):')
  console.log(
    table(
      ['phase', 'connections', 'RSS', 'heap used', 'external', 'handles'],
      serverSamples.map(({ phase, sample }) => [
        phase + (phase.startsWith('load,') || phase === 'all connected' ? '' : ' *'),
        String(sample.connections),
        mib(sample.rss),
        mib(sample.heapUsed),
        mib(sample.external),
        String(totalResources(sample.resources)),
      ]),
    ),
  )
  console.log('')
  console.log(
    table(
      ['server memory per connection (sample - before) / N', 'RSS', 'heap used', 'external'],
      [
        ['idle, before any call', per(idle, 'rss'), per(idle, 'heapUsed'), per(idle, 'external')],
        [
          'idle, after the load',
          per(idleAgain, 'rss'),
          per(idleAgain, 'heapUsed'),
          per(idleAgain, 'external'),
        ],
        [
          'under load (middle of it)',
          per(midSample, 'rss'),
          per(midSample, 'heapUsed'),
          per(midSample, 'external'),
        ],
      ],
    ),
  )
  console.log('')
  for (const { phase, sample } of serverSamples) {
    console.log(`server handles, ${phase}: ${formatTally(sample.resources)}`)
  }
  console.log('')
  console.log(
    `client processes, all together: RSS ${mib(clientBefore.rss)} before, ${mib(clientIdle.rss)} with ${connected} idle connections ` +
      `(${connected > 0 ? kib((clientIdle.rss - clientBefore.rss) / connected) : 'n/a'} per connection)`,
  )

  const cpuLine = (from: string, to: string) => {
    const a = serverSamples.find((x) => x.phase === from)!.sample
    const b = serverSamples.find((x) => x.phase === to)!.sample
    const ca = clientSamples.find((x) => x.phase === from)!.samples
    const cb = clientSamples.find((x) => x.phase === to)!.samples
    const clientsCpu = ca.reduce((n, c, i) => n + cpuPercent(c, cb[i]), 0)
    return `server ${cpuPercent(a, b).toFixed(0)} %, clients together ${clientsCpu.toFixed(0)} %`
  }
  // Stalls over the whole load: the worst of the two windows (idle to middle, middle to end).
  const stalls = (pick: (s: ProcessSample) => number, agg: (a: number, b: number) => number) => {
    const window = (phase: string) => ({
      server: pick(serverSamples.find((x) => x.phase === phase)!.sample),
      clients: clientSamples.find((x) => x.phase === phase)!.samples.map(pick),
    })
    const [m, e] = [window('load, middle'), window('load, end')]
    return {
      server: agg(m.server, e.server),
      clients: Math.max(...m.clients.map((c, i) => agg(c, e.clients[i]))),
    }
  }
  const loop = stalls((s) => s.loopDelayMaxMs, Math.max)
  const gcMax = stalls((s) => s.gcMaxMs, Math.max)
  const gcTotal = stalls(
    (s) => s.gcMs,
    (a, b) => a + b,
  )
  console.log(
    `longest event-loop stall during the load: server ${ms(loop.server)}, worst client ${ms(loop.clients)}; ` +
      `GC during the load: server ${ms(gcTotal.server)} in all, longest pause ${ms(gcMax.server)} ` +
      `(worst client: longest pause ${ms(gcMax.clients)})`,
  )
  const rampCpuMs =
    serverSamples.find((x) => x.phase === 'all connected')!.sample.cpuMs - serverSamples[0].sample.cpuMs
  console.log(
    `CPU (100 % = one core) while connecting: ${cpuLine('before connections', 'all connected')} ` +
      `(server: ${connected > 0 ? ms(rampCpuMs / connected) : 'n/a'} of CPU per connection accepted)`,
  )
  console.log(`CPU (100 % = one core) during the load:  ${cpuLine('connected, idle', 'load, end')}`)
  console.log(`at the end: ${machine()}`)

  const problems: string[] = []
  if (connected < connections) problems.push(`${connections - connected} connections could not be made`)
  if (calls.failed > 0) problems.push(`${calls.failed} calls failed`)
  if (calls.mismatched > 0) problems.push(`${calls.mismatched} replies did not match their request`)
  if (calls.ok !== connected * duration)
    problems.push(`${calls.ok} calls ok, expected ${connected * duration}`)
  if (calls.disconnects > 0) problems.push(`${calls.disconnects} connections were lost during the load`)
  if (after.connections > 0)
    problems.push(`${after.connections} server connections still open after the clients closed`)
  console.log('')
  if (problems.length > 0) {
    console.log(`FAILED: ${problems.join('; ')}`)
    return 1
  }
  console.log('PASSED: every connection made, every call answered with its own payload')
  return 0
}

function sumClients(samples: ClientSample[]): { rss: number; heapUsed: number } {
  return samples.reduce((t, s) => ({ rss: t.rss + s.rss, heapUsed: t.heapUsed + s.heapUsed }), {
    rss: 0,
    heapUsed: 0,
  })
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (err) => {
    console.error('scale: failed:', err)
    process.exitCode = 1
  },
)

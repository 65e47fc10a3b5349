/**
 * Soak test: one srpc server process and a few client processes under steady mixed load for a
 * long time (unary calls, server streams and sessions opening and closing, short-lived
 * connections). Every chunk and session message carries a sequence number checked at the
 * receiver. Memory and handle counts of every process are sampled every 10 % of the run.
 *
 *   bash apps/stress/run.sh soak [--duration S] [--clients K] [--quick]
 *
 * Exit code 0 only when no message was lost, repeated or reordered, no call failed, and
 * memory and handles did not grow without bound.
 */
import { selfSigned } from '@srpc/tlsutil'
import { type NumberFlag, parseFlags } from './args'
import { Worker } from './child'
import type {
  ServerListening,
  ServerSample,
  ServerStart,
  SoakClientSample,
  SoakLoad,
  SoakResult,
} from './messages'
import {
  cpuPercent,
  formatTally,
  machine,
  mergeTally,
  mib,
  ms,
  type ProcessSample,
  sleep,
  type Tally,
  table,
  totalResources,
} from './stats'

/** Concurrent loops per kind of traffic in each client (each loop runs one operation at a time). */
const LOOPS = 4

const USAGE = `usage: bash apps/stress/run.sh soak [--duration S] [--clients K] [--unary-rate R] [--stream-rate R] [--session-rate R] [--churn R] [--quick]

  --duration S      seconds of load (default 600; --quick: 20)
  --clients K       client processes (default 2)
  --unary-rate R    unary calls per second per client (default 200)
  --stream-rate R   server streams (1-400 chunks) opened per second per client (default 20)
  --session-rate R  sessions (1-100 messages each way) opened per second per client (default 20)
  --churn R         short-lived connections (open, one call, close) per second per client (default 2)
  --quick           the short CI variant (20 s)

Rates are targets: each kind of traffic runs in ${LOOPS} loops doing one operation at a time, so an
overloaded machine runs less traffic rather than piling it up.`

const POOL_SIZE = 4
const CALL_TIMEOUT_MS = 10_000
/** Samples are taken every tenth of the run; the load runs this much longer so the last one sees it. */
const TAIL_MS = 1500
const SAMPLES = 10
const CLOSE_WAIT_MS = 10_000
/** Socket handle types: none may be left on the server once every client has gone. */
const SOCKET_HANDLES = ['TLSSocketWrap', 'TCPSocketWrap']

const FLAGS = {
  duration: { min: 2, max: 24 * 3600 },
  clients: { min: 1, max: 8 },
  'unary-rate': { min: 0, max: 100_000 },
  'stream-rate': { min: 0, max: 10_000, integer: false },
  'session-rate': { min: 0, max: 10_000, integer: false },
  churn: { min: 0, max: 1000, integer: false },
} satisfies Record<string, NumberFlag>
type FlagName = keyof typeof FLAGS

const started = performance.now()
function log(message: string): void {
  console.log(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${message}`)
}

interface Row {
  label: string
  atMs: number
  server: ServerSample
  clients: SoakClientSample[]
}

async function main(): Promise<number> {
  let flags: ReturnType<typeof parseFlags<FlagName>>
  try {
    flags = parseFlags(process.argv.slice(2), FLAGS)
  } catch (err) {
    console.error(`soak: ${(err as Error).message}\n\n${USAGE}`)
    return 2
  }
  if (flags.help) {
    console.log(USAGE)
    return 0
  }
  const durationMs = (flags.values.duration ?? (flags.quick ? 20 : 600)) * 1000
  const clients = flags.values.clients ?? 2
  const unaryRate = flags.values['unary-rate'] ?? 200
  const job: Omit<SoakLoad, 'port' | 'ca' | 'worker'> = {
    durationMs: durationMs + TAIL_MS,
    poolSize: POOL_SIZE,
    unaryLoops: LOOPS,
    unaryRate,
    streamRate: flags.values['stream-rate'] ?? 20,
    streamLoops: LOOPS,
    sessionRate: flags.values['session-rate'] ?? 20,
    sessionLoops: LOOPS,
    churnRate: flags.values.churn ?? 2,
    callTimeout: CALL_TIMEOUT_MS,
  }
  const lifetimeMs = durationMs + 180_000
  log(
    `soak: ${durationMs / 1000} s, ${clients} client processes, each with a pool of ${POOL_SIZE}: ` +
      `${unaryRate} unary calls/s, ${job.streamRate} streams/s, ${job.sessionRate} sessions/s, ` +
      `${job.churnRate} new connections/s`,
  )
  log(machine())
  const tls = await selfSigned(['127.0.0.1'])
  const server = new Worker('server', 'server-main', { lifetimeMs, nodeArgs: ['--expose-gc'] })
  const workers = Array.from(
    { length: clients },
    (_, i) => new Worker(`client ${i}`, 'soak-client', { lifetimeMs, nodeArgs: ['--expose-gc'] }),
  )
  const all = [server, ...workers]
  const watchdog = setTimeout(() => {
    console.error(`soak: run exceeded ${Math.round(lifetimeMs / 1000)} s, killing workers`)
    for (const worker of all) worker.process.kill('SIGKILL')
    process.exit(1)
  }, lifetimeMs + 10_000)
  watchdog.unref()
  try {
    return await run(server, workers, tls, job, durationMs)
  } finally {
    await server.request('stop', null, 10_000).catch(() => {})
    await Promise.all(all.map((w) => w.reap(5000)))
  }
}

async function run(
  server: Worker,
  workers: Worker[],
  tls: { key: string; cert: string; ca: string },
  job: Omit<SoakLoad, 'port' | 'ca' | 'worker'>,
  durationMs: number,
): Promise<number> {
  const start: ServerStart = { key: tls.key, cert: tls.cert, maxConnections: 20_000 }
  const { port } = await server.request<ServerListening>('start', start, 20_000)
  log(`server listening on 127.0.0.1:${port} (pid ${server.pid})`)

  const rows: Row[] = []
  let loadStart = performance.now()
  const sample = async (label: string) => {
    const [s, c] = await Promise.all([
      server.request<ServerSample>('sample', { collect: true }, 30_000),
      Promise.all(workers.map((w) => w.request<SoakClientSample>('sample', { collect: true }, 30_000))),
    ])
    const row = { label, atMs: performance.now() - loadStart, server: s, clients: c }
    rows.push(row)
    return row
  }
  await sample('before load')

  loadStart = performance.now()
  const loading = Promise.all(
    workers.map((w, worker) =>
      w.request<SoakResult>('soak', { ...job, port, ca: tls.ca, worker }, durationMs + 120_000),
    ),
  )
  let failedEarly: unknown
  loading.catch((err) => {
    failedEarly = err
  })
  for (let k = 1; k <= SAMPLES && failedEarly === undefined; k++) {
    await sleep(loadStart + (k * durationMs) / SAMPLES - performance.now())
    const row = await sample(`${k * (100 / SAMPLES)} %`)
    log(progressLine(row))
  }
  const results = await loading

  // Every client closed its pools: the server must be back to no connections and no sockets.
  const closeBy = performance.now() + CLOSE_WAIT_MS
  let after = await sample('after load')
  while ((after.server.connections > 0 || socketHandles(after.server) > 0) && performance.now() < closeBy) {
    await sleep(500)
    rows.pop()
    after = await sample('after load')
  }
  return report(rows, results, durationMs, job)
}

function socketHandles(sample: ProcessSample): number {
  return SOCKET_HANDLES.reduce((n, type) => n + (sample.resources[type] ?? 0), 0)
}

function clientSum(row: Row, pick: (s: SoakClientSample) => number): number {
  return row.clients.reduce((n, s) => n + pick(s), 0)
}

function progressLine(row: Row): string {
  const p = row.clients.map((c) => c.progress)
  const sum = (pick: (r: SoakResult) => number) => p.reduce((n, r) => n + pick(r), 0)
  return (
    `${row.label.padStart(5)}: server RSS ${mib(row.server.rss)}, ${totalResources(row.server.resources)} handles, ` +
    `${row.server.connections} connections; clients RSS ${mib(clientSum(row, (c) => c.rss))}; ` +
    `unary ${sum((r) => r.unary.ok)}, streams ${sum((r) => r.streams.completed + r.streams.cancelled)}, ` +
    `sessions ${sum((r) => r.sessions.completed + r.sessions.aborted)}, errors ${sum((r) => r.sequenceErrors + r.unary.failed + r.streams.failed + r.sessions.failed + r.churn.failed)}`
  )
}

function report(
  rows: Row[],
  results: SoakResult[],
  durationMs: number,
  job: Omit<SoakLoad, 'port' | 'ca' | 'worker'>,
): number {
  const total = {
    unary: { ok: 0, failed: 0, mismatched: 0 },
    streams: { opened: 0, completed: 0, cancelled: 0, failed: 0, chunks: 0 },
    sessions: { opened: 0, completed: 0, aborted: 0, failed: 0, sent: 0, received: 0 },
    churn: { opened: 0, failed: 0 },
    sequenceErrors: 0,
  }
  const errors: Tally = {}
  const firsts: string[] = []
  for (const r of results) {
    for (const group of ['unary', 'streams', 'sessions', 'churn'] as const) {
      const into = total[group] as Record<string, number>
      for (const [key, n] of Object.entries(r[group])) into[key] += n
    }
    total.sequenceErrors += r.sequenceErrors
    mergeTally(errors, r.errors)
    if (r.firstSequenceError) firsts.push(r.firstSequenceError)
    if (r.firstError) firsts.push(r.firstError)
  }
  const last = rows[rows.length - 1]
  const server = last.server
  const seconds = durationMs / 1000

  console.log('')
  console.log(`== srpc soak: ${seconds} s, ${results.length} client processes ==`)
  console.log(
    table(
      ['traffic', 'count'],
      [
        [
          'unary calls ok',
          `${total.unary.ok} (${(total.unary.ok / ((durationMs + TAIL_MS) / 1000)).toFixed(0)}/s)`,
        ],
        ['unary calls failed / wrong reply', `${total.unary.failed} / ${total.unary.mismatched}`],
        ['streams opened', String(total.streams.opened)],
        ['  read to the end / cancelled part-way', `${total.streams.completed} / ${total.streams.cancelled}`],
        ['  failed', String(total.streams.failed)],
        ['  chunks checked', String(total.streams.chunks)],
        ['sessions opened', String(total.sessions.opened)],
        ['  completed / aborted part-way', `${total.sessions.completed} / ${total.sessions.aborted}`],
        ['  failed', String(total.sessions.failed)],
        [
          '  messages checked (client to server / back)',
          `${server.sessionMessages} / ${total.sessions.received}`,
        ],
        ['short-lived connections (failed)', `${total.churn.opened} (${total.churn.failed})`],
        [
          'out-of-order, lost or repeated (client / server)',
          `${total.sequenceErrors} / ${server.sequenceErrors}`,
        ],
        ['unexpected errors', formatTally(errors)],
        [
          'server handler errors / TLS client errors',
          `${server.handlerErrors} / ${formatTally(server.clientErrors)}`,
        ],
      ],
    ),
  )
  for (const first of firsts.slice(0, 5)) console.log(`  first problem: ${first}`)

  console.log('')
  console.log(
    'memory (after a forced GC in every process; ext = Buffers and other memory V8 tracks outside its heap),\n' +
      'handles (process.getActiveResourcesInfo()), CPU since the previous sample (100 % = one core):',
  )
  console.log(
    table(
      [
        'sample',
        'time',
        'srv RSS',
        'srv heap',
        'srv ext',
        'srv handles',
        'srv conns',
        'srv CPU',
        'cli RSS',
        'cli heap',
        'cli handles',
        'cli CPU',
      ],
      rows.map((row, i) => [
        row.label,
        `${(row.atMs / 1000).toFixed(0)} s`,
        mib(row.server.rss),
        mib(row.server.heapUsed),
        mib(row.server.external),
        String(totalResources(row.server.resources)),
        String(row.server.connections),
        i === 0 ? '' : `${cpuPercent(rows[i - 1].server, row.server).toFixed(0)} %`,
        mib(clientSum(row, (c) => c.rss)),
        mib(clientSum(row, (c) => c.heapUsed)),
        String(clientSum(row, (c) => totalResources(c.resources))),
        i === 0
          ? ''
          : `${row.clients.reduce((n, c, k) => n + cpuPercent(rows[i - 1].clients[k], c), 0).toFixed(0)} %`,
      ]),
    ),
  )
  const during = rows.slice(1, -1)
  const worst = (pick: (s: ProcessSample) => number) => ({
    server: Math.max(...during.map((r) => pick(r.server))),
    clients: Math.max(...during.flatMap((r) => r.clients.map(pick))),
  })
  const stall = worst((s) => s.loopDelayMaxMs)
  const pause = worst((s) => s.gcMaxMs)
  console.log(
    `longest event-loop stall: server ${ms(stall.server)}, clients ${ms(stall.clients)}; ` +
      `longest GC pause: server ${ms(pause.server)}, clients ${ms(pause.clients)}`,
  )
  const startRow = rows.find((r) => r.label === `${100 / SAMPLES} %`)
  const middleRow = rows.find((r) => r.label === '50 %')
  const endRow = rows.find((r) => r.label === '100 %')
  console.log('')
  for (const [name, row] of [
    ['start', startRow],
    ['middle', middleRow],
    ['end', endRow],
    ['after', last],
  ] as const) {
    if (!row) continue
    console.log(`handles at ${name} (${row.label}): server: ${formatTally(row.server.resources)}`)
    row.clients.forEach((c, i) => {
      console.log(
        `${' '.repeat(`handles at ${name} (${row.label}): `.length)}client ${i}: ${formatTally(c.resources)}`,
      )
    })
  }

  console.log('')
  console.log(`at the end: ${machine()}`)

  const problems: string[] = []
  const warnings: string[] = []
  if (total.sequenceErrors + server.sequenceErrors > 0) {
    problems.push(`${total.sequenceErrors + server.sequenceErrors} messages lost, repeated or out of order`)
  }
  const failedCalls =
    total.unary.failed +
    total.unary.mismatched +
    total.streams.failed +
    total.sessions.failed +
    total.churn.failed
  if (failedCalls > 0)
    problems.push(`${failedCalls} calls, streams or sessions failed (${formatTally(errors)})`)
  if (server.handlerErrors > 0) problems.push(`${server.handlerErrors} handler errors on the server`)
  // A kind of traffic asked for (rate above 0) that never ran would make the run prove nothing about it.
  const silent = [
    ['unary calls', job.unaryRate, total.unary.ok],
    ['streams', job.streamRate, total.streams.chunks],
    ['sessions', job.sessionRate, total.sessions.received],
    ['short-lived connections', job.churnRate, total.churn.opened],
  ].filter(([, rate, count]) => (rate as number) > 0 && count === 0)
  if (silent.length > 0) problems.push(`no ${silent.map(([name]) => name).join(', ')} ran`)
  if (last.server.connections > 0 || socketHandles(last.server) > 0) {
    problems.push(
      `after every client closed, the server still has ${last.server.connections} connections and ${socketHandles(last.server)} sockets`,
    )
  }
  if (startRow && middleRow && endRow) {
    const series: [string, (r: Row) => number, number][] = [
      ['server handles', (r) => totalResources(r.server.resources), 0],
      ['client handles', (r) => clientSum(r, (c) => totalResources(c.resources)), 0],
      ['server RSS', (r) => r.server.rss, 16 * 1024 * 1024],
      ['server heap', (r) => r.server.heapUsed, 8 * 1024 * 1024],
      ['client RSS', (r) => clientSum(r, (c) => c.rss), 16 * 1024 * 1024],
      ['client heap', (r) => clientSum(r, (c) => c.heapUsed), 8 * 1024 * 1024],
    ]
    for (const [name, value, slack] of series) {
      const [s, m, e] = [value(startRow), value(middleRow), value(endRow)]
      const show = (v: number) => (slack === 0 ? String(v) : mib(v))
      const isHandles = slack === 0
      // Clearly unbounded: doubling in the second half of the run.
      if (isHandles ? e > 2 * m + 50 : e > 2 * m + 4 * slack) {
        problems.push(
          `${name} keep growing: ${show(s)} at start, ${show(m)} in the middle, ${show(e)} at the end`,
        )
      } else if (isHandles ? e > 1.2 * m + 10 : e > 1.1 * m + slack || m > 1.1 * s + slack) {
        warnings.push(`${name} grew: ${show(s)} at start, ${show(m)} in the middle, ${show(e)} at the end`)
      }
    }
  } else {
    problems.push('the run did not reach its last sample')
  }
  console.log('')
  for (const warning of warnings) console.log(`WARNING: ${warning}`)
  if (problems.length > 0) {
    console.log(`FAILED: ${problems.join('; ')}`)
    return 1
  }
  console.log('PASSED: no message lost, repeated or reordered; no call failed; memory and handles flat')
  return 0
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (err) => {
    console.error('soak: failed:', err)
    process.exitCode = 1
  },
)

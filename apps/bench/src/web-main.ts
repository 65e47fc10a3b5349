/**
 * The WebSocket benchmark: srpc's Node client over TLS (Pool) and over WebSocket (@srpc/web's
 * WebClient with `ws`) against one srpc Server listening on both, in the same run, scenarios a
 * (64 B echo, 1 in flight) and b1 (64 in flight), repetitions interleaved; then the round trip
 * measured inside a real Chromium page (performance.now() around each call). Every reply is
 * checked byte for byte.
 *
 *   node apps/bench/dist/web-main.js [--quick] [--reps N] [--no-browser]
 *
 * Processes: this parent, a server child pinned to core 0 and a client child pinned to core 1
 * (taskset, when it works), as in the main bench.
 */
import { type ChildProcess, fork, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'

const SELF = fileURLToPath(import.meta.url)
const ROUTE = '/bench/echo'
const PAYLOAD_SIZE = 64
const CHROMIUM = process.env.SRPC_CHROMIUM ?? '/usr/bin/chromium'

type Transport = 'tls' | 'websocket'
interface Scenario {
  id: 'a' | 'b1'
  inFlight: number
}
const SCENARIOS: Scenario[] = [
  { id: 'a', inFlight: 1 },
  { id: 'b1', inFlight: 64 },
]

interface Timing {
  warmupMs: number
  measureMs: number
}

interface CellResult {
  scenario: string
  transport: Transport
  callsPerSecond: number
  p50us: number
  p99us: number
}

interface ServerInfo {
  tlsPort: number
  webSocketUrl: string
  pageUrl: string
  ca: string
}

// ---------------------------------------------------------------- server child

async function runServer(): Promise<void> {
  const { Server } = await import('@srpc/server')
  const { selfSigned } = await import('@srpc/tlsutil')
  const { build } = await import('esbuild')
  const tls = await selfSigned(['127.0.0.1'])
  const page = await pageScript(build)
  const server = new Server({ address: '127.0.0.1:0', tls: tls.serverOptions, compression: false })
  server.handle(ROUTE, (ctx) => ctx.payload)
  const { port: tlsPort } = await server.listen()
  const { url, port } = await server.listenWebSocket({
    onRequest: (request, response) => {
      if ((request.url ?? '').startsWith('/page.js')) {
        response.writeHead(200, { 'content-type': 'text/javascript' }).end(page)
        return
      }
      response
        .writeHead(200, { 'content-type': 'text/html' })
        .end(
          '<!doctype html><meta charset="utf-8"><body><script type="module" src="/page.js"></script></body>',
        )
    },
  })
  const info: ServerInfo = { tlsPort, webSocketUrl: url, pageUrl: `https://127.0.0.1:${port}/`, ca: tls.ca }
  process.send?.(info)
  process.on('message', () => {
    server.shutdown({ timeout: 1000 }).then(() => process.exit(0))
  })
  process.on('disconnect', () => process.exit(0))
}

/** The page's script: @srpc/web bundled with a loop of sequential echo calls, reporting p50/p99 (µs). */
async function pageScript(build: typeof import('esbuild').build): Promise<string> {
  const source = `
    import { WebClient } from '@srpc/web'
    const params = new URLSearchParams(location.search)
    const rounds = Number(params.get('rounds') ?? 1000), warmup = Number(params.get('warmup') ?? 200)
    const client = new WebClient({ url: 'wss://' + location.host + '/srpc' })
    const times = []
    let wrong = 0
    for (let i = 0; i < warmup + rounds; i++) {
      const payload = new Uint8Array(${PAYLOAD_SIZE}); new DataView(payload.buffer).setUint32(0, i)
      const started = performance.now()
      const reply = await client.call('${ROUTE}', payload)
      const took = performance.now() - started
      if (reply.length !== payload.length || new DataView(reply.buffer, reply.byteOffset).getUint32(0) !== i) wrong++
      if (i >= warmup) times.push(took)
    }
    times.sort((a, b) => a - b)
    const at = (q) => Math.round(times[Math.min(times.length - 1, Math.floor(times.length * q))] * 1000)
    document.body.dataset.result = JSON.stringify({ p50us: at(0.5), p99us: at(0.99), rounds, wrong })
    await client.close()
  `
  const result = await build({
    stdin: { contents: source, resolveDir: fileURLToPath(new URL('.', import.meta.url)), loader: 'js' },
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    write: false,
    logLevel: 'silent',
  })
  return result.outputFiles[0].text
}

// ---------------------------------------------------------------- client child

interface Caller {
  call(route: string, payload: Uint8Array): Promise<Uint8Array>
  close(): Promise<void>
}

async function openCaller(transport: Transport, server: ServerInfo): Promise<Caller> {
  if (transport === 'tls') {
    const { Pool } = await import('@srpc/client')
    const { clientTlsOptions } = await import('@srpc/tlsutil')
    const pool = new Pool({
      address: `127.0.0.1:${server.tlsPort}`,
      tls: clientTlsOptions(server.ca),
      compression: false,
    })
    await pool.connect()
    return { call: (route, payload) => pool.call(route, payload), close: () => pool.close() }
  }
  const { WebClient } = await import('@srpc/web')
  const { default: WebSocket } = await import('ws')
  class TrustingWebSocket extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { ca: server.ca })
    }
  }
  const client = new WebClient({ url: server.webSocketUrl, WebSocket: TrustingWebSocket as never })
  await client.connect()
  return { call: (route, payload) => client.call(route, payload), close: () => client.close() }
}

/** Closed loop: `inFlight` callers, each sending its next call when the previous reply arrived. */
async function measure(
  caller: Caller,
  inFlight: number,
  timing: Timing,
): Promise<Omit<CellResult, 'transport' | 'scenario'>> {
  let seq = 0
  let recording = false
  let stop = false
  const latencies: number[] = []
  const MAX_SAMPLES = 5_000_000
  let wrong = 0
  const worker = async () => {
    while (!stop) {
      const payload = new Uint8Array(PAYLOAD_SIZE)
      const mine = seq++
      new DataView(payload.buffer).setUint32(0, mine)
      const started = performance.now()
      const reply = await caller.call(ROUTE, payload)
      const took = performance.now() - started
      if (reply.length !== PAYLOAD_SIZE || new DataView(reply.buffer, reply.byteOffset).getUint32(0) !== mine)
        wrong++
      if (recording && latencies.length < MAX_SAMPLES) latencies.push(took)
    }
  }
  const workers = Array.from({ length: inFlight }, worker)
  await sleep(timing.warmupMs)
  recording = true
  const started = performance.now()
  await sleep(timing.measureMs)
  recording = false
  const elapsed = performance.now() - started
  const count = latencies.length
  stop = true
  await Promise.all(workers)
  if (wrong > 0) throw new Error(`${wrong} wrong replies`)
  latencies.sort((a, b) => a - b)
  const at = (q: number) => Math.round(latencies[Math.min(count - 1, Math.floor(count * q))] * 1000)
  return { callsPerSecond: Math.round((count / elapsed) * 1000), p50us: at(0.5), p99us: at(0.99) }
}

async function runClient(): Promise<void> {
  process.on(
    'message',
    async (job: { server: ServerInfo; transport: Transport; scenario: Scenario; timing: Timing }) => {
      try {
        const caller = await openCaller(job.transport, job.server)
        const result = await measure(caller, job.scenario.inFlight, job.timing)
        await caller.close()
        process.send?.({
          ok: true,
          result: { ...result, transport: job.transport, scenario: job.scenario.id },
        })
      } catch (err) {
        process.send?.({ ok: false, message: err instanceof Error ? err.message : String(err) })
      }
      process.disconnect?.()
    },
  )
}

// ---------------------------------------------------------------- parent

function pinned(core: number): string[] {
  if (cpus().length < 2) return []
  const probe = spawnSync('taskset', ['-c', String(core), process.execPath, '-e', '0'], { stdio: 'ignore' })
  return probe.status === 0 ? ['taskset', '-c', String(core)] : []
}

function child(role: 'server' | 'client', core: number): ChildProcess {
  const prefix = pinned(core)
  // fork() cannot prefix taskset; execPath through taskset keeps the IPC channel.
  return prefix.length > 0
    ? fork(SELF, [role], {
        execPath: prefix[0],
        execArgv: [...prefix.slice(1), process.execPath],
        stdio: 'inherit',
      })
    : fork(SELF, [role], { stdio: 'inherit' })
}

function once<T>(proc: ChildProcess, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
    proc.once('message', (message) => {
      clearTimeout(timer)
      resolve(message as T)
    })
    proc.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`child exited with ${code}`))
    })
  })
}

async function browserRoundTrip(
  server: ServerInfo,
  rounds: number,
): Promise<{ p50us: number; p99us: number } | string> {
  if (!existsSync(CHROMIUM)) return `no Chromium at ${CHROMIUM}`
  const { chromium } = await import('playwright-core')
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--ignore-certificate-errors'],
  })
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true })
    const page = await context.newPage()
    await page.goto(`${server.pageUrl}?rounds=${rounds}&warmup=${Math.min(500, rounds)}`)
    await page.waitForSelector('body[data-result]', { state: 'attached', timeout: 120_000 })
    const result = JSON.parse((await page.getAttribute('body', 'data-result'))!)
    if (result.wrong > 0) throw new Error(`${result.wrong} wrong replies in the page`)
    return result
  } finally {
    await browser.close()
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2)
  const quick = argv.includes('--quick')
  const repsAt = argv.indexOf('--reps')
  const reps = repsAt >= 0 ? Number(argv[repsAt + 1]) : quick ? 1 : 3
  const timing: Timing = quick ? { warmupMs: 200, measureMs: 500 } : { warmupMs: 1000, measureMs: 4000 }
  const loadBefore = loadavg()
  const server = child('server', 0)
  let failed = false
  try {
    const info = await once<ServerInfo>(server, 30_000)
    const results: CellResult[] = []
    for (let rep = 0; rep < reps; rep++) {
      for (const scenario of SCENARIOS) {
        const order: Transport[] = rep % 2 === 0 ? ['tls', 'websocket'] : ['websocket', 'tls']
        for (const transport of order) {
          const client = child('client', 1)
          client.send({ server: info, transport, scenario, timing })
          const answer = await once<{ ok: boolean; result?: CellResult; message?: string }>(
            client,
            60_000 + timing.measureMs,
          )
          if (!answer.ok || !answer.result) {
            console.error(`${scenario.id} ${transport}: FAILED ${answer.message}`)
            failed = true
            continue
          }
          const r = answer.result
          console.error(
            `${scenario.id} ${transport} rep ${rep + 1}: ${r.callsPerSecond} calls/s, p50 ${r.p50us} µs, p99 ${r.p99us} µs`,
          )
          results.push(r)
        }
      }
    }
    const browser = argv.includes('--no-browser')
      ? 'skipped'
      : await browserRoundTrip(info, quick ? 300 : 3000)
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]
    const rows: string[] = [
      '| scenario | transport | calls/s | p50 µs | p99 µs | WS/TLS calls/s |',
      '| --- | --- | ---: | ---: | ---: | ---: |',
    ]
    for (const scenario of SCENARIOS) {
      const of = (t: Transport) => results.filter((r) => r.scenario === scenario.id && r.transport === t)
      const tlsRate = median(of('tls').map((r) => r.callsPerSecond))
      for (const transport of ['tls', 'websocket'] as const) {
        const mine = of(transport)
        if (mine.length === 0) continue
        const rate = median(mine.map((r) => r.callsPerSecond))
        rows.push(
          `| ${scenario.id} | ${transport === 'tls' ? 'Node Pool, TLS' : 'Node WebClient, wss'} | ${rate} | ${median(mine.map((r) => r.p50us))} | ${median(mine.map((r) => r.p99us))} | ${transport === 'tls' ? '' : (rate / tlsRate).toFixed(2)} |`,
        )
      }
    }
    if (typeof browser === 'object') {
      rows.push(
        `| browser a | Chromium page, wss (sequential, measured in the page) | | ${browser.p50us} | ${browser.p99us} | |`,
      )
    } else {
      rows.push(`| browser a | Chromium page | ${browser} | | | |`)
    }
    console.log(
      `srpc web bench (${quick ? 'quick' : 'full'}, ${reps} rep${reps > 1 ? 's' : ''}, medians; 64 B echo)`,
    )
    console.log(
      `load average before: ${loadBefore.map((x) => x.toFixed(2)).join(' ')}, after: ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}`,
    )
    console.log(rows.join('\n'))
  } finally {
    server.send('stop')
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, 3000)
      server.once('exit', () => {
        clearTimeout(timer)
        resolve(undefined)
      })
    })
    server.kill()
  }
  if (failed) process.exit(1)
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

const role = process.argv[2]
const run = role === 'server' ? runServer : role === 'client' ? runClient : main
run().catch((err) => {
  console.error(err)
  process.exit(1)
})

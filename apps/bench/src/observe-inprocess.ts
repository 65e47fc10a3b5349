/**
 * The CPU that observing srpc costs per call, without a network or a second process in the way:
 * a Pool and a Server in this process over an in-memory transport, b1's shape (64 B echo, 64 in
 * flight, one connection), compression off. One variant per child process (fresh JIT, fresh
 * globals), variants interleaved, median (min–max) over the repetitions.
 *
 *   node apps/bench/dist/observe-inprocess.js [--reps N] [--variants plain,noop,diag,otel]
 *
 * `plain` is what every user gets (nobody subscribed); `noop` a pass-through interceptor on both
 * ends (the price of the interceptor path itself); `diag` a subscriber on the call channels;
 * `otel` @srpc/otel on both ends with a real SDK (AsyncLocalStorage context, W3C propagator,
 * batching span processor, metrics aggregated) whose exporters drop everything.
 */
import { spawnSync } from 'node:child_process'
import { subscribe } from 'node:diagnostics_channel'
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { type Interceptor, Pool } from '@srpc/client'
import { memoryTransportPair, Server } from '@srpc/server'
import { stat } from './report'

const VARIANTS = ['plain', 'noop', 'diag', 'otel'] as const
type Variant = (typeof VARIANTS)[number]
const WARMUP_CALLS = 20_000
const MEASURED_CALLS = 100_000
const IN_FLIGHT = 64
/** A child that takes longer than this is killed and its repetition counts as failed. */
const CHILD_TIMEOUT_MS = 120_000

async function interceptorsFor(variant: Variant): Promise<{ client: Interceptor[]; server: Interceptor[] }> {
  if (variant === 'noop') {
    const pass: Interceptor = (next) => (call) => next(call)
    return { client: [pass], server: [pass] }
  }
  if (variant === 'diag') {
    const { DIAGNOSTICS_CHANNELS } = await import('@srpc/server')
    const started = new WeakMap<object, number>()
    subscribe(DIAGNOSTICS_CHANNELS.callStart, (m) =>
      started.set((m as { call: object }).call, performance.now()),
    )
    subscribe(DIAGNOSTICS_CHANNELS.callEnd, (m) => started.delete((m as { call: object }).call))
    subscribe(DIAGNOSTICS_CHANNELS.callError, (m) => started.delete((m as { call: object }).call))
    return { client: [], server: [] }
  }
  if (variant === 'otel') {
    const { observeInterceptors } = await import('./targets/observe')
    // One SDK for the process (global providers), then one interceptor per end.
    const client = await observeInterceptors('otel', 'client')
    const { otelServer } = await import('@srpc/otel')
    return { client, server: [otelServer()] }
  }
  return { client: [], server: [] }
}

/** One measurement in this process: calls/s and CPU µs per call (both ends, every thread). */
async function measure(variant: Variant): Promise<{ rate: number; cpuUs: number }> {
  const { client, server: serverInterceptors } = await interceptorsFor(variant)
  const server = new Server({ compression: false, interceptors: serverInterceptors })
  server.handle('/bench/echo', (ctx) => ctx.payload)
  const pool = new Pool({
    address: 'memory:1',
    size: 1,
    compression: false,
    interceptors: client,
    connector: async () => {
      const [clientEnd, serverEnd] = memoryTransportPair()
      server.accept(serverEnd)
      return clientEnd
    },
  })
  await pool.connect()
  const payload = Buffer.alloc(64, 7)
  const run = (total: number) =>
    new Promise<void>((resolve, reject) => {
      let sent = 0
      let done = 0
      const one = () => {
        sent++
        pool.call('/bench/echo', payload, { timeout: 10_000 }).then(() => {
          done++
          if (sent < total) one()
          else if (done === total) resolve()
        }, reject)
      }
      for (let i = 0; i < IN_FLIGHT; i++) one()
    })
  await run(WARMUP_CALLS)
  const started = performance.now()
  const cpu = process.cpuUsage()
  await run(MEASURED_CALLS)
  const elapsed = performance.now() - started
  const used = process.cpuUsage(cpu)
  await pool.close({ timeout: 1000 })
  await server.shutdown({ timeout: 1000 })
  return { rate: (MEASURED_CALLS / elapsed) * 1000, cpuUs: (used.user + used.system) / MEASURED_CALLS }
}

function parent(): number {
  const argv = process.argv.slice(2)
  const repsAt = argv.indexOf('--reps')
  const reps = repsAt >= 0 ? Number(argv[repsAt + 1]) : 5
  const variantsAt = argv.indexOf('--variants')
  const variants = (variantsAt >= 0 ? argv[variantsAt + 1].split(',') : [...VARIANTS]) as Variant[]
  if (!Number.isInteger(reps) || reps < 1 || reps > 50)
    throw new Error('--reps must be a whole number from 1 to 50')
  for (const v of variants) if (!VARIANTS.includes(v)) throw new Error(`unknown variant ${v}`)
  const script = fileURLToPath(import.meta.url)
  const results = new Map<Variant, { rate: number; cpuUs: number }[]>(variants.map((v) => [v, []]))
  const loadBefore = loadavg()
  let failed = false
  for (let rep = 1; rep <= reps; rep++) {
    const order = variants.map((_, i) => variants[(i + rep - 1) % variants.length])
    for (const variant of order) {
      const child = spawnSync(process.execPath, [script, '--child', variant], {
        encoding: 'utf8',
        timeout: CHILD_TIMEOUT_MS,
      })
      const line = child.stdout?.trim().split('\n').at(-1) ?? ''
      if (child.status !== 0 || !line.startsWith('{')) {
        failed = true
        process.stderr.write(`rep ${rep} ${variant}: FAILED ${child.stderr ?? ''}\n`)
        continue
      }
      const m = JSON.parse(line) as { rate: number; cpuUs: number }
      results.get(variant)!.push(m)
      process.stderr.write(
        `rep ${rep} ${variant.padEnd(5)} ${Math.round(m.rate)}/s ${m.cpuUs.toFixed(2)} µs CPU/call\n`,
      )
    }
  }
  const fmt = (values: number[], digits: number) => {
    const s = stat(values)
    if (!s) return '—'
    const f = (v: number) => (digits === 0 ? Math.round(v).toLocaleString('en-US') : v.toFixed(digits))
    return `${f(s.median)} (${f(s.min)}–${f(s.max)})`
  }
  const plainCpu = stat((results.get('plain') ?? []).map((m) => m.cpuUs))?.median
  console.log('| variant (in process) | calls/s | CPU µs/call, both ends | added CPU µs/call vs plain |')
  console.log('|---|---:|---:|---:|')
  for (const [variant, ms] of results) {
    const cpu = stat(ms.map((m) => m.cpuUs))?.median
    const added =
      variant === 'plain' || cpu === undefined || plainCpu === undefined ? '' : (cpu - plainCpu).toFixed(2)
    console.log(
      `| ${variant} | ${fmt(
        ms.map((m) => m.rate),
        0,
      )} | ${fmt(
        ms.map((m) => m.cpuUs),
        2,
      )} | ${added} |`,
    )
  }
  const after = loadavg()
  console.log(
    `\nload average ${loadBefore.map((l) => l.toFixed(2)).join(' ')} before, ${after.map((l) => l.toFixed(2)).join(' ')} after; ${reps} reps, median (min–max)`,
  )
  return failed ? 1 : 0
}

if (process.argv[2] === '--child') {
  measure(process.argv[3] as Variant).then(
    (m) => console.log(JSON.stringify(m)),
    (err) => {
      console.error(err)
      process.exitCode = 1
    },
  )
} else {
  try {
    process.exitCode = parent()
  } catch (err) {
    console.error(String(err))
    process.exitCode = 1
  }
}

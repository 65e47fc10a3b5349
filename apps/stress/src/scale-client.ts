/**
 * A client process of the scale run: opens its share of the connections (one Pool of size 1
 * per connection) at a set rate, then makes one `/ping` call per connection per interval and
 * checks every reply.
 */
import { Pool } from '@srpc/client'
import { clientTlsOptions } from '@srpc/tlsutil'
import { serveParent } from './child'
import {
  LATENCY_WINDOW,
  ROUTES,
  type SampleRequest,
  type ScaleConnect,
  type ScaleConnected,
  type ScaleLoad,
  type ScaleLoadResult,
} from './messages'
import {
  errorKey,
  LogHistogram,
  type ProcessSample,
  sampleProcess,
  sleep,
  startPauseMonitor,
  tally,
} from './stats'

/** A call that starts this much after its slot counts as late (ms). */
const LATE_MS = 100
const CLOSE_TIMEOUT_MS = 10_000

const pools: Pool[] = []
let disconnects = 0

async function connect(job: ScaleConnect): Promise<ScaleConnected> {
  const tls = clientTlsOptions(job.ca)
  const address = `127.0.0.1:${job.port}`
  const result: ScaleConnected = { connected: 0, failures: {}, handshakeMs: [], elapsedMs: 0 }
  const began = performance.now()
  const intervalMs = 1000 / job.rate
  let pending = 0
  let slotFreed: (() => void) | undefined
  const attempts: Promise<void>[] = []
  for (let i = 0; i < job.count; i++) {
    const ahead = began + i * intervalMs - performance.now()
    if (ahead >= 1) await sleep(ahead)
    else if (i % 32 === 0) await new Promise((resolve) => setImmediate(resolve))
    while (pending >= job.maxPending) {
      await new Promise<void>((resolve) => {
        slotFreed = resolve
      })
    }
    pending++
    const pool = new Pool({ address, tls, size: 1, connectTimeout: job.connectTimeout })
    const started = performance.now()
    const attempt = pool.connect().then(
      () => {
        result.handshakeMs.push(performance.now() - started)
        result.connected++
        pools.push(pool)
        pool.on('disconnect', () => disconnects++)
      },
      (err: unknown) => {
        tally(result.failures, errorKey(err))
        if (Object.keys(result.failures).length === 1 && result.failures[errorKey(err)] === 1) {
          console.error(`client ${process.pid}: first connect failure:`, err)
        }
        return pool.close()
      },
    )
    attempts.push(
      attempt.finally(() => {
        pending--
        slotFreed?.()
        slotFreed = undefined
      }),
    )
  }
  await Promise.all(attempts)
  result.elapsedMs = performance.now() - began
  return result
}

async function load(job: ScaleLoad): Promise<ScaleLoadResult> {
  const latency = new LogHistogram()
  const windows = Array.from({ length: Math.ceil(job.calls / LATENCY_WINDOW) }, () => new LogHistogram())
  const result: Omit<ScaleLoadResult, 'latency' | 'latencyByWindow' | 'disconnects'> = {
    ok: 0,
    failed: 0,
    mismatched: 0,
    errors: {},
    lateStarts: 0,
  }
  const disconnectsBefore = disconnects
  const run = async (pool: Pool, index: number) => {
    // Each connection gets its own phase within the interval, so calls arrive evenly spread.
    const phase = Math.random() * job.intervalMs
    for (let k = 0; k < job.calls; k++) {
      const wait = job.startAt + phase + k * job.intervalMs - Date.now()
      if (wait > 0) await sleep(wait)
      else if (-wait > LATE_MS) result.lateStarts++
      const payload = `${process.pid}:${index}:${k}`
      const started = performance.now()
      try {
        const reply = await pool.call(ROUTES.ping, payload, { timeout: job.timeoutMs })
        const elapsed = performance.now() - started
        latency.record(elapsed)
        windows[Math.floor(k / LATENCY_WINDOW)].record(elapsed)
        if (reply.toString('utf8') === payload) result.ok++
        else result.mismatched++
      } catch (err) {
        result.failed++
        tally(result.errors, errorKey(err))
      }
    }
  }
  await Promise.all(pools.map(run))
  return {
    ...result,
    latency: latency.toJSON(),
    latencyByWindow: windows.map((w) => w.toJSON()),
    disconnects: disconnects - disconnectsBefore,
  }
}

async function close(): Promise<{ closed: number }> {
  const closing = Promise.all(pools.map((pool) => pool.close()))
  await Promise.race([closing, sleep(CLOSE_TIMEOUT_MS)])
  const closed = pools.length
  pools.length = 0
  return { closed }
}

startPauseMonitor()
serveParent(
  {
    connect: (body: ScaleConnect) => connect(body),
    load: (body: ScaleLoad) => load(body),
    sample: async (body: SampleRequest): Promise<ProcessSample & { pools: number }> => ({
      ...(await sampleProcess(body.collect)),
      pools: pools.length,
    }),
    close: () => close(),
  },
  () => close().then(() => {}),
)

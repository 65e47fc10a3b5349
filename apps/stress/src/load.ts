/**
 * A closed-loop load generator for the cluster and offload runs, in its own process (forked
 * with IPC): `concurrency` loops, each calling `route` again as soon as its last call ended,
 * for `durationMs`. It keeps the end time and latency of every call (up to MAX_SAMPLES) so the
 * parent can ask for any time window afterwards: the whole run minus warm-up, or the seconds a
 * rolling restart took.
 */
import { Pool } from '@srpc/client'
import { errorKey, percentile } from './stats'

export interface LoadSpec {
  address: string
  /** CA certificate (PEM) the client verifies the server with. */
  ca: string
  routes: { route: string; concurrency: number }[]
  durationMs: number
  /** Pool size; undefined keeps the pool's default (one connection). */
  size: number | undefined
  timeoutMs: number
}

/** What happened in one window, per route. */
export interface WindowResult {
  route: string
  calls: number
  failed: number
  callsPerSec: number
  p50: number
  p99: number
  max: number
  errors: Record<string, number>
}

const MAX_SAMPLES = 4_000_000
/** A child left without its parent stops on its own after this. */
const MAX_LIFETIME_MS = 10 * 60_000

class Samples {
  end = new Float64Array(1 << 16)
  latency = new Float64Array(1 << 16)
  ok = new Uint8Array(1 << 16)
  errors: { at: number; key: string }[] = []
  n = 0

  add(end: number, latency: number, ok: boolean, err?: unknown): void {
    if (this.n >= MAX_SAMPLES) return
    if (this.n === this.end.length) {
      const grow = <T extends Float64Array | Uint8Array>(a: T, make: (n: number) => T) => {
        const b = make(a.length * 2)
        b.set(a)
        return b
      }
      this.end = grow(this.end, (n) => new Float64Array(n))
      this.latency = grow(this.latency, (n) => new Float64Array(n))
      this.ok = grow(this.ok, (n) => new Uint8Array(n))
    }
    this.end[this.n] = end
    this.latency[this.n] = latency
    this.ok[this.n] = ok ? 1 : 0
    this.n++
    if (!ok && this.errors.length < 10_000)
      this.errors.push({ at: end, key: `${errorKey(err)}: ${String((err as Error)?.message ?? err)}` })
  }

  window(route: string, from: number, to: number): WindowResult {
    const latencies: number[] = []
    let failed = 0
    for (let i = 0; i < this.n; i++) {
      const t = this.end[i]
      if (t < from || t > to) continue
      if (this.ok[i]) latencies.push(this.latency[i])
      else failed++
    }
    latencies.sort((a, b) => a - b)
    const errors: Record<string, number> = {}
    for (const e of this.errors) if (e.at >= from && e.at <= to) errors[e.key] = (errors[e.key] ?? 0) + 1
    return {
      route,
      calls: latencies.length + failed,
      failed,
      callsPerSec: (latencies.length * 1000) / Math.max(1, to - from),
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      max: latencies.length ? latencies[latencies.length - 1] : Number.NaN,
      errors,
    }
  }
}

async function run(spec: LoadSpec): Promise<Map<string, Samples>> {
  const pool = new Pool({
    address: spec.address,
    tls: { ca: spec.ca },
    ...(spec.size ? { size: spec.size } : {}),
  })
  pool.on('error', () => {}) // every call reports its own failure
  await pool.connect()
  const samples = new Map<string, Samples>()
  const stopAt = performance.now() + spec.durationMs
  const loops: Promise<void>[] = []
  for (const { route, concurrency } of spec.routes) {
    const s = new Samples()
    samples.set(route, s)
    for (let i = 0; i < concurrency; i++) {
      loops.push(
        (async () => {
          while (performance.now() < stopAt) {
            const start = performance.now()
            try {
              await pool.call(route, 'x'.repeat(64), { timeout: spec.timeoutMs })
              const end = performance.now()
              s.add(Date.now(), end - start, true)
            } catch (err) {
              s.add(Date.now(), performance.now() - start, false, err)
            }
          }
        })(),
      )
    }
  }
  await Promise.all(loops)
  await pool.close({ timeout: 2000 })
  return samples
}

// The child side: wait for the spec, run, then answer window queries until told to exit.
if (process.send) {
  setTimeout(() => process.exit(3), MAX_LIFETIME_MS).unref()
  process.on('disconnect', () => process.exit(0))
  let samples: Map<string, Samples> | undefined
  process.on('message', async (message: { type: string; spec?: LoadSpec; from?: number; to?: number }) => {
    if (message.type === 'run' && message.spec) {
      const started = Date.now()
      samples = await run(message.spec)
      process.send?.({ type: 'done', started, ended: Date.now() })
    } else if (message.type === 'window' && samples) {
      const results = [...samples].map(([route, s]) =>
        s.window(route, message.from ?? 0, message.to ?? Date.now()),
      )
      process.send?.({ type: 'window', results })
    } else if (message.type === 'exit') {
      process.exit(0)
    }
  })
  process.send({ type: 'ready' })
}

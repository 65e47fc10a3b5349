import { readFileSync } from 'node:fs'
import { availableParallelism, loadavg } from 'node:os'
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks'
import { RpcError } from '@srpc/protocol'

/** Memory and handles of one process at one moment. */
export interface ProcessSample {
  rss: number
  heapUsed: number
  /** Memory outside the JS heap that V8 knows about (Buffers, TLS objects it is told of). */
  external: number
  arrayBuffers: number
  /** `process.getActiveResourcesInfo()` grouped by type (TLSSocketWrap, Timeout, …). */
  resources: Record<string, number>
  /** CPU time used since the process started (user + system), ms. */
  cpuMs: number
  /** Epoch ms of the sample, to turn CPU time into a share of one core. */
  at: number
  /** Since the previous sample: longest event-loop stall, ms (a blocked loop delays every call). */
  loopDelayMaxMs: number
  /** Since the previous sample: garbage collection time, total and longest pause, ms (forced ones left out). */
  gcMs: number
  gcMaxMs: number
}

const LOOP_DELAY_RESOLUTION_MS = 10
const loopDelay = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS })
let gcMs = 0
let gcMaxMs = 0
/** [start, end] of the collections we forced ourselves, so they are not counted as pauses. */
const forced: [number, number][] = []
let monitoring = false

/** Starts watching event-loop stalls and GC pauses (the first sample does it otherwise). */
export function startPauseMonitor(): void {
  if (monitoring) return
  monitoring = true
  loopDelay.enable()
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (forced.some(([from, to]) => entry.startTime >= from && entry.startTime <= to)) continue
      gcMs += entry.duration
      gcMaxMs = Math.max(gcMaxMs, entry.duration)
    }
    // Entries arrive after the fact; older forced windows can no longer match anything.
    while (forced.length > 4) forced.shift()
  }).observe({ entryTypes: ['gc'] })
}

/** Share of one core used between two samples of the same process, in %. */
export function cpuPercent(from: ProcessSample, to: ProcessSample): number {
  return (100 * (to.cpuMs - from.cpuMs)) / Math.max(1, to.at - from.at)
}

/**
 * Samples this process; with `collect` (needs --expose-gc) garbage is collected first. The
 * event-loop delay monitor notices the forced collection only at its next tick, so after one it
 * waits for that tick and resets the monitor again: the next sample's longest stall is the
 * workload's, not this forced GC.
 */
export async function sampleProcess(collect: boolean): Promise<ProcessSample> {
  startPauseMonitor()
  const pauses = { loopDelayMaxMs: loopDelay.max / 1e6, gcMs, gcMaxMs }
  loopDelay.reset()
  gcMs = 0
  gcMaxMs = 0
  if (collect) {
    const gc = (globalThis as { gc?: () => void }).gc
    const from = performance.now()
    gc?.()
    gc?.()
    forced.push([from, performance.now()])
  }
  const memory = process.memoryUsage()
  const cpu = process.cpuUsage()
  if (collect) {
    await sleep(2 * LOOP_DELAY_RESOLUTION_MS)
    loopDelay.reset()
  }
  return {
    rss: memory.rss,
    heapUsed: memory.heapUsed,
    external: memory.external,
    arrayBuffers: memory.arrayBuffers,
    resources: groupResources(),
    cpuMs: (cpu.user + cpu.system) / 1000,
    at: Date.now(),
    ...pauses,
  }
}

export function groupResources(): Record<string, number> {
  const groups: Record<string, number> = {}
  for (const type of process.getActiveResourcesInfo()) groups[type] = (groups[type] ?? 0) + 1
  return groups
}

export function totalResources(resources: Record<string, number>): number {
  let total = 0
  for (const n of Object.values(resources)) total += n
  return total
}

/** `p` in [0, 100] of already sorted numbers (nearest rank). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]
}

/** Growth factor between buckets: values are kept to within 2 %. */
const BUCKET_RATIO = 1.02
const LOG_RATIO = Math.log(BUCKET_RATIO)
/** Values below this (ms) share the first bucket. */
const FLOOR_MS = 0.01

/**
 * A latency histogram with logarithmic buckets (2 % wide): constant memory for millions of
 * samples, and mergeable across processes by adding the counts.
 */
export class LogHistogram {
  counts: Record<number, number> = {}
  total = 0
  max = 0

  record(ms: number): void {
    const bucket = ms <= FLOOR_MS ? 0 : Math.ceil(Math.log(ms / FLOOR_MS) / LOG_RATIO)
    this.counts[bucket] = (this.counts[bucket] ?? 0) + 1
    this.total++
    if (ms > this.max) this.max = ms
  }

  merge(other: { counts: Record<number, number>; total: number; max: number }): void {
    for (const [bucket, n] of Object.entries(other.counts)) {
      this.counts[Number(bucket)] = (this.counts[Number(bucket)] ?? 0) + n
    }
    this.total += other.total
    this.max = Math.max(this.max, other.max)
  }

  /** Upper edge of the bucket holding the p-th percentile, ms. */
  percentile(p: number): number {
    if (this.total === 0) return Number.NaN
    const rank = Math.ceil((p / 100) * this.total)
    let seen = 0
    for (const bucket of Object.keys(this.counts)
      .map(Number)
      .sort((a, b) => a - b)) {
      seen += this.counts[bucket]
      if (seen >= rank) return Math.min(this.max, FLOOR_MS * BUCKET_RATIO ** bucket)
    }
    return this.max
  }

  toJSON(): { counts: Record<number, number>; total: number; max: number } {
    return { counts: this.counts, total: this.total, max: this.max }
  }
}

/** Counts of things by name, e.g. errors by code. */
export type Tally = Record<string, number>

export function tally(into: Tally, key: string, n = 1): void {
  into[key] = (into[key] ?? 0) + n
}

export function mergeTally(into: Tally, from: Tally): void {
  for (const [key, n] of Object.entries(from)) tally(into, key, n)
}

export function formatTally(t: Tally): string {
  const entries = Object.entries(t).sort((a, b) => b[1] - a[1])
  return entries.length === 0 ? 'none' : entries.map(([k, n]) => `${k} ×${n}`).join(', ')
}

/** The srpc code of an error, with the platform error's code (ECONNRESET, EMFILE, …) when there is one. */
export function errorKey(err: unknown): string {
  if (RpcError.is(err)) {
    const cause = (err.cause as { code?: unknown } | undefined)?.code
    return typeof cause === 'string' ? `${err.code}/${cause}` : err.code
  }
  const code = (err as { code?: unknown } | undefined)?.code
  return typeof code === 'string' ? code : err instanceof Error ? err.name : 'unknown'
}

export function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`
}

export function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`
}

export function ms(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(value < 10 ? 2 : 1)} ms` : 'n/a'
}

/** A cell holding one number (with an optional unit) is right-aligned; anything else is text. */
const NUMERIC_CELL = /^[-+]?\d[\d.,]*( ?(KiB|MiB|ms|s|%|\/s))?$/

/** A plain-text table: columns padded to their widest cell, numbers right-aligned. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]) =>
    cells
      .map((cell, i) =>
        i > 0 && NUMERIC_CELL.test(cell) ? cell.padStart(widths[i]) : cell.padEnd(widths[i]),
      )
      .join('  ')
      .trimEnd()
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

/**
 * The soft limit on open files of this process (Linux `/proc/self/limits`), or undefined where
 * it cannot be read. Sockets count against it: one per connection, plus a few for Node itself.
 */
export function openFileLimit(): number | undefined {
  try {
    const limits = readFileSync('/proc/self/limits', 'utf8')
    const line = limits.split('\n').find((l) => l.startsWith('Max open files'))
    const soft = line?.split(/\s{2,}/)[1]
    if (soft === 'unlimited') return Number.POSITIVE_INFINITY
    const n = Number(soft)
    return Number.isFinite(n) ? n : undefined
  } catch {
    return undefined
  }
}

export function sleep(delayMs: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, delayMs)))
}

/** Node version, cores and load average: other work on the machine skews every number here. */
export function machine(): string {
  const load = loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')
  return `Node ${process.version}, ${availableParallelism()} cores, load average ${load}`
}

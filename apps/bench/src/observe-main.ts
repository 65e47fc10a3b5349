/**
 * What observing srpc costs, on b1 (unary echo 64 B, 64 in flight, 1 connection), in one run:
 * srpc plain (nobody subscribed: the path every user gets), srpc with a subscriber on every
 * diagnostics channel on both ends, and srpc with @srpc/otel's interceptors on both ends and a real
 * SDK whose exporters drop everything. Cells are interleaved (the order rotates each repetition)
 * and each runs in fresh server and client processes, as in main.ts.
 *
 *   node apps/bench/dist/observe-main.js [--reps N] [--quick] [--no-pin]
 */
import { loadavg } from 'node:os'
import { selfSigned } from '@srpc/tlsutil'
import { detectPlacement, runCell } from './cell-runner'
import type { Metrics } from './messages'
import { stat } from './report'
import { SCENARIOS, TIMING } from './scenarios'

const VARIANTS = ['plain', 'diag', 'otel'] as const
type Variant = (typeof VARIANTS)[number]
const LABELS: Record<Variant, string> = {
  plain: 'srpc plain (nobody subscribed)',
  diag: 'srpc + diagnostics_channel subscriber',
  otel: 'srpc + @srpc/otel (SDK, no-op exporter)',
}

function log(line: string): void {
  process.stderr.write(`${line}\n`)
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2)
  const quick = argv.includes('--quick')
  const repsAt = argv.indexOf('--reps')
  const reps = repsAt >= 0 ? Number(argv[repsAt + 1]) : quick ? 1 : 5
  if (!Number.isInteger(reps) || reps < 1 || reps > 50)
    throw new Error('--reps must be a whole number from 1 to 50')
  const mode = quick ? 'quick' : 'full'
  const scenario = SCENARIOS.find((s) => s.id === 'b1')!
  const placement = detectPlacement(!argv.includes('--no-pin'))
  const tls = await selfSigned(['127.0.0.1'])
  const loadBefore = loadavg()
  log(
    `observe bench: b1 × ${VARIANTS.join(', ')} × ${reps} reps; ${placement.description}; load ${loadBefore[0].toFixed(2)}`,
  )
  const results: Record<Variant, Metrics[]> = { plain: [], diag: [], otel: [] }
  let failed = false
  for (let rep = 1; rep <= reps; rep++) {
    const order = VARIANTS.map((_, i) => VARIANTS[(i + rep - 1) % VARIANTS.length])
    for (const variant of order) {
      // The cell's processes inherit it; srpc-client.ts and srpc-server.ts read it.
      process.env.SRPC_BENCH_OBSERVE = variant
      const cell = await runCell(
        {
          scenario: scenario.id,
          target: 'srpc',
          rep,
          server: {
            target: 'srpc',
            key: tls.key,
            cert: tls.cert,
            ca: tls.ca,
            compression: scenario.compression,
          },
          client: { target: 'srpc', workload: scenario.workload(mode), timing: TIMING[mode], ca: tls.ca },
          timeoutMs: scenario.timeoutMs(mode),
        },
        placement,
      )
      if (cell.status !== 'ok' || !cell.metrics) {
        failed = true
        log(`rep ${rep} ${variant}: FAILED ${cell.error ?? ''}`)
        continue
      }
      results[variant].push(cell.metrics)
      const m = cell.metrics
      log(
        `rep ${rep} ${variant.padEnd(5)} ${Math.round(m.rate).toLocaleString('en-US')}/s p50 ${m.p50Us} µs p99 ${m.p99Us} µs client CPU ${m.clientCpuUsPerOp?.toFixed(2)} µs/call`,
      )
    }
  }
  delete process.env.SRPC_BENCH_OBSERVE
  const loadAfter = loadavg()
  const fmt = (values: number[], digits: number) => {
    const s = stat(values)
    if (!s) return '—'
    const f = (v: number) => (digits === 0 ? Math.round(v).toLocaleString('en-US') : v.toFixed(digits))
    return s.n > 1 ? `${f(s.median)} (${f(s.min)}–${f(s.max)})` : f(s.median)
  }
  const median = (variant: Variant, key: keyof Metrics) =>
    stat(results[variant].map((m) => m[key] as number))?.median
  const rows = [
    '| b1 variant | calls/s | p50 µs | p99 µs | client CPU µs/call | calls/s vs plain | added wall time per call (µs, from calls/s) | added client CPU per call (µs) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for (const variant of VARIANTS) {
    const ms = results[variant]
    const rate = median(variant, 'rate')
    const plainRate = median('plain', 'rate')
    const cpu = median(variant, 'clientCpuUsPerOp')
    const plainCpu = median('plain', 'clientCpuUsPerOp')
    const plain = variant === 'plain'
    rows.push(
      `| ${LABELS[variant]} | ${fmt(
        ms.map((m) => m.rate),
        0,
      )} | ${fmt(
        ms.map((m) => m.p50Us ?? Number.NaN),
        0,
      )} | ${fmt(
        ms.map((m) => m.p99Us ?? Number.NaN),
        0,
      )} | ${fmt(
        ms.map((m) => m.clientCpuUsPerOp ?? Number.NaN),
        2,
      )} | ${plain || !rate || !plainRate ? '' : `${(rate / plainRate).toFixed(2)}×`} | ${
        plain || !rate || !plainRate ? '' : (1e6 / rate - 1e6 / plainRate).toFixed(2)
      } | ${plain || cpu === undefined || plainCpu === undefined ? '' : (cpu - plainCpu).toFixed(2)} |`,
    )
  }
  console.log(rows.join('\n'))
  console.log(
    `\nload average ${loadBefore.map((l) => l.toFixed(2)).join(' ')} before, ${loadAfter.map((l) => l.toFixed(2)).join(' ')} after; ${placement.description}; ${reps} reps, median (min–max)`,
  )
  return failed ? 1 : 0
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (err) => {
    log(String(err?.stack ?? err))
    process.exitCode = 1
  },
)

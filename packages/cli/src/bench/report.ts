import type { LatencyBin, LatencySummary } from './latency'
import type { BenchResult } from './run'

/** Bins of the latency histogram drawn in the summary. */
export const HISTOGRAM_BINS = 10
/** Widest bar of the histogram, characters. */
const BAR_WIDTH = 40

export interface BenchReport {
  address: string
  route: string
  concurrency: number
  connections: number
  count: number
  ok: number
  errors: Record<string, number>
  elapsedMs: number
  callsPerSecond: number
  stoppedBy: BenchResult['stoppedBy']
  latencyMs: LatencySummary
  histogram: LatencyBin[]
}

export function reportOf(
  result: BenchResult,
  setup: { address: string; route: string; concurrency: number; connections: number },
): BenchReport {
  return {
    ...setup,
    count: result.count,
    ok: result.ok,
    errors: result.errors,
    elapsedMs: round(result.elapsedMs),
    callsPerSecond: result.elapsedMs > 0 ? round((result.count / result.elapsedMs) * 1000) : 0,
    stoppedBy: result.stoppedBy,
    latencyMs: mapValues(result.latencies.summary(), round),
    histogram: result.latencies
      .bins(HISTOGRAM_BINS)
      .map((bin) => ({ fromMs: round(bin.fromMs), toMs: round(bin.toMs), count: bin.count })),
  }
}

/** The summary as people read it, after the style of ghz. */
export function formatReport(report: BenchReport): string {
  const failed = report.count - report.ok
  const l = report.latencyMs
  const lines = [
    '',
    'Summary:',
    `  Route:        ${report.route} on ${report.address}`,
    `  Concurrency:  ${report.concurrency} over ${report.connections} connection${report.connections === 1 ? '' : 's'}`,
    `  Count:        ${report.count}`,
    `  OK:           ${report.ok}`,
    `  Errors:       ${failed}`,
    `  Total:        ${(report.elapsedMs / 1000).toFixed(3)} s${report.stoppedBy === 'interrupt' ? ' (stopped by Ctrl-C)' : ''}`,
    `  Calls/sec:    ${report.callsPerSecond.toFixed(2)}`,
  ]
  if (report.ok > 0) {
    lines.push(
      `  Fastest:      ${ms(l.min)}`,
      `  Average:      ${ms(l.mean)}`,
      `  Slowest:      ${ms(l.max)}`,
      '',
      'Latency distribution (successful calls):',
      `  p50     ${ms(l.p50)}`,
      `  p90     ${ms(l.p90)}`,
      `  p99     ${ms(l.p99)}`,
      `  p99.9   ${ms(l.p999)}`,
      `  max     ${ms(l.max)}`,
      '',
      'Latency histogram (successful calls):',
      ...drawHistogram(report.histogram),
    )
  }
  lines.push('', 'Status:')
  const statuses: [string, number][] = [
    ['OK', report.ok],
    ...Object.entries(report.errors).sort((a, b) => b[1] - a[1]),
  ]
  const width = Math.max(...statuses.map(([code]) => code.length)) + 2
  for (const [code, count] of statuses) {
    if (count > 0 || code === 'OK')
      lines.push(`  ${`[${code}]`.padEnd(width)}  ${count} call${count === 1 ? '' : 's'}`)
  }
  return `${lines.join('\n')}\n`
}

/** One line per bin: its upper bound, its count and a bar scaled to the fullest bin. */
export function drawHistogram(bins: readonly LatencyBin[]): string[] {
  const most = Math.max(1, ...bins.map((bin) => bin.count))
  const labels = bins.map((bin) => `${bin.toMs.toFixed(3)} ms`)
  const counts = bins.map((bin) => `[${bin.count}]`)
  const labelWidth = Math.max(...labels.map((label) => label.length))
  const countWidth = Math.max(...counts.map((count) => count.length))
  return bins.map((bin, i) => {
    const bar = '■'.repeat(Math.round((bin.count / most) * BAR_WIDTH))
    return `  ${labels[i].padStart(labelWidth)} ${counts[i].padEnd(countWidth)} |${bar}`
  })
}

function ms(value: number): string {
  return `${value.toFixed(3)} ms`
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000
}

function mapValues<T extends object>(record: T, fn: (value: number) => number): T {
  return Object.fromEntries(Object.entries(record).map(([key, value]) => [key, fn(value)])) as T
}

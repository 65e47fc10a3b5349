import type { CompressionSetting, Metrics, TargetName, Timing, Workload } from './messages'
import { srpcSupportsCompression } from './targets/compression'

export type Mode = 'full' | 'quick'

export const TIMING: Record<Mode, Timing> = {
  full: { warmupMs: 1000, measureMs: 3000, maxOps: 20_000_000 },
  quick: { warmupMs: 100, measureMs: 250, maxOps: 2_000_000 },
}

export const DEFAULT_REPS: Record<Mode, number> = { full: 3, quick: 1 }

export type MetricKey = keyof Metrics

/** One line of the results table: a metric of a scenario, measured for every target. */
export interface RowSpec {
  metric: MetricKey
  label: string
  better: 'higher' | 'lower'
  /** Which panel of the ratio chart shows this row, if any. */
  chart?: 'throughput' | 'latency'
  /** The target for srpc, checked on this row. */
  goal?: Goal
}

/** A target for srpc: informational, shown as a pass/fail marker in the last column. */
export type Goal =
  | { kind: 'ratio-max'; max: number; text: string }
  | { kind: 'ratio-min'; min: number; text: string }
  | { kind: 'vs-own'; scenario: string; max: number; text: string }
  /** srpc's value here ≥ `min` × srpc's value of the same metric in `scenario` (same run). */
  | { kind: 'vs-own-min'; scenario: string; min: number; text: string }
  | { kind: 'zero'; text: string }

export interface Scenario {
  id: string
  title: string
  workload(mode: Mode): Workload
  rows: RowSpec[]
  /** The srpc server's compression: on (f-*-on, h-on), unset (the *-default rows), else off. */
  compression: CompressionSetting
  /** Why a target cannot run this scenario yet, or undefined when it can. */
  unsupported(target: TargetName): string | undefined
  /** Longest a cell may take before its processes are killed, ms. */
  timeoutMs(mode: Mode): number
}

const KIB = 1024
const latencyRows = (chartP50: boolean): RowSpec[] => [
  { metric: 'p50Us', label: 'p50 µs', better: 'lower', chart: chartP50 ? 'latency' : undefined },
  { metric: 'p99Us', label: 'p99 µs', better: 'lower' },
]
/** Client CPU per operation: steadier than throughput on a shared machine (see CpuMeter). */
const cpuRow = (per = 'op', goal?: Goal): RowSpec => ({
  metric: 'clientCpuUsPerOp',
  label: `client CPU µs/${per}`,
  better: 'lower',
  goal,
})
/** The target for client CPU per call in b1, b4 and c. */
const CPU_GOAL: Goal = { kind: 'ratio-max', max: 1.3, text: 'CPU ≤ 1.3× raw' }
const timed = (mode: Mode, extraMs = 0) => TIMING[mode].warmupMs + TIMING[mode].measureMs + 60_000 + extraMs
const always = () => undefined

function unaryScenario(
  id: string,
  title: string,
  size: number,
  inFlight: number,
  connections: number,
  rows: RowSpec[],
  compression: CompressionSetting = 'off',
): Scenario {
  return {
    id,
    title,
    workload: () => ({
      kind: 'unary',
      size,
      payload: 'binary',
      inFlight,
      connections,
      compression,
      wireBytes: false,
    }),
    rows,
    compression,
    unsupported: always,
    timeoutMs: (mode) => timed(mode),
  }
}

function compressionScenario(payload: 'json' | 'random', on: boolean): Scenario {
  const name = payload === 'json' ? 'JSON-like' : 'random'
  return {
    id: `f-${payload === 'json' ? 'json' : 'rand'}-${on ? 'on' : 'off'}`,
    title: `unary echo 16 KiB ${name}, 16 in flight, compression ${on ? 'on' : 'off'}`,
    workload: () => ({
      kind: 'unary',
      size: 16 * KIB,
      payload,
      inFlight: 16,
      connections: 1,
      compression: on ? 'on' : 'off',
      wireBytes: true,
    }),
    rows: [
      {
        metric: 'rate',
        label: 'calls/s',
        better: 'higher',
        chart: 'throughput',
        // The target is for the framing path: 16 KiB JSON-like, compression off.
        goal: payload === 'json' && !on ? { kind: 'ratio-min', min: 0.8, text: '≥ 0.8× raw' } : undefined,
      },
      { metric: 'wireBytesPerCall', label: 'wire B/call', better: 'lower' },
    ],
    compression: on ? 'on' : 'off',
    unsupported: (target) =>
      on && target === 'srpc' && !srpcSupportsCompression() ? 'n/a (not implemented yet)' : undefined,
    timeoutMs: (mode) => timed(mode, 30_000),
  }
}

function streamScenario(id: string, compression: CompressionSetting): Scenario {
  const own = compression === 'default'
  return {
    id,
    title: `server stream of 2,000 × 64 KiB${own ? ', srpc with default options (compression unset)' : ''}`,
    workload: (mode) => ({
      kind: 'stream',
      count: mode === 'full' ? 2000 : 100,
      size: 64 * KIB,
      maxStreams: mode === 'full' ? 100 : 5,
      compression,
    }),
    rows: [
      {
        metric: 'mbPerSec',
        label: 'MB/s',
        better: 'higher',
        chart: 'throughput',
        goal: own
          ? { kind: 'vs-own-min', scenario: 'd', min: 0.95, text: "≥ 0.95× srpc's d (compression off)" }
          : { kind: 'ratio-min', min: 0.95, text: '≥ 0.95× raw' },
      },
      cpuRow('chunk'),
    ],
    compression,
    unsupported: always,
    timeoutMs: (mode) => timed(mode, 120_000),
  }
}

/** The slow link of the h rows: bytes/s each way through the rate-limiting proxy (test-support/link-proxy.ts). */
export const THROTTLED_LINK_BYTES_PER_SEC = 10_000_000

/**
 * Scenario h: unary echo of 16 KiB JSON-like through a 10 MB/s link (a rate-limiting proxy on
 * 127.0.0.1 in the client process), where compression pays; srpc off, on, and with defaults.
 * The raw TLS reference deflates in h-on (as in f), plain otherwise; grpc-js gzips in h-on.
 */
function throttledScenario(compression: CompressionSetting): Scenario {
  const rows: RowSpec[] = [
    { metric: 'rate', label: 'calls/s', better: 'higher', chart: 'throughput' },
    { metric: 'wireBytesPerCall', label: 'wire B/call (whole run)', better: 'lower' },
    cpuRow('call'),
  ]
  if (compression === 'default') {
    rows[0] = {
      ...rows[0],
      goal: { kind: 'vs-own-min', scenario: 'h-on', min: 0.9, text: "≥ 0.9× srpc's h-on (compression true)" },
    }
    rows.splice(1, 0, {
      metric: 'rate',
      label: 'calls/s vs off',
      better: 'higher',
      goal: { kind: 'vs-own-min', scenario: 'h-off', min: 2, text: "≥ 2× srpc's h-off (compression false)" },
    })
  }
  const name = compression === 'default' ? 'srpc with default options' : `compression ${compression}`
  return {
    id: `h-${compression}`,
    title: `unary echo 16 KiB JSON-like, 16 in flight, 1 connection, over a 10 MB/s link, ${name}`,
    workload: () => ({
      kind: 'unary',
      size: 16 * KIB,
      payload: 'json',
      inFlight: 16,
      connections: 1,
      compression,
      wireBytes: false,
      linkBytesPerSec: THROTTLED_LINK_BYTES_PER_SEC,
    }),
    rows,
    compression,
    unsupported: (target) =>
      compression === 'on' && target === 'srpc' && !srpcSupportsCompression()
        ? 'n/a (not implemented yet)'
        : undefined,
    timeoutMs: (mode) => timed(mode, 60_000),
  }
}

export const SCENARIOS: Scenario[] = [
  unaryScenario('a', 'unary echo 64 B, 1 in flight, 1 connection', 64, 1, 1, [
    { metric: 'rate', label: 'calls/s', better: 'higher', chart: 'throughput' },
    { ...latencyRows(true)[0], goal: { kind: 'ratio-max', max: 1.1, text: 'p50 ≤ 1.1× raw' } },
    latencyRows(true)[1],
    cpuRow('call'),
  ]),
  unaryScenario('b1', 'unary echo 64 B, 64 in flight, 1 connection', 64, 64, 1, [
    { metric: 'rate', label: 'calls/s', better: 'higher', chart: 'throughput' },
    ...latencyRows(true),
    cpuRow('call', CPU_GOAL),
  ]),
  unaryScenario('b4', 'unary echo 64 B, 64 in flight, 4 connections × 16', 64, 64, 4, [
    {
      metric: 'rate',
      label: 'calls/s',
      better: 'higher',
      chart: 'throughput',
      goal: { kind: 'ratio-min', min: 0.8, text: '≥ 0.8× raw' },
    },
    latencyRows(true)[0],
    { ...latencyRows(true)[1], goal: { kind: 'ratio-max', max: 2, text: 'p99 ≤ 2× raw' } },
    cpuRow('call', CPU_GOAL),
  ]),
  unaryScenario('c', 'unary echo 4 KiB, 64 in flight, 1 connection', 4 * KIB, 64, 1, [
    {
      metric: 'rate',
      label: 'calls/s',
      better: 'higher',
      chart: 'throughput',
      goal: { kind: 'ratio-min', min: 0.8, text: '≥ 0.8× raw' },
    },
    cpuRow('call', CPU_GOAL),
  ]),
  unaryScenario('u1m', 'unary echo 1 MiB, 4 in flight, 1 connection', 1024 * KIB, 4, 1, [
    {
      // Request payload bytes per second (10⁶ B); every reply carries the same bytes back.
      metric: 'mbPerSec',
      label: 'MB/s (one way)',
      better: 'higher',
      chart: 'throughput',
      goal: { kind: 'ratio-min', min: 0.8, text: '≥ 0.8× raw' },
    },
    cpuRow('call'),
  ]),
  unaryScenario(
    'c-default',
    'unary echo 4 KiB, 64 in flight, 1 connection, srpc with default options (compression unset)',
    4 * KIB,
    64,
    1,
    [
      {
        metric: 'rate',
        label: 'calls/s',
        better: 'higher',
        chart: 'throughput',
        goal: { kind: 'vs-own-min', scenario: 'c', min: 0.95, text: "≥ 0.95× srpc's c (compression off)" },
      },
      cpuRow('call'),
    ],
    'default',
  ),
  streamScenario('d', 'off'),
  streamScenario('d-default', 'default'),
  {
    id: 'e-pp',
    title: 'session ping-pong 64 B, 1 in flight',
    workload: () => ({ kind: 'pingpong', size: 64 }),
    rows: [
      { metric: 'rate', label: 'round trips/s', better: 'higher', chart: 'throughput' },
      {
        metric: 'p50Us',
        label: 'p50 µs',
        better: 'lower',
        chart: 'latency',
        goal: { kind: 'vs-own', scenario: 'a', max: 1.2, text: "p50 ≤ 1.2× srpc's a p50" },
      },
      { metric: 'p99Us', label: 'p99 µs', better: 'lower' },
      cpuRow('round trip'),
    ],
    compression: 'off',
    unsupported: always,
    timeoutMs: (mode) => timed(mode),
  },
  {
    id: 'e-ow',
    title: 'session one-way, 1 KiB messages',
    workload: (mode) => ({ kind: 'oneway', size: KIB, maxMessages: mode === 'full' ? 3_000_000 : 300_000 }),
    rows: [
      {
        metric: 'rate',
        label: 'msgs/s',
        better: 'higher',
        chart: 'throughput',
        goal: { kind: 'ratio-min', min: 0.95, text: '≥ 0.95× raw' },
      },
      cpuRow('msg'),
    ],
    compression: 'off',
    unsupported: always,
    timeoutMs: (mode) => timed(mode, 30_000),
  },
  compressionScenario('json', false),
  compressionScenario('json', true),
  compressionScenario('random', false),
  compressionScenario('random', true),
  throttledScenario('off'),
  throttledScenario('on'),
  throttledScenario('default'),
  {
    id: 'g',
    title: 'many connections, each 1 call/s (64 B)',
    workload: (mode) =>
      mode === 'full'
        ? { kind: 'fleet', connections: 1000, durationMs: 20_000, connectConcurrency: 50 }
        : { kind: 'fleet', connections: 50, durationMs: 2000, connectConcurrency: 25 },
    rows: [
      { metric: 'p50Us', label: 'p50 µs', better: 'lower', chart: 'latency' },
      {
        metric: 'p99Us',
        label: 'p99 µs',
        better: 'lower',
        chart: 'latency',
        goal: { kind: 'ratio-max', max: 1.5, text: 'p99 ≤ 1.5× raw' },
      },
      { metric: 'p99LaterUs', label: 'p99 µs after the first 10 %', better: 'lower' },
      {
        metric: 'failedCalls',
        label: 'failed calls',
        better: 'lower',
        goal: { kind: 'zero', text: 'zero failed' },
      },
      {
        metric: 'rssPerConnectionBytes',
        label: 'server RSS/conn B',
        better: 'lower',
        goal: { kind: 'ratio-max', max: 1.15, text: 'RSS/conn ≤ 1.15× raw' },
      },
    ],
    compression: 'off',
    unsupported: always,
    timeoutMs: (mode) => (mode === 'full' ? 240_000 : 60_000),
  },
]

/** Scenario ids matching `--only` words: an exact id, or a prefix ("b", "e", "f", "f-json"). */
export function selectScenarios(only: string[] | undefined): Scenario[] {
  if (only === undefined) return SCENARIOS
  const chosen = new Set<string>()
  for (const word of only) {
    const matches = SCENARIOS.filter(
      (s) => s.id === word || s.id.startsWith(`${word}-`) || (word.length === 1 && s.id[0] === word),
    )
    if (matches.length === 0) {
      throw new Error(`--only: no scenario "${word}" (known: ${SCENARIOS.map((s) => s.id).join(', ')})`)
    }
    for (const s of matches) chosen.add(s.id)
  }
  return SCENARIOS.filter((s) => chosen.has(s.id))
}

/** The three things measured side by side in every run. */
export type TargetName = 'raw' | 'srpc' | 'grpc'
export const TARGETS: readonly TargetName[] = ['raw', 'srpc', 'grpc']
export const TARGET_LABELS: Record<TargetName, string> = { raw: 'raw TLS', srpc: 'srpc', grpc: 'grpc-js' }

export type PayloadKind = 'binary' | 'json' | 'random'

/**
 * Compression for a cell: 'off' and 'on' are explicit (srpc `compression: false / true`, raw TLS
 * plain / deflate, grpc-js none / gzip); 'default' leaves srpc's option unset, as a user would
 * (the references then run plain).
 */
export type CompressionSetting = 'off' | 'on' | 'default'

/** What one client process runs; every count and duration is bounded. */
export type Workload =
  | {
      kind: 'unary'
      size: number
      payload: PayloadKind
      inFlight: number
      connections: number
      compression: CompressionSetting
      /** Also measure bytes on the wire per call, through a counting proxy (not timed). */
      wireBytes: boolean
      /**
       * Calls go through a rate-limiting proxy in the client process, this many bytes/s each way
       * (a slow link); wire bytes per call are then counted through it over the whole run.
       */
      linkBytesPerSec?: number
    }
  | { kind: 'stream'; count: number; size: number; maxStreams: number; compression?: CompressionSetting }
  | { kind: 'pingpong'; size: number }
  | { kind: 'oneway'; size: number; maxMessages: number }
  | { kind: 'fleet'; connections: number; durationMs: number; connectConcurrency: number }

export interface Timing {
  warmupMs: number
  measureMs: number
  /** Upper bound on operations per phase, whatever the clock says. */
  maxOps: number
}

export interface ServerJob {
  target: TargetName
  key: string
  cert: string
  ca: string
  compression: CompressionSetting
}

export interface ClientJob {
  target: TargetName
  workload: Workload
  timing: Timing
  port: number
  ca: string
}

/** What a client reports for one cell (one scenario, one target, one repetition). */
export interface Metrics {
  /** Operations completed in the measured window (calls, round trips, messages, streams). */
  ops: number
  seconds: number
  /** Operations per second. */
  rate: number
  mbPerSec?: number
  p50Us?: number
  p90Us?: number
  p99Us?: number
  /** g: the p99 of the calls issued after the first tenth of the run (the code's warm-up left out). */
  p99LaterUs?: number
  maxUs?: number
  /** Bytes both ways per call, TLS records and all, measured through a counting proxy. */
  wireBytesPerCall?: number
  wireBytesUpPerCall?: number
  wireBytesDownPerCall?: number
  /** The client process's CPU (user + system, all threads) per operation in the measured window, µs. */
  clientCpuUsPerOp?: number
  failedCalls?: number
  serverRssBefore?: number
  serverRssConnected?: number
  serverRssAfter?: number
  rssPerConnectionBytes?: number
}

export type ToServer = { type: 'start'; job: ServerJob } | { type: 'rss' } | { type: 'stop' }
export type FromServer =
  | { type: 'listening'; port: number }
  | { type: 'rss'; rss: number }
  | { type: 'warning'; message: string }
  | { type: 'stopped' }
  | { type: 'failed'; message: string }

export type ToClient = { type: 'run'; job: ClientJob } | { type: 'rss'; rss: number }
export type FromClient =
  | { type: 'rss-request' }
  | { type: 'result'; metrics: Metrics; failure?: string }
  | { type: 'failed'; message: string }

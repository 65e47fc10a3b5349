/** What the parents and their workers tell each other over IPC (request bodies and answers). */
import type { ProcessSample, Tally } from './stats'

/** The routes every stress server serves. */
export const ROUTES = {
  /** Unary: replies with the request payload. */
  ping: '/ping',
  /** Server stream: payload `{"n":N}`; sends chunks "0" … "N-1", the last one ends the stream. */
  count: '/count',
  /**
   * Session: each client message is "<seq>"; the server checks 0, 1, 2 … and answers each with
   * "<serverSeq>:<clientSeq>"; when the client ends its half it sends "end:<received>" and ends.
   */
  session: '/session',
} as const

export interface ServerStart {
  key: string
  cert: string
  maxConnections: number
  /** Keepalive and idle timeouts are left at their defaults unless set. */
  idleTimeout?: number
}

export interface ServerListening {
  port: number
}

/** Server-side counters since start. */
export interface ServerCounters {
  connections: number
  accepted: number
  disconnected: number
  /** Accepted connections per second, by second since the first accept. */
  acceptsPerSecond: number[]
  /** ms from first to last accept. */
  acceptSpanMs: number
  clientErrors: Tally
  handlerErrors: number
  /** Session messages that arrived out of order, twice, or after a gap. */
  sequenceErrors: number
  sessionsChecked: number
  sessionMessages: number
}

export interface ServerSample extends ProcessSample, ServerCounters {}

export interface SampleRequest {
  /** Collect garbage first (the worker runs with --expose-gc). */
  collect: boolean
}

// --- scale ---

export interface ScaleConnect {
  port: number
  ca: string
  /** Connections this worker opens. */
  count: number
  /** Connection attempts started per second by this worker. */
  rate: number
  /** Most attempts under way at once. */
  maxPending: number
  connectTimeout: number
}

export interface ScaleConnected {
  connected: number
  failures: Tally
  /** Handshake times (connect start to `await pool.connect()` resolving), ms. */
  handshakeMs: number[]
  elapsedMs: number
}

export type HistogramData = { counts: Record<number, number>; total: number; max: number }

/** Call slots per latency window in the scale report (10 s at one call per second). */
export const LATENCY_WINDOW = 10

export interface ScaleLoad {
  /** Epoch ms at which the first call slot begins (the same for every worker). */
  startAt: number
  calls: number
  intervalMs: number
  timeoutMs: number
}

export interface ScaleLoadResult {
  ok: number
  failed: number
  mismatched: number
  errors: Tally
  latency: HistogramData
  /** Latency of the calls of slots [0, w), [w, 2w), … with w = LATENCY_WINDOW slots. */
  latencyByWindow: HistogramData[]
  /** Calls that started more than 100 ms after their slot (the worker's event loop was behind). */
  lateStarts: number
  /** Connections that closed while the load ran. */
  disconnects: number
}

// --- soak ---

export interface SoakLoad {
  port: number
  ca: string
  worker: number
  durationMs: number
  poolSize: number
  unaryLoops: number
  unaryRate: number
  /** Streams opened per second, spread over `streamLoops` loops that each run one at a time. */
  streamRate: number
  streamLoops: number
  /** Sessions opened per second, spread over `sessionLoops` loops. */
  sessionRate: number
  sessionLoops: number
  /** New short-lived connections per second (open, one call, close). */
  churnRate: number
  callTimeout: number
}

export interface SoakResult {
  unary: { ok: number; failed: number; mismatched: number }
  streams: { opened: number; completed: number; cancelled: number; failed: number; chunks: number }
  sessions: {
    opened: number
    completed: number
    aborted: number
    failed: number
    sent: number
    received: number
  }
  churn: { opened: number; failed: number }
  /** Lost, duplicated or out-of-order chunks and messages seen by this client. */
  sequenceErrors: number
  firstSequenceError: string | undefined
  /** Unexpected errors by code (a cancel we asked for is not one). */
  errors: Tally
  firstError: string | undefined
}

export interface SoakClientSample extends ProcessSample {
  progress: SoakResult
}

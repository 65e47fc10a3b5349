import {
  DEFAULT_INITIAL_WINDOW,
  DEFAULT_MAX_BUFFERED,
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_MAX_WINDOW,
  invalidOption,
  type Metadata,
  nonNegativeIntOption,
  positiveIntOption,
  windowOption,
} from '@srpc/protocol'
import type { WebSocketConstructor } from './websocket-link'

/** Bound on opening the WebSocket (TCP, TLS, HTTP upgrade), ms. */
export const DEFAULT_CONNECT_TIMEOUT = 10_000
/** A call without its own `timeout` fails after this, ms (0: never), as the Node pool's default. */
export const DEFAULT_CALL_TIMEOUT = 60_000
/** How long streams, sessions and calls with metadata wait for the server's HELLO, ms. */
export const DEFAULT_HELLO_TIMEOUT = 2000
/** How long `session.close()` waits for the server to end its half before cancelling, ms. */
export const DEFAULT_SESSION_CLOSE_TIMEOUT = 1000
/** Idle time before the client pings the server, and how long it waits for the answer, ms. */
export const DEFAULT_KEEPALIVE = { interval: 30_000, timeout: 10_000 }
/** Reconnect delays: full jitter between `initial` and `initial · multiplier^n`, capped at `max`, ms. */
export const DEFAULT_BACKOFF = { initial: 250, multiplier: 1.6, max: 10_000 }
/**
 * Bytes the WebSocket may hold unsent (`bufferedAmount`) before stream and session sends wait:
 * browsers have no drain event, so waiting sends poll every BACKPRESSURE_POLL_MS.
 */
export const DEFAULT_HIGH_WATER_MARK = 1024 * 1024
export const BACKPRESSURE_POLL_MS = 10

export interface BackoffOptions {
  initial?: number
  multiplier?: number
  max?: number
}

export interface WebClientOptions {
  /** `wss://host:port/srpc` (`ws://` only behind a TLS-terminating proxy on localhost). */
  url: string
  /** The WebSocket class: default `globalThis.WebSocket`; on Node 20 pass `ws`'s `WebSocket`. */
  WebSocket?: WebSocketConstructor
  connectTimeout?: number
  /** Timeout of request-response calls that set none, ms; 0 for none. */
  defaultTimeout?: number
  helloTimeout?: number
  /** Reconnect in the background after a connection drops (default true), with `backoff` between attempts. */
  reconnect?: boolean
  backoff?: BackoffOptions
  keepalive?: { interval?: number; timeout?: number } | false
  /** Largest frame accepted from the server, bytes (announced in HELLO). */
  maxFrameSize?: number
  /** Receive window per stream direction offered to the server, bytes. */
  initialWindow?: number
  maxWindow?: number
  /** Bytes one session may queue for sending before `send()` fails with RESOURCE_EXHAUSTED. */
  maxBufferedBytes?: number
  /** WebSocket `bufferedAmount` past which stream and session sends wait. */
  highWaterMark?: number
}

export interface CallOptions {
  /**
   * Milliseconds until the call fails with DEADLINE_EXCEEDED (the server is told too); 0 for no
   * deadline. Unset: request-response calls get `defaultTimeout`, streams and sessions none.
   */
  timeout?: number
  /** Aborting it cancels the call with CANCELLED (and the server's `ctx.signal`). */
  signal?: AbortSignal
  /** Key/value pairs for the server (`ctx.metadata`). */
  metadata?: Metadata
  /** While the server cannot be reached, keep trying until the deadline instead of failing at once. */
  waitForReady?: boolean
  /** Wait for the server's HELLO before sending, so the call carries extensions even on a new connection. */
  waitForExtensions?: boolean
  /**
   * Called with what the server set in `ctx.responseMetadata` (servers with `response-metadata`):
   * before a call resolves, or when a stream or session ends. What it throws fails the call.
   * Implies `waitForExtensions` for request-response calls.
   */
  onResponseMetadata?: (metadata: Metadata) => void
}

export interface SessionOptions extends CallOptions {
  /** How long close() waits for the server to end its half before cancelling, ms. */
  closeTimeout?: number
}

export interface ResolvedWebClientOptions {
  url: string
  WebSocket: WebSocketConstructor
  connectTimeout: number
  defaultTimeout: number
  helloTimeout: number
  reconnect: boolean
  backoff: Required<BackoffOptions>
  keepalive: { interval: number; timeout: number } | false
  maxFrameSize: number
  initialWindow: number
  maxWindow: number
  maxBufferedBytes: number
  highWaterMark: number
}

export function resolveWebClientOptions(options: WebClientOptions): ResolvedWebClientOptions {
  if (!options || typeof options !== 'object') invalidOption('options', 'must be an object')
  const { url } = options
  if (typeof url !== 'string' || !/^wss?:\/\//i.test(url))
    invalidOption('url', `must be a ws:// or wss:// URL, got ${url}`)
  const WebSocketClass = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
  if (typeof WebSocketClass !== 'function') {
    invalidOption('WebSocket', 'is needed where there is no global WebSocket (Node 20: pass `ws`)')
  }
  const backoff = options.backoff ?? {}
  const keepalive = options.keepalive ?? {}
  const initialWindow = windowOption('initialWindow', options.initialWindow, DEFAULT_INITIAL_WINDOW)
  return {
    url,
    WebSocket: WebSocketClass,
    connectTimeout: positiveIntOption('connectTimeout', options.connectTimeout, DEFAULT_CONNECT_TIMEOUT),
    defaultTimeout: nonNegativeIntOption('defaultTimeout', options.defaultTimeout, DEFAULT_CALL_TIMEOUT),
    helloTimeout: positiveIntOption('helloTimeout', options.helloTimeout, DEFAULT_HELLO_TIMEOUT),
    reconnect: options.reconnect ?? true,
    backoff: {
      initial: positiveIntOption('backoff.initial', backoff.initial, DEFAULT_BACKOFF.initial),
      multiplier: backoff.multiplier ?? DEFAULT_BACKOFF.multiplier,
      max: positiveIntOption('backoff.max', backoff.max, DEFAULT_BACKOFF.max),
    },
    keepalive:
      keepalive === false
        ? false
        : {
            interval: positiveIntOption('keepalive.interval', keepalive.interval, DEFAULT_KEEPALIVE.interval),
            timeout: positiveIntOption('keepalive.timeout', keepalive.timeout, DEFAULT_KEEPALIVE.timeout),
          },
    maxFrameSize: positiveIntOption('maxFrameSize', options.maxFrameSize, DEFAULT_MAX_FRAME_SIZE),
    initialWindow,
    maxWindow: Math.max(initialWindow, windowOption('maxWindow', options.maxWindow, DEFAULT_MAX_WINDOW)),
    maxBufferedBytes: positiveIntOption('maxBufferedBytes', options.maxBufferedBytes, DEFAULT_MAX_BUFFERED),
    highWaterMark: positiveIntOption('highWaterMark', options.highWaterMark, DEFAULT_HIGH_WATER_MARK),
  }
}

/** Throws INVALID_ARGUMENT for a bad per-call timeout. */
export function checkTimeout(timeout: number | undefined): void {
  if (timeout !== undefined && (typeof timeout !== 'number' || !(timeout >= 0) || !Number.isFinite(timeout)))
    invalidOption('timeout', `must be a number of milliseconds >= 0, got ${timeout}`)
}

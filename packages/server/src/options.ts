import type { TlsOptions } from 'node:tls'
import {
  type CompressionOptions,
  type Interceptor,
  type Logger,
  parseAddress,
  type ResolvedCompressionOptions,
  resolvePeerOptions,
} from '@srpc/core'
import {
  DEFAULT_MAX_METADATA_SIZE,
  DEFAULT_MAX_TYPE_LENGTH,
  invalidOption,
  nonNegativeIntOption,
  positiveIntOption,
} from '@srpc/protocol'
import { defaultReflection } from './reflection'

export const DEFAULT_WORKERS = 64
export const DEFAULT_MAX_QUEUE = 1024
export const DEFAULT_MAX_SESSIONS = 1024
/** Like HTTP/2's SETTINGS_MAX_CONCURRENT_STREAMS; generous, since a call costs a few hundred bytes. */
export const DEFAULT_MAX_CONCURRENT_STREAMS = 1024
export const DEFAULT_SHUTDOWN_TIMEOUT = 5000
/** Open connections beyond which new ones are told RESOURCE_EXHAUSTED and closed. */
export const DEFAULT_MAX_CONNECTIONS = 16_384
/** A client must finish its TLS handshake within this (ms): slowloris protection. */
export const DEFAULT_HANDSHAKE_TIMEOUT = 10_000
/** A connection with no call for this long (ms) is closed (GOAWAY first); 0 keeps it forever. */
export const DEFAULT_IDLE_TIMEOUT = 300_000
/** Idle time before the server pings a client, and how long it waits for the answer (ms). */
export const DEFAULT_KEEPALIVE = { interval: 60_000, timeout: 20_000 }

export interface ServerOptions {
  /** `host:port` to listen on (`[::1]:8443` for IPv6); port 0 picks a free port. Default `127.0.0.1:0`. */
  address?: string
  /**
   * Options for `tls.createServer`: key and cert at least (see @srpc/tlsutil). Needed by
   * `listen()` only: a server fed by `accept(transport)` alone may leave it out.
   */
  tls?: TlsOptions
  /** Most request and stream handlers running at once. */
  workers?: number
  /** Calls waiting for a worker beyond which new calls fail with RESOURCE_EXHAUSTED. */
  maxQueue?: number
  /** Most bidirectional sessions open at once (they do not take workers). */
  maxSessions?: number
  /** Largest frame accepted (header + route + value), bytes. */
  maxFrameSize?: number
  /** Longest route accepted, bytes. */
  maxRouteLength?: number
  /** Largest metadata block accepted, bytes. */
  maxMetadataSize?: number
  /** Bytes buffered for one stream or session before reading from its connection pauses (v1 clients). */
  streamHighWaterMark?: number
  /**
   * Bytes one stream or session may queue for sending while the client's window or the socket
   * holds them back (each message counts 64 bytes more); a send past it fails with
   * RESOURCE_EXHAUSTED and is not sent. See `ctx.bufferedAmount`.
   */
  maxBufferedBytes?: number
  /**
   * Most calls, streams and sessions in flight on one connection. Advertised to srpc clients,
   * which queue or use another connection instead of exceeding it; calls past it are refused.
   */
  maxConcurrentStreams?: number
  /** Most open connections; past it a new connection gets a RESOURCE_EXHAUSTED error frame and is closed. */
  maxConnections?: number
  /** Time a client has to complete the TLS handshake, ms. */
  handshakeTimeout?: number
  /**
   * Time a connection may stay without any call before the server closes it, ms (0: never). One
   * timer checks every connection each `idleTimeout / 8` ms, so it closes up to an eighth later.
   */
  idleTimeout?: number
  /** Receive window per stream direction offered to srpc clients, bytes. */
  initialWindow?: number
  /** How far a stream's window may grow when its reader keeps up, bytes. */
  maxWindow?: number
  /** Payload compression for srpc clients that ask for it; `false` turns it off. */
  compression?: CompressionOptions | boolean
  /** Pings idle srpc clients; `false` turns it off. */
  keepalive?: { interval?: number; timeout?: number } | false
  /**
   * Run around every call (known route or not), before the concurrency limit, the middleware
   * and the handler; the first one outermost. Their `next` settles with the call's final code.
   */
  interceptors?: readonly Interceptor[]
  /**
   * A pino-compatible logger (`{ debug, info, warn, error }`, fields first): connections, refused
   * work, protocol errors and shutdown phases, with structured fields. Silent by default.
   */
  logger?: Logger
  /**
   * Serve `/srpc.reflection/list` (every route, its kind and schemas). Default: on, except when
   * `NODE_ENV` is `production`.
   */
  reflection?: boolean
  /**
   * Most `/srpc.health/watch` streams open at once; past it a watch fails RESOURCE_EXHAUSTED. Each
   * holds a worker while it runs (as every stream handler does): default a quarter of `workers`.
   */
  maxHealthWatchers?: number
}

export interface ResolvedServerOptions
  extends Required<Omit<ServerOptions, 'address' | 'compression' | 'keepalive' | 'tls'>> {
  tls: TlsOptions | undefined
  host: string
  port: number
  compression: ResolvedCompressionOptions
  keepalive: { interval: number; timeout: number } | false
}

export function resolveServerOptions(options: ServerOptions): ResolvedServerOptions {
  if (!options || typeof options !== 'object') invalidOption('options', 'must be an object')
  if (options.tls !== undefined && (options.tls === null || typeof options.tls !== 'object'))
    invalidOption('tls', 'must be an object (key and cert, see @srpc/tlsutil)')
  const { host, port } = parseAddress(options.address ?? '127.0.0.1:0', 'listen')
  const workers = positiveIntOption('workers', options.workers, DEFAULT_WORKERS)
  if (options.reflection !== undefined && typeof options.reflection !== 'boolean')
    invalidOption('reflection', `must be true or false, got ${JSON.stringify(options.reflection)}`)
  return {
    ...resolvePeerOptions(options, DEFAULT_KEEPALIVE),
    host,
    port,
    tls: options.tls,
    workers,
    reflection: options.reflection ?? defaultReflection(),
    maxHealthWatchers: positiveIntOption(
      'maxHealthWatchers',
      options.maxHealthWatchers,
      Math.max(1, Math.floor(workers / 4)),
    ),
    maxQueue: nonNegativeIntOption('maxQueue', options.maxQueue, DEFAULT_MAX_QUEUE),
    maxSessions: positiveIntOption('maxSessions', options.maxSessions, DEFAULT_MAX_SESSIONS),
    maxRouteLength: positiveIntOption('maxRouteLength', options.maxRouteLength, DEFAULT_MAX_TYPE_LENGTH),
    maxMetadataSize: positiveIntOption('maxMetadataSize', options.maxMetadataSize, DEFAULT_MAX_METADATA_SIZE),
    maxConcurrentStreams: positiveIntOption(
      'maxConcurrentStreams',
      options.maxConcurrentStreams,
      DEFAULT_MAX_CONCURRENT_STREAMS,
    ),
    maxConnections: positiveIntOption('maxConnections', options.maxConnections, DEFAULT_MAX_CONNECTIONS),
    handshakeTimeout: positiveIntOption(
      'handshakeTimeout',
      options.handshakeTimeout,
      DEFAULT_HANDSHAKE_TIMEOUT,
    ),
    idleTimeout: nonNegativeIntOption('idleTimeout', options.idleTimeout, DEFAULT_IDLE_TIMEOUT),
  }
}

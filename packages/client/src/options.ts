import type { ConnectionOptions } from 'node:tls'
import {
  type CompressionOptions,
  DEFAULT_INITIAL_WINDOW,
  DEFAULT_MAX_FRAME_SIZE,
  invalidOption,
  type KeepaliveOptions,
  parseAddress,
  positiveIntOption,
  type ResolvedCompressionOptions,
  resolveCompressionOptions,
  resolveKeepalive,
} from '@srpc/protocol'

export const DEFAULT_POOL_SIZE = 1
export const DEFAULT_CONNECT_TIMEOUT = 20_000
/** How long a client waits for the server's HELLO before treating it as a plain v1 peer. */
export const DEFAULT_HELLO_TIMEOUT = 2000
/** How long session.close() waits for the server to end its half before cancelling. */
export const DEFAULT_SESSION_CLOSE_TIMEOUT = 1000
/**
 * Idle time before the client pings its server, and how long it waits for the answer (ms).
 * Short enough to notice a vanished server well before TCP would; cheap (one small frame).
 */
export const DEFAULT_KEEPALIVE = { interval: 30_000, timeout: 10_000 }
/** Bytes buffered for one stream or session before the connection stops reading (v1 peers). */
export const DEFAULT_STREAM_HIGH_WATER_MARK = 1024 * 1024

export interface PoolOptions {
  /** `host:port` of the server (`[::1]:8443` for IPv6). */
  address: string
  /** Options for `tls.connect`: `ca` at least, to verify the server (see @srpc/tlsutil). */
  tls: ConnectionOptions
  /** Connections kept to the server. */
  size?: number
  /** Bound on one connection attempt (TCP + TLS handshake), ms. */
  connectTimeout?: number
  /** Largest frame accepted from the server, bytes. */
  maxFrameSize?: number
  /** Bytes buffered for one stream or session before reading from its connection pauses. */
  streamHighWaterMark?: number
  /** How long to wait for the server's capability answer before speaking plain v1 only, ms. */
  helloTimeout?: number
  /** Receive window per stream direction offered to the server, bytes. */
  initialWindow?: number
  /** Payload compression (used when the server agrees); `false` turns it off. */
  compression?: CompressionOptions | boolean
  /** Pings an idle connection to detect a server that vanished; `false` turns it off. */
  keepalive?: KeepaliveOptions | false
  /**
   * Accept any server certificate. Only for throwaway tests: it makes TLS worthless against an
   * active attacker. `tls.rejectUnauthorized: false` is refused unless this is also set.
   */
  dangerouslyDisableServerVerification?: boolean
}

export interface ResolvedPoolOptions
  extends Required<Omit<PoolOptions, 'address' | 'compression' | 'keepalive'>> {
  host: string
  port: number
  compression: ResolvedCompressionOptions
  keepalive: { interval: number; timeout: number } | false
}

export function resolvePoolOptions(options: PoolOptions): ResolvedPoolOptions {
  if (!options || typeof options !== 'object') invalidOption('options', 'must be an object')
  if (typeof options.address !== 'string') invalidOption('address', 'must be a "host:port" string')
  if (!options.tls || typeof options.tls !== 'object') {
    invalidOption('tls', 'is required: pass { ca } to verify the server (see @srpc/tlsutil)')
  }
  if (options.tls.rejectUnauthorized === false && options.dangerouslyDisableServerVerification !== true) {
    invalidOption(
      'tls.rejectUnauthorized',
      'is false, which turns server verification off; pass { ca } instead, or set dangerouslyDisableServerVerification: true if you really mean it',
    )
  }
  const { host, port } = parseAddress(options.address, 'connect')
  return {
    host,
    port,
    tls: {
      minVersion: 'TLSv1.2',
      ...options.tls,
      rejectUnauthorized: options.dangerouslyDisableServerVerification !== true,
    },
    dangerouslyDisableServerVerification: options.dangerouslyDisableServerVerification === true,
    size: positiveIntOption('size', options.size, DEFAULT_POOL_SIZE),
    connectTimeout: positiveIntOption('connectTimeout', options.connectTimeout, DEFAULT_CONNECT_TIMEOUT),
    maxFrameSize: positiveIntOption('maxFrameSize', options.maxFrameSize, DEFAULT_MAX_FRAME_SIZE),
    streamHighWaterMark: positiveIntOption(
      'streamHighWaterMark',
      options.streamHighWaterMark,
      DEFAULT_STREAM_HIGH_WATER_MARK,
    ),
    helloTimeout: positiveIntOption('helloTimeout', options.helloTimeout, DEFAULT_HELLO_TIMEOUT),
    initialWindow: positiveIntOption('initialWindow', options.initialWindow, DEFAULT_INITIAL_WINDOW),
    compression: resolveCompressionOptions(options.compression),
    keepalive: resolveKeepalive(options.keepalive, DEFAULT_KEEPALIVE),
  }
}

/** Validates a per-call timeout (ms). */
export function checkTimeout(timeout: number | undefined): void {
  if (timeout !== undefined && (typeof timeout !== 'number' || !(timeout > 0) || !Number.isFinite(timeout))) {
    invalidOption('timeout', `must be a positive number of milliseconds, got ${timeout}`)
  }
}

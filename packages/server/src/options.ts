import type { TlsOptions } from 'node:tls'
import {
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_MAX_METADATA_SIZE,
  DEFAULT_MAX_TYPE_LENGTH,
  invalidOption,
  nonNegativeIntOption,
  parseAddress,
  positiveIntOption,
} from '@srpc/protocol'

export const DEFAULT_WORKERS = 64
export const DEFAULT_MAX_QUEUE = 1024
export const DEFAULT_MAX_SESSIONS = 1024
export const DEFAULT_SHUTDOWN_TIMEOUT = 5000
/** Bytes queued for one stream or session before the connection stops reading (v1 peers). */
export const DEFAULT_STREAM_HIGH_WATER_MARK = 1024 * 1024

export interface ServerOptions {
  /** `host:port` to listen on (`[::1]:8443` for IPv6); port 0 picks a free port. Default `127.0.0.1:0`. */
  address?: string
  /** Options for `tls.createServer`: key and cert at least (see @srpc/tlsutil). */
  tls: TlsOptions
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
  /** Bytes buffered for one stream or session before reading from its connection pauses. */
  streamHighWaterMark?: number
}

export interface ResolvedServerOptions extends Required<Omit<ServerOptions, 'address'>> {
  host: string
  port: number
}

export function resolveServerOptions(options: ServerOptions): ResolvedServerOptions {
  if (!options || typeof options !== 'object') invalidOption('options', 'must be an object')
  if (!options.tls || typeof options.tls !== 'object')
    invalidOption('tls', 'is required (key and cert, see @srpc/tlsutil)')
  const { host, port } = parseAddress(options.address ?? '127.0.0.1:0', 'listen')
  return {
    host,
    port,
    tls: options.tls,
    workers: positiveIntOption('workers', options.workers, DEFAULT_WORKERS),
    maxQueue: nonNegativeIntOption('maxQueue', options.maxQueue, DEFAULT_MAX_QUEUE),
    maxSessions: positiveIntOption('maxSessions', options.maxSessions, DEFAULT_MAX_SESSIONS),
    maxFrameSize: positiveIntOption('maxFrameSize', options.maxFrameSize, DEFAULT_MAX_FRAME_SIZE),
    maxRouteLength: positiveIntOption('maxRouteLength', options.maxRouteLength, DEFAULT_MAX_TYPE_LENGTH),
    maxMetadataSize: positiveIntOption('maxMetadataSize', options.maxMetadataSize, DEFAULT_MAX_METADATA_SIZE),
    streamHighWaterMark: positiveIntOption(
      'streamHighWaterMark',
      options.streamHighWaterMark,
      DEFAULT_STREAM_HIGH_WATER_MARK,
    ),
  }
}

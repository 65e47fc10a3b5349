import {
  DEFAULT_INITIAL_WINDOW,
  DEFAULT_MAX_BUFFERED,
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_MAX_WINDOW,
  invalidOption,
  positiveIntOption,
  windowOption,
} from '@srpc/protocol'
import {
  type CompressionOptions,
  type ResolvedCompressionOptions,
  resolveCompressionOptions,
} from './compression'
import { type Interceptor, interceptorsOption } from './interceptor'
import { type Logger, loggerOption } from './logger'
import { DEFAULT_STREAM_HIGH_WATER_MARK } from './stream-receiver'

// Run-time options both ends resolve: addresses, keepalive and the per-connection options. The pure validators they use
// (invalidOption, positiveIntOption, …) live in @srpc/protocol, whose decoder checks its limits with them.

/**
 * Parses `host:port` or `[ipv6]:port`. A listener may leave the host empty (all interfaces)
 * and use port 0 (any free port); a client may not.
 */
export function parseAddress(address: string, role: 'listen' | 'connect'): { host: string; port: number } {
  const match = typeof address === 'string' ? /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(address) : null
  if (!match) invalidOption('address', `must be "host:port" or "[ipv6]:port", got ${JSON.stringify(address)}`)
  const port = Number(match[3])
  const host = match[1] ?? match[2]
  if (port > 65535 || (role === 'connect' && port === 0))
    invalidOption('address', `port ${port} is out of range`)
  if (host === '' && role === 'connect')
    invalidOption('address', `needs a host, got ${JSON.stringify(address)}`)
  return { host: host === '' ? '0.0.0.0' : host, port }
}

export interface KeepaliveOptions {
  /** Idle time before a ping, ms. */
  interval?: number
  /** How long to wait for the answer, ms. */
  timeout?: number
}

/** Resolves a keepalive option: `false` is off, an object overrides the defaults. */
export function resolveKeepalive(
  value: KeepaliveOptions | false | undefined,
  defaults: { interval: number; timeout: number },
): { interval: number; timeout: number } | false {
  if (value === false) return false
  return {
    interval: positiveIntOption('keepalive.interval', value?.interval, defaults.interval),
    timeout: positiveIntOption('keepalive.timeout', value?.timeout, defaults.timeout),
  }
}

/** The options both ends take for each connection, as both ends name them. */
export interface PeerOptions {
  maxFrameSize?: number
  streamHighWaterMark?: number
  maxBufferedBytes?: number
  initialWindow?: number
  maxWindow?: number
  compression?: CompressionOptions | boolean
  keepalive?: KeepaliveOptions | false
  interceptors?: readonly Interceptor[]
  logger?: Logger
}

export interface ResolvedPeerOptions {
  maxFrameSize: number
  streamHighWaterMark: number
  maxBufferedBytes: number
  initialWindow: number
  maxWindow: number
  compression: ResolvedCompressionOptions
  keepalive: { interval: number; timeout: number } | false
  interceptors: readonly Interceptor[]
  logger: Logger
}

/**
 * Resolves and checks the per-connection options that the pool and the server share, once, with
 * the same defaults and the same INVALID_ARGUMENT messages; only keepalive's defaults differ by end.
 */
export function resolvePeerOptions(
  options: PeerOptions,
  keepaliveDefaults: { interval: number; timeout: number },
): ResolvedPeerOptions {
  return {
    maxFrameSize: positiveIntOption('maxFrameSize', options.maxFrameSize, DEFAULT_MAX_FRAME_SIZE),
    streamHighWaterMark: positiveIntOption(
      'streamHighWaterMark',
      options.streamHighWaterMark,
      DEFAULT_STREAM_HIGH_WATER_MARK,
    ),
    maxBufferedBytes: positiveIntOption('maxBufferedBytes', options.maxBufferedBytes, DEFAULT_MAX_BUFFERED),
    initialWindow: windowOption('initialWindow', options.initialWindow, DEFAULT_INITIAL_WINDOW),
    maxWindow: windowOption('maxWindow', options.maxWindow, DEFAULT_MAX_WINDOW),
    compression: resolveCompressionOptions(options.compression),
    keepalive: resolveKeepalive(options.keepalive, keepaliveDefaults),
    interceptors: interceptorsOption(options.interceptors),
    logger: loggerOption(options.logger),
  }
}

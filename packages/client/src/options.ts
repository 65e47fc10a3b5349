import type { LookupAddress } from 'node:dns'
import type { ConnectionOptions } from 'node:tls'
import {
  type CompressionOptions,
  type Interceptor,
  type KeepaliveOptions,
  type Logger,
  parseAddress,
  type ResolvedCompressionOptions,
  resolvePeerOptions,
} from '@srpc/core'
import {
  Code,
  describeType,
  invalidOption,
  isCode,
  nonNegativeIntOption,
  positiveIntOption,
  RpcError,
} from '@srpc/protocol'
import { asGiven, type Connector, resolveConnector } from './connector'
import type { Resolver } from './resolver'

export const DEFAULT_POOL_SIZE = 1
/**
 * Bound on one connection attempt (TCP + TLS handshake), ms. gRPC uses 20 s for the internet; a
 * TLS handshake on a LAN takes milliseconds (2.5 ms p50, 4.8 ms p99 on loopback), and while an
 * attempt hangs on a dead host, calls that wait for it wait too. 5 s still leaves a loaded server
 * a thousand times the usual handshake.
 */
export const DEFAULT_CONNECT_TIMEOUT = 5000
/** A call() that sets no timeout fails with DEADLINE_EXCEEDED after this long (ms): no wait is unbounded. */
export const DEFAULT_CALL_TIMEOUT = 60_000
/** How long a client waits for the server's HELLO before treating it as a plain v1 peer. */
export const DEFAULT_HELLO_TIMEOUT = 2000
/** How long session.close() waits for the server to end its half before cancelling. */
export const DEFAULT_SESSION_CLOSE_TIMEOUT = 1000
/**
 * Idle time before the client pings its server, and how long it waits for the answer (ms).
 * Short enough to notice a vanished server well before TCP would; cheap (one small frame).
 */
export const DEFAULT_KEEPALIVE = { interval: 30_000, timeout: 10_000 }
/**
 * Delays between connection attempts, ms: the n-th consecutive failure waits a random time in
 * [initial, min(max, initial · multiplier^n)]. gRPC's 1 s ×1.6 up to 120 s, measured against
 * LAN outages (README "Reconnect"), returns clients 22 s late on average after a one-minute
 * outage; capping at 10 s brings that to 3.3 s, and a 250 ms start recovers a short blip 3×
 * sooner, at about 12 attempts per minute per connection while a server stays down.
 */
export const DEFAULT_BACKOFF: BackoffSchedule = { initial: 250, multiplier: 1.6, max: 10_000 }
/**
 * Probe of every ready connection: how often, and how long the answer may take (ms). The keepalive
 * cadence: on an srpc server the probe's PING stands in for the keepalive's (a connection that
 * heard a PONG is not idle), so health checks cost nothing more, and they measure the RTT.
 */
export const DEFAULT_HEALTH_CHECK = { interval: 30_000, timeout: 10_000 }
/** How calls are spread over ready connections. See README "Balancing" for the measurement. */
export const DEFAULT_BALANCING: Balancing = 'least-in-flight'
/** Calls waiting in the pool for a connection (or for room under the server's stream limit). */
export const DEFAULT_MAX_QUEUED = 1000
/** How often DNS names in `address`/`addresses` are looked up again, ms. */
export const DEFAULT_RESOLVE_INTERVAL = 30_000
/** A call waits for a connection only while the pool is still connecting, not after attempts failed. */
export const DEFAULT_WAIT_FOR_READY = false
/** Delays between the attempts of a call with a retry policy (full jitter, as for reconnects), ms. */
export const DEFAULT_RETRY_BACKOFF: BackoffSchedule = { initial: 100, multiplier: 2, max: 2000 }
/** Codes a retry policy retries unless it names its own. */
export const DEFAULT_RETRY_CODES: readonly Code[] = [Code.UNAVAILABLE]
/** Upper bound on `retry.maxAttempts` (the first attempt included). */
export const MAX_RETRY_ATTEMPTS = 10

export type Balancing = 'round-robin' | 'least-in-flight'

export interface BackoffSchedule {
  initial: number
  multiplier: number
  max: number
}

export interface BackoffOptions {
  /** First delay and floor of every delay, ms. */
  initial?: number
  /** Growth of the ceiling per consecutive failure (≥ 1). */
  multiplier?: number
  /** Largest delay, ms. */
  max?: number
}

export interface HealthCheckOptions {
  /** Time between two probes of a connection, ms. */
  interval?: number
  /** How long a probe may take before the connection counts as unhealthy, ms. */
  timeout?: number
  /**
   * A route to call as the probe (any server, v1 included). Without it, servers that negotiated
   * pings are pinged and plain v1 servers are not probed.
   */
  route?: string
  /**
   * Probe with the server's health service instead (`/srpc.health/check`, `{"service":…}`): the
   * probe passes only while the server answers SERVING for this service (`''`: the whole server),
   * so a server that began shutting down or was set NOT_SERVING leaves rotation (a probe the server
   * shed with RESOURCE_EXHAUSTED passes: busy is not unhealthy). Not with `route`.
   */
  service?: string
}

export interface RetryPolicy {
  /** Attempts in all, the first one included (at most MAX_RETRY_ATTEMPTS). */
  maxAttempts: number
  /** Delays between attempts; defaults to DEFAULT_RETRY_BACKOFF. */
  backoff?: BackoffOptions
  /** Codes worth another attempt; defaults to DEFAULT_RETRY_CODES (UNAVAILABLE). */
  codes?: readonly Code[]
}

export interface ResolvedRetryPolicy {
  maxAttempts: number
  backoff: BackoffSchedule
  codes: ReadonlySet<Code>
}

/** Resolves host names (`dns.lookup(host, { all: true })` by default). */
export type Lookup = (hostname: string) => Promise<readonly LookupAddress[]>

export interface PoolOptions {
  /** `host:port` of the server (`[::1]:8443` for IPv6); a host name is resolved to all its addresses. */
  address?: string
  /** Several servers (`host:port` each), instead of `address`: connections are spread over all of them. */
  addresses?: readonly string[]
  /**
   * Options for `tls.connect`: `ca` at least, to verify the server (see @srpc/tlsutil). Required
   * unless a `connector` is given, and refused with one (the connector secures its own stream).
   */
  tls?: ConnectionOptions
  /**
   * Opens the byte stream of each connection; TLS over TCP (`connectTls` with `tls` and
   * `connectTimeout`) by default. For tests, an in-memory pair (`memoryTransportPair` from
   * @srpc/core, the other end given to `server.accept`); later, other transports. Attempts are
   * still bounded by `connectTimeout`. With a connector, host names are not looked up (the
   * connector gets them as given) unless a `lookup` is passed too.
   */
  connector?: Connector
  /** Connections kept open, over all servers. */
  size?: number
  /** Bound on one connection attempt (TCP + TLS handshake), ms. */
  connectTimeout?: number
  /** Largest frame accepted from the server, bytes. */
  maxFrameSize?: number
  /** Bytes buffered for one stream or session before reading from its connection pauses. */
  streamHighWaterMark?: number
  /**
   * Bytes one session may queue for sending while the server's window or the socket holds them
   * back (each message counts 64 bytes more); a send past it fails with RESOURCE_EXHAUSTED and
   * is not sent. See `session.bufferedAmount`.
   */
  maxBufferedBytes?: number
  /** How long to wait for the server's capability answer before speaking plain v1 only, ms. */
  helloTimeout?: number
  /**
   * Timeout for `call()`s that set none, ms; 0 for none. Streams and sessions have no default
   * (they may rightly live for hours): give them a `timeout`, or rely on keepalive for dead peers.
   * From 10 s up it is enforced loosely (never early, up to a second late), which costs a call no
   * clock read; a `timeout` given per call is exact.
   */
  defaultTimeout?: number
  /** Receive window per stream direction offered to the server, bytes. */
  initialWindow?: number
  /** How far a stream's window may grow when its reader keeps up, bytes. */
  maxWindow?: number
  /** Payload compression (used when the server agrees); `false` turns it off. */
  compression?: CompressionOptions | boolean
  /** Pings an idle connection to detect a server that vanished; `false` turns it off. */
  keepalive?: KeepaliveOptions | false
  /**
   * Accept any server certificate. Only for throwaway tests: it makes TLS worthless against an
   * active attacker. `tls.rejectUnauthorized: false` is refused unless this is also set.
   */
  dangerouslyDisableServerVerification?: boolean
  /** Delays between connection attempts after failures, ms (exponential, full jitter). */
  backoff?: BackoffOptions
  /**
   * While no connection is ready after attempts failed, calls wait (until their deadline)
   * instead of failing at once with UNAVAILABLE. Per call: `{ waitForReady }`.
   */
  waitForReady?: boolean
  /** Periodic probe of every ready connection; `false` turns it off. */
  healthCheck?: HealthCheckOptions | false
  /** Spreading calls over ready connections. */
  balancing?: Balancing
  /** Calls allowed to wait in the pool; past it a call fails at once with RESOURCE_EXHAUSTED. */
  maxQueued?: number
  /** Time between DNS lookups of the host names in `address`/`addresses`, ms. */
  resolveInterval?: number
  /** Host name resolution, for service discovery other than DNS (and for tests). */
  lookup?: Lookup
  /**
   * Run around every call, stream and session, the first one outermost (logging, auth
   * metadata, tracing). See `Interceptor` in the README.
   */
  interceptors?: readonly Interceptor[]
  /**
   * A pino-compatible logger (`{ debug, info, warn, error }`, fields first): connections opened,
   * closed and failed, health checks, refused calls. Silent by default.
   */
  logger?: Logger
  /**
   * Where the servers are, instead of `address`/`addresses`: your own service discovery (see
   * `Resolver`). A dynamic one is asked again every `resolveInterval` ms and after failures.
   */
  resolver?: Resolver
}

/** A server to connect to, as given (its host may be a DNS name). */
export interface Target {
  host: string
  port: number
}

export interface ResolvedPoolOptions
  extends Required<
    Omit<
      PoolOptions,
      | 'address'
      | 'addresses'
      | 'compression'
      | 'keepalive'
      | 'backoff'
      | 'healthCheck'
      | 'lookup'
      | 'resolver'
      | 'tls'
      | 'connector'
    >
  > {
  /** TLS options of the default connector; undefined with a custom one. */
  tls: ConnectionOptions | undefined
  connector: Connector
  /** The first server (what `address` named). */
  host: string
  port: number
  /** Every server, in the order given. */
  targets: readonly Target[]
  compression: ResolvedCompressionOptions
  keepalive: { interval: number; timeout: number } | false
  backoff: BackoffSchedule
  healthCheck:
    | { interval: number; timeout: number; route: string | undefined; service: string | undefined }
    | false
  lookup: Lookup | undefined
  resolver: Resolver | undefined
}

export function resolvePoolOptions(options: PoolOptions): ResolvedPoolOptions {
  if (!options || typeof options !== 'object') invalidOption('options', 'must be an object')
  const targets = resolveTargets(options)
  if (options.lookup !== undefined && typeof options.lookup !== 'function') {
    invalidOption('lookup', 'must be a function (hostname) => Promise<{ address, family }[]>')
  }
  if (options.resolver !== undefined) checkResolver(options.resolver)
  const connectTimeout = positiveIntOption('connectTimeout', options.connectTimeout, DEFAULT_CONNECT_TIMEOUT)
  const { tls, connector } = resolveConnector(options, connectTimeout)
  return {
    ...resolvePeerOptions(options, DEFAULT_KEEPALIVE),
    host: targets[0]?.host ?? '',
    port: targets[0]?.port ?? 0,
    targets,
    tls,
    connector,
    dangerouslyDisableServerVerification: options.dangerouslyDisableServerVerification === true,
    size: positiveIntOption('size', options.size, DEFAULT_POOL_SIZE),
    connectTimeout,
    helloTimeout: positiveIntOption('helloTimeout', options.helloTimeout, DEFAULT_HELLO_TIMEOUT),
    defaultTimeout: nonNegativeIntOption('defaultTimeout', options.defaultTimeout, DEFAULT_CALL_TIMEOUT),
    backoff: resolveBackoff('backoff', options.backoff, DEFAULT_BACKOFF),
    waitForReady: booleanOption('waitForReady', options.waitForReady, DEFAULT_WAIT_FOR_READY),
    healthCheck: resolveHealthCheck(options.healthCheck),
    balancing: resolveBalancing(options.balancing),
    maxQueued: positiveIntOption('maxQueued', options.maxQueued, DEFAULT_MAX_QUEUED),
    resolveInterval: positiveIntOption('resolveInterval', options.resolveInterval, DEFAULT_RESOLVE_INTERVAL),
    lookup: options.lookup ?? (options.connector === undefined ? undefined : asGiven),
    resolver: options.resolver,
  }
}

function checkResolver(resolver: Resolver): void {
  if (!resolver || typeof resolver !== 'object' || typeof resolver.resolve !== 'function') {
    invalidOption('resolver', 'must be an object with resolve(): Promise<ResolvedAddress[]>')
  }
  if (typeof resolver.dynamic !== 'boolean')
    invalidOption('resolver', 'must say whether it is dynamic (a boolean)')
}

function resolveTargets(options: PoolOptions): Target[] {
  if (options.resolver !== undefined) {
    if (options.address !== undefined || options.addresses !== undefined || options.lookup !== undefined) {
      invalidOption('resolver', 'cannot be combined with address, addresses or lookup: it names the servers')
    }
    return []
  }
  if (options.address !== undefined && options.addresses !== undefined) {
    invalidOption('addresses', 'cannot be combined with address: pass one of them')
  }
  if (options.addresses !== undefined) {
    if (!Array.isArray(options.addresses) || options.addresses.length === 0) {
      invalidOption('addresses', 'must be a non-empty array of "host:port" strings')
    }
    return options.addresses.map((address) => parseAddress(address, 'connect'))
  }
  if (typeof options.address !== 'string') invalidOption('address', 'must be a "host:port" string')
  return [parseAddress(options.address, 'connect')]
}

/** A backoff schedule: positive integer delays, `max` ≥ `initial`, a finite multiplier ≥ 1. */
export function resolveBackoff(
  name: string,
  value: BackoffOptions | undefined,
  defaults: BackoffSchedule,
): BackoffSchedule {
  if (value !== undefined && (value === null || typeof value !== 'object')) {
    invalidOption(name, 'must be an object { initial, multiplier, max }')
  }
  const initial = positiveIntOption(`${name}.initial`, value?.initial, defaults.initial)
  const max = positiveIntOption(`${name}.max`, value?.max, Math.max(defaults.max, initial))
  const multiplier = value?.multiplier ?? defaults.multiplier
  if (typeof multiplier !== 'number' || !Number.isFinite(multiplier) || multiplier < 1) {
    invalidOption(`${name}.multiplier`, `must be a finite number ≥ 1, got ${multiplier}`)
  }
  if (max < initial) invalidOption(`${name}.max`, `must be ≥ ${name}.initial (${initial}), got ${max}`)
  return { initial, multiplier, max }
}

function resolveHealthCheck(
  value: HealthCheckOptions | false | undefined,
): ResolvedPoolOptions['healthCheck'] {
  if (value === false) return false
  if (value !== undefined && (value === null || typeof value !== 'object')) {
    invalidOption('healthCheck', 'must be an object { interval, timeout, route } or false')
  }
  const route = value?.route
  if (route !== undefined && (typeof route !== 'string' || route.length === 0)) {
    invalidOption('healthCheck.route', `must be a non-empty string, got ${JSON.stringify(route)}`)
  }
  const service = value?.service
  if (service !== undefined && typeof service !== 'string')
    invalidOption('healthCheck.service', `must be a string, got ${JSON.stringify(service)}`)
  if (service !== undefined && route !== undefined)
    invalidOption('healthCheck.service', 'cannot be combined with healthCheck.route: pick one probe')
  return {
    interval: positiveIntOption('healthCheck.interval', value?.interval, DEFAULT_HEALTH_CHECK.interval),
    timeout: positiveIntOption('healthCheck.timeout', value?.timeout, DEFAULT_HEALTH_CHECK.timeout),
    route,
    service,
  }
}

function resolveBalancing(value: Balancing | undefined): Balancing {
  if (value === undefined) return DEFAULT_BALANCING
  if (value !== 'round-robin' && value !== 'least-in-flight') {
    invalidOption('balancing', `must be 'round-robin' or 'least-in-flight', got ${JSON.stringify(value)}`)
  }
  return value
}

function booleanOption(name: string, value: boolean | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') invalidOption(name, `must be true or false, got ${JSON.stringify(value)}`)
  return value
}

/** Validates a per-call retry policy (called only for calls that carry one). */
export function resolveRetryPolicy(policy: RetryPolicy): ResolvedRetryPolicy {
  if (policy === null || typeof policy !== 'object')
    invalidOption('retry', 'must be an object { maxAttempts }')
  const maxAttempts = positiveIntOption('retry.maxAttempts', policy.maxAttempts, 0)
  if (maxAttempts === 0) invalidOption('retry.maxAttempts', 'is required')
  if (maxAttempts > MAX_RETRY_ATTEMPTS) {
    invalidOption('retry.maxAttempts', `must be at most ${MAX_RETRY_ATTEMPTS}, got ${maxAttempts}`)
  }
  const codes = policy.codes ?? DEFAULT_RETRY_CODES
  if (!Array.isArray(codes) || codes.some((code) => !isCode(code))) {
    invalidOption('retry.codes', 'must be an array of status codes (Code.UNAVAILABLE, …)')
  }
  return {
    maxAttempts,
    backoff: resolveBackoff('retry.backoff', policy.backoff, DEFAULT_RETRY_BACKOFF),
    codes: new Set(codes),
  }
}

/** Validates the per-call `waitForReady`. */
export function checkWaitForReady(value: unknown): void {
  if (value !== undefined && typeof value !== 'boolean') {
    invalidOption('waitForReady', `must be true or false, got ${JSON.stringify(value)}`)
  }
}

/** Per-call options must be an object: plain JavaScript can pass anything. */
export function checkCallOptions(options: unknown): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new RpcError(Code.INVALID_ARGUMENT, `options must be an object, got ${describeType(options)}`)
  }
}

/** Validates a per-call timeout (ms). */
export function checkTimeout(timeout: number | undefined): void {
  if (timeout !== undefined && (typeof timeout !== 'number' || !(timeout > 0) || !Number.isFinite(timeout))) {
    invalidOption('timeout', `must be a positive number of milliseconds, got ${timeout}`)
  }
}

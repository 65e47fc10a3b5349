import type { ConnectionOptions } from 'node:tls'
import { connectTls, fromPlatformError, type Transport, withSharedContext } from '@srpc/core'
import { Code, formatMs, invalidOption, RpcError } from '@srpc/protocol'
import type { ConnectTarget } from './connection'
import type { Lookup, PoolOptions, ResolvedPoolOptions } from './options'

/** Where a connector dials: one address of the pool (a host name when nothing resolved it). */
export interface ConnectorTarget {
  host: string
  port: number
  /** The DNS name the address came from (TLS server name), when it came from one. */
  servername?: string
}

/**
 * Opens one connection's byte stream. The pool aborts `signal` when it no longer wants the
 * attempt (pool closed, `connectTimeout` passed); the connector should then give up and reject.
 * A rejection fails the attempt: an RpcError as it is, anything else as UNAVAILABLE with the
 * original as `cause`.
 */
export type Connector = (target: ConnectorTarget, options: { signal: AbortSignal }) => Promise<Transport>

/** The TLS options and the default connector over them, or the user's connector (then no `tls`). */
export function resolveConnector(
  options: PoolOptions,
  connectTimeout: number,
): { tls: ConnectionOptions | undefined; connector: Connector } {
  if (options.connector !== undefined) {
    if (typeof options.connector !== 'function') {
      invalidOption('connector', 'must be a function (target, { signal }) => Promise<Transport>')
    }
    if (options.tls !== undefined) {
      invalidOption('tls', 'has no effect with a connector: pass the TLS options to the connector itself')
    }
    return { tls: undefined, connector: options.connector }
  }
  if (!options.tls || typeof options.tls !== 'object') {
    invalidOption('tls', 'is required: pass { ca } to verify the server (see @srpc/tlsutil)')
  }
  if (options.tls.rejectUnauthorized === false && options.dangerouslyDisableServerVerification !== true) {
    invalidOption(
      'tls.rejectUnauthorized',
      'is false, which turns server verification off; pass { ca } instead, or set dangerouslyDisableServerVerification: true if you really mean it',
    )
  }
  const tls = withSharedContext({
    minVersion: 'TLSv1.2',
    ...options.tls,
    rejectUnauthorized: options.dangerouslyDisableServerVerification !== true,
  })
  return { tls, connector: (target, { signal }) => connectTls(target, { tls, connectTimeout, signal }) }
}

/** A connector dials names itself: the pool hands them over unresolved. */
export const asGiven: Lookup = (hostname) => Promise.resolve([{ address: hostname, family: 0 }])

/**
 * One attempt: asks the pool's connector for a transport within `connectTimeout`. Failures are
 * RpcErrors: the connector's own, CANCELLED when `target.signal` aborts, UNAVAILABLE on timeout
 * and ("cannot connect to host:port: …") for anything else it threw.
 */
export function dial(options: ResolvedPoolOptions, target: ConnectTarget): Promise<Transport> {
  const { host, port, signal } = target
  if (signal?.aborted) return Promise.reject(new RpcError(Code.CANCELLED, 'connection attempt cancelled'))
  return new Promise((resolve, reject) => {
    // The connector sees one signal: aborted by the caller's, or when connectTimeout passes.
    const attempt = new AbortController()
    let settled = false
    const settle = () => {
      settled = true
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
    }
    const fail = (err: unknown) => {
      if (settled) return
      settle()
      attempt.abort(err)
      reject(fromPlatformError(err, `cannot connect to ${host}:${port}`))
    }
    const onAbort = () => fail(new RpcError(Code.CANCELLED, 'connection attempt cancelled'))
    const timer = setTimeout(
      () =>
        fail(new RpcError(Code.UNAVAILABLE, `connect timed out after ${formatMs(options.connectTimeout)}`)),
      options.connectTimeout,
    )
    signal?.addEventListener('abort', onAbort, { once: true })
    let dialing: Promise<Transport>
    try {
      dialing = options.connector({ host, port, servername: target.servername }, { signal: attempt.signal })
    } catch (err) {
      dialing = Promise.reject(err)
    }
    Promise.resolve(dialing).then((transport) => {
      if (settled) {
        // Too late (timed out or cancelled): nobody will use it.
        if (isTransport(transport)) transport.destroy()
        return
      }
      if (!isTransport(transport)) {
        fail(new RpcError(Code.INVALID_ARGUMENT, 'connector resolved with something that is not a Transport'))
        return
      }
      settle()
      resolve(transport)
    }, fail)
  })
}

function isTransport(value: unknown): value is Transport {
  const t = value as Transport | null | undefined
  return typeof t?.start === 'function' && typeof t.write === 'function' && typeof t.destroy === 'function'
}

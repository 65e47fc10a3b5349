import type { ConnectionOptions } from 'node:tls'
import { connectTls, type Transport, withSharedContext } from '@srpc/core'
import { invalidOption } from '@srpc/protocol'
import type { Lookup, PoolOptions } from './options'

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

import { Code, RpcError } from '@srpc/protocol'
import type { ClientConnection } from './connection'

export interface HealthCheck {
  interval: number
  timeout: number
  route: string | undefined
  /** Ask the server's health service about this service instead (`''`: the whole server). */
  service?: string | undefined
}

/** The server's health route (see @srpc/server's HealthService for the wire format). */
export const HEALTH_CHECK_ROUTE = '/srpc.health/check'

export interface HealthHooks {
  /** The connections to probe now (the ones in rotation). */
  connections(): Iterable<ClientConnection>
  /** A probe answered in `rtt` ms. */
  passed(connection: ClientConnection, rtt: number): void
  /** A probe failed on a connection that is still open. */
  failed(connection: ClientConnection, error: RpcError): void
}

/**
 * Probes every ready connection once per interval, from one timer for the whole pool. The probe
 * is the health route when one is configured (it proves the application serves, and works with
 * plain v1 servers), otherwise a PING where the server negotiated pings; a v1 server without a
 * route is not probed (its keepalive is TCP's).
 */
export class HealthMonitor {
  readonly check: HealthCheck
  #hooks: HealthHooks
  #timer: NodeJS.Timeout | undefined
  /** Connections with a probe under way; only while there are any (most of the time there are none). */
  #probing: Set<ClientConnection> | undefined

  constructor(check: HealthCheck, hooks: HealthHooks) {
    this.check = check
    this.#hooks = hooks
  }

  start(): void {
    this.stop()
    this.#timer = setTimeout(() => this.#tick(), this.check.interval)
    this.#timer.unref()
  }

  stop(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #probed(connection: ClientConnection): void {
    this.#probing?.delete(connection)
    if (this.#probing?.size === 0) this.#probing = undefined
  }

  #tick(): void {
    for (const connection of this.#hooks.connections()) {
      if (this.#probing?.has(connection)) continue
      const probe = probeConnection(connection, this.check)
      if (probe === undefined) continue
      this.#probing ??= new Set()
      this.#probing.add(connection)
      probe.then(
        (rtt) => {
          this.#probed(connection)
          this.#hooks.passed(connection, rtt)
        },
        (err: unknown) => {
          this.#probed(connection)
          if (connection.state === 'ready')
            this.#hooks.failed(connection, RpcError.from(err, Code.UNAVAILABLE))
        },
      )
    }
    this.start()
  }
}

/**
 * One probe: resolves with the round trip in ms, rejects when the connection is unhealthy, or
 * returns undefined when this connection cannot be probed. A health route that answers with an
 * error other than UNAVAILABLE still proves the server alive (it answered); UNAVAILABLE is its
 * way to say "not serving".
 */
export function probeConnection(
  connection: ClientConnection,
  check: HealthCheck,
): Promise<number> | undefined {
  if (check.service !== undefined) return checkHealthService(connection, check.service, check.timeout)
  if (check.route !== undefined) {
    const started = performance.now()
    return connection.call(check.route, EMPTY, { timeout: check.timeout }).then(
      () => performance.now() - started,
      (err: unknown) => {
        if (RpcError.is(err) && err.code !== Code.UNAVAILABLE && err.code !== Code.DEADLINE_EXCEEDED) {
          return performance.now() - started
        }
        throw err
      },
    )
  }
  if (!connection.features.has('ping')) return undefined
  return connection.ping(check.timeout)
}

/**
 * One probe of the server's health service: passes on `{"status":"SERVING"}`, and on
 * RESOURCE_EXHAUSTED (the server answered but shed the probe with the rest of its load: closing
 * the connection would only add reconnects to a busy server). NOT_SERVING, an unknown service
 * (NOT_FOUND), a server without the service and a probe that got no answer fail it.
 */
function checkHealthService(connection: ClientConnection, service: string, timeout: number): Promise<number> {
  const started = performance.now()
  const request = Buffer.from(JSON.stringify({ service }))
  const busy = (err: unknown): number => {
    if (RpcError.is(err) && err.code === Code.RESOURCE_EXHAUSTED) return performance.now() - started
    throw err
  }
  return connection.call(HEALTH_CHECK_ROUTE, request, { timeout }).then((reply) => {
    let status: unknown
    try {
      status = (JSON.parse(reply.toString('utf8')) as { status?: unknown })?.status
    } catch {
      status = undefined
    }
    if (status !== 'SERVING') {
      throw new RpcError(Code.UNAVAILABLE, `health of ${JSON.stringify(service)} is ${String(status)}`)
    }
    return performance.now() - started
  }, busy)
}

const EMPTY = Buffer.alloc(0)

import { Code, type RpcError } from '@srpc/protocol'
import type { EventEmitter } from 'eventemitter3'
import { Backoff } from './backoff'
import type { ClientConnection } from './connection'
import type { PoolEvents } from './connectivity-state'
import type { BackoffSchedule } from './options'
import type { ResolvedAddress } from './resolver'
import { connectThen, type Dial } from './subchannel'

/** A server address, with what the balancer learned about it. */
export interface Endpoint extends ResolvedAddress {
  /** Failed its last connection attempt: slots go elsewhere until a probe gets through. */
  ejected: boolean
  /** Spaces the probes of an ejected server while other servers carry the load. */
  backoff: Backoff
  probeTimer: NodeJS.Timeout | undefined
  probing: AbortController | undefined
  lastTried: number
  /** When it was last admitted into rotation (created, or back after a probe). */
  admittedAt: number
  /**
   * Its last attempt failed with a configuration error (UNAUTHENTICATED), already reported:
   * redialing cannot fix it, so calls do not wait for it. Cleared once the server answers.
   */
  misconfigured: RpcError | undefined
}

export function newEndpoint(address: ResolvedAddress, schedule: BackoffSchedule): Endpoint {
  return {
    key: address.key,
    host: address.host,
    port: address.port,
    servername: address.servername,
    weight: address.weight,
    ejected: false,
    backoff: new Backoff(schedule),
    probeTimer: undefined,
    probing: undefined,
    lastTried: Number.NEGATIVE_INFINITY,
    admittedAt: performance.now(),
    misconfigured: undefined,
  }
}

export interface EjectionHooks {
  readonly connect: Dial
  readonly events: EventEmitter<PoolEvents>
  /** `helloTimeout`: a server failing within that many ms of its readmission keeps its growing probe backoff. */
  readonly options: { readonly helloTimeout: number }
  readonly closed: boolean
  readonly endpoints: readonly Endpoint[]
  /** A probe got through: the connection is the balancer's to place. */
  probed(connection: ClientConnection, endpoint: Endpoint): void
  /** Connections in rotation. */
  readonly ready: readonly unknown[]
  /** Every server failed its last attempt with this configuration error. */
  misconfigured(error: RpcError): void
  /** An attempt to reach `endpoint` worked or failed (the resolver may fail over on it). */
  reachability(endpoint: Endpoint, reachable: boolean): void
}

/**
 * Ejection of failing servers (grpc-js: outlier detection): a server that failed an attempt gets
 * no new slots. While some server works, each ejected one is probed on its own backoff schedule
 * and readmitted when a probe connects; when none works the slots' own attempts do that job.
 */
export class Ejection {
  #hooks: EjectionHooks

  constructor(hooks: EjectionHooks) {
    this.#hooks = hooks
  }

  eject(endpoint: Endpoint, error: RpcError): void {
    if (endpoint.ejected) return
    endpoint.ejected = true
    // A server that worked for a while starts its probes from the first step; one that failed
    // again right after coming back keeps its growing backoff.
    if (performance.now() - endpoint.admittedAt >= this.#hooks.options.helloTimeout) endpoint.backoff.reset()
    this.#hooks.events.emit('unhealthy', { address: endpoint.key, slot: undefined, error })
    this.sync()
  }

  readmit(endpoint: Endpoint): void {
    this.#hooks.reachability(endpoint, true)
    if (!endpoint.ejected) return
    endpoint.ejected = false
    endpoint.admittedAt = performance.now()
    clearTimeout(endpoint.probeTimer)
    endpoint.probeTimer = undefined
    this.#hooks.events.emit('healthy', { address: endpoint.key })
    this.sync()
  }

  /** Arms the probe of every ejected server while some server is healthy; disarms the others. */
  sync(): void {
    const endpoints = this.#hooks.endpoints
    const someHealthy = endpoints.some((e) => !e.ejected)
    for (const endpoint of endpoints) {
      const wanted = someHealthy && endpoint.ejected && !this.#hooks.closed
      if (wanted && endpoint.probeTimer === undefined && endpoint.probing === undefined) {
        endpoint.probeTimer = setTimeout(() => this.#probe(endpoint), endpoint.backoff.next())
        endpoint.probeTimer.unref()
      } else if (!wanted && endpoint.probeTimer !== undefined) {
        clearTimeout(endpoint.probeTimer)
        endpoint.probeTimer = undefined
      }
    }
  }

  /**
   * Tells observers that an attempt failed. A configuration error (UNAUTHENTICATED) is told once
   * per server: the pool keeps redialing with backoff (a renewed certificate fixes it without a
   * restart, as with gRPC), and every redial would repeat it. Once every server failed that way,
   * waiting calls fail now with it instead of at their deadline.
   */
  reportFailure(endpoint: Endpoint | undefined, error: RpcError): void {
    const hooks = this.#hooks
    if (endpoint !== undefined) hooks.reachability(endpoint, false)
    if (error.code !== Code.UNAUTHENTICATED || endpoint === undefined) {
      hooks.events.emit('error', error)
      return
    }
    const repeated = endpoint.misconfigured !== undefined
    endpoint.misconfigured = error
    if (!repeated) hooks.events.emit('error', error)
    const misconfigured = configurationError(hooks.endpoints, hooks.ready.length)
    if (misconfigured !== undefined) hooks.misconfigured(misconfigured)
  }

  /** Stops the probes of `endpoints` (the pool closes, or the servers are gone). */
  stop(endpoints: Iterable<Endpoint>): void {
    for (const endpoint of endpoints) {
      clearTimeout(endpoint.probeTimer)
      endpoint.probeTimer = undefined
      endpoint.probing?.abort()
      endpoint.probing = undefined
    }
  }

  #probe(endpoint: Endpoint): void {
    endpoint.probeTimer = undefined
    const hooks = this.#hooks
    if (hooks.closed || !endpoint.ejected || !hooks.endpoints.includes(endpoint)) return
    const probing = new AbortController()
    endpoint.probing = probing
    endpoint.lastTried = performance.now()
    connectThen(
      hooks.connect,
      endpoint,
      probing,
      (connection) => {
        endpoint.probing = undefined
        this.readmit(endpoint)
        hooks.probed(connection, endpoint)
      },
      (error) => {
        endpoint.probing = undefined
        this.reportFailure(endpoint, error)
        this.sync()
      },
    )
  }
}

/**
 * The configuration error calls get when nothing is ready and every server failed its last
 * attempt with one (see Endpoint.misconfigured); undefined while some server may still work.
 */
export function configurationError(endpoints: readonly Endpoint[], ready: number): RpcError | undefined {
  if (ready > 0) return undefined
  let error: RpcError | undefined
  for (const endpoint of endpoints) {
    if (endpoint.misconfigured === undefined) return undefined
    error ??= endpoint.misconfigured
  }
  return error
}

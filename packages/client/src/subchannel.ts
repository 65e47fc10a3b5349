import { fromPlatformError } from '@srpc/core'
import { Code, RpcError } from '@srpc/protocol'
import type { EventEmitter } from 'eventemitter3'
import { Backoff } from './backoff'
import type { ClientConnection, ConnectionEvents } from './connection'
import type { PoolEvents } from './connectivity-state'
import type { Endpoint } from './ejection'
import { type HealthCheck, HealthMonitor } from './health'
import type { ResolvedPoolOptions } from './options'
import type { ResolvedAddress } from './resolver'

/** One slot of the pool: a connection in rotation, an attempt under way, a wait before the next one. */
export type SlotState = 'idle' | 'connecting' | 'ready' | 'transient_failure' | 'closed'

/** Numbers for dashboards, one entry per slot. */
export interface ConnectionStats {
  slot: number
  /** The server this slot is connected (or connecting) to. */
  address: string | undefined
  state: SlotState
  inFlight: number
  /** Round trip of the last health probe, ms. */
  lastRtt: number | undefined
  /** Failed connection attempts and failed health checks of this slot so far. */
  failures: number
}

/**
 * Opens one connection to `address`, which reports its close, GOAWAY and freed room to `events`;
 * aborting `signal` ends the attempt with CANCELLED. The balancer uses `ClientConnection.connect`
 * with the pool's options; tests inject a fake.
 */
export type ConnectFn = (
  address: ResolvedAddress,
  signal: AbortSignal,
  events: ConnectionEvents,
) => Promise<ClientConnection>

/** A `ConnectFn` with the balancer's connection events bound. */
export type Dial = (address: ResolvedAddress, signal: AbortSignal) => Promise<ClientConnection>

/**
 * The one "connect, then handle the result" of the pool (slots, probes, rebalancing): `connected`
 * gets the connection, `failed` the failure as an RpcError. Whoever makes an attempt useless
 * (close, a retired slot, a server gone from DNS) aborts it: then neither runs, and a connection
 * that arrives anyway is closed.
 */
export function connectThen(
  connect: Dial,
  address: ResolvedAddress,
  attempt: AbortController,
  connected: (connection: ClientConnection) => void,
  failed: (error: RpcError) => void,
): void {
  connect(address, attempt.signal).then(
    (connection) => {
      if (attempt.signal.aborted)
        connection.destroy(new RpcError(Code.CANCELLED, 'connection no longer needed'))
      else connected(connection)
    },
    (err: unknown) => {
      if (!attempt.signal.aborted) failed(fromPlatformError(err, 'connection attempt failed'))
    },
  )
}

/** What a subchannel needs from the load balancer that owns it. */
export interface SubchannelHost {
  readonly options: ResolvedPoolOptions
  readonly events: EventEmitter<PoolEvents>
  readonly connect: Dial
  /** close() or destroy() was called. */
  readonly closed: boolean
  /** Connections in rotation (shared with the picker). */
  readonly ready: ClientConnection[]
  /** Calls waiting in the pool: a backoff timer keeps the process alive while there are any. */
  readonly queued: number
  /** An address lookup is under way. */
  readonly resolving: boolean
  /** Why no address is known, when a lookup failed. */
  readonly resolveError: RpcError | undefined
  /** The last failure of a connection or an attempt: what fail-fast calls are told. */
  lastError: RpcError | undefined
  /** The server for the next attempt of `slot`, undefined when none is known. */
  choose(slot: Subchannel): Endpoint | undefined
  /** Some healthy server that `slot` has not tried in this round. */
  hasUntried(slot: Subchannel): boolean
  own(connection: ClientConnection, slot: Subchannel | undefined): void
  attemptFailed(endpoint: Endpoint | undefined, error: RpcError): void
  readmit(endpoint: Endpoint): void
  /** A slot waits before its next attempt. */
  backedOff(): void
  /** Every attempt of a slot in this round failed with `error` at the end. */
  roundFailed(error: RpcError): void
  rotated(): void
  changed(): void
}

/**
 * One slot's connection life (grpc-js calls it a subchannel): dial the server the balancer
 * chooses, move on to an untried one or wait with backoff after a failure, put the connection
 * into rotation, notice its loss and replace it.
 */
export class Subchannel {
  readonly id: number
  endpoint: Endpoint | undefined
  /** The connection in rotation. */
  connection: ClientConnection | undefined
  dialing: AbortController | undefined
  /** Waiting before the next attempt. */
  timer: NodeJS.Timeout | undefined
  awaitingAddresses = false
  /** Servers tried since the last success or the last wait: a failure moves on to an untried one. */
  tried: Endpoint[] = []
  failures = 0
  lastRtt: number | undefined
  retired = false
  readonly backoff: Backoff
  #host: SubchannelHost
  /** When its connection was established. */
  #connectedAt = Number.NEGATIVE_INFINITY
  /** The connection `connect` was emitted for, until `disconnect` is. */
  #announced: ClientConnection | undefined
  /** When a lost connection was last replaced without waiting: at most once per backoff.initial. */
  #lastFreeRedial = Number.NEGATIVE_INFINITY
  /** The wait under way follows a graceful loss (GOAWAY, clean close), not a failure. */
  #graceful = false

  constructor(id: number, host: SubchannelHost) {
    this.id = id
    this.#host = host
    this.backoff = new Backoff(host.options.backoff)
  }

  get state(): SlotState {
    if (this.#host.closed) return 'closed'
    if (this.connection) return this.#host.ready.includes(this.connection) ? 'ready' : 'connecting'
    if (this.dialing || this.awaitingAddresses) return 'connecting'
    if (this.timer) return this.#graceful ? 'connecting' : 'transient_failure'
    return 'idle'
  }

  stats(): ConnectionStats {
    return {
      slot: this.id,
      address: this.endpoint?.key,
      state: this.state,
      inFlight: this.connection?.inFlight ?? 0,
      lastRtt: this.lastRtt,
      failures: this.failures,
    }
  }

  dial(): void {
    this.timer = undefined
    this.#graceful = false
    const host = this.#host
    if (host.closed || this.retired || this.dialing || this.connection) return
    const endpoint = host.choose(this)
    if (endpoint === undefined) {
      if (host.resolving) {
        this.awaitingAddresses = true
        return
      }
      this.#attemptFailed(
        undefined,
        host.resolveError ?? new RpcError(Code.UNAVAILABLE, 'no address to connect to'),
      )
      return
    }
    this.awaitingAddresses = false
    this.endpoint = endpoint
    this.tried.push(endpoint)
    endpoint.lastTried = performance.now()
    const dialing = new AbortController()
    this.dialing = dialing
    connectThen(
      host.connect,
      endpoint,
      dialing,
      (connection) => this.#dialed(dialing, endpoint, connection),
      (error) => this.#dialFailed(dialing, endpoint, error),
    )
    host.changed()
  }

  /** Stops waiting and dialing (the pool closes, or this slot is retired or redirected). */
  stop(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.#graceful = false
    this.dialing?.abort()
    this.dialing = undefined
  }

  retire(): void {
    this.retired = true
    this.stop()
    this.awaitingAddresses = false
    this.detach()
  }

  refTimer(ref: boolean): void {
    if (this.timer === undefined) return
    if (ref) this.timer.ref()
    else this.timer.unref()
  }

  #dialed(dialing: AbortController, endpoint: Endpoint, connection: ClientConnection): void {
    if (this.dialing !== dialing || this.#host.closed || this.retired) {
      connection.destroy(new RpcError(Code.CANCELLED, 'connection no longer needed'))
      return
    }
    this.dialing = undefined
    if (connection.state === 'closed') {
      this.#attemptFailed(endpoint, new RpcError(Code.UNAVAILABLE, 'connection closed during setup'))
      return
    }
    this.tried = []
    this.#host.readmit(endpoint)
    this.adopt(connection, endpoint)
  }

  #dialFailed(dialing: AbortController, endpoint: Endpoint, error: RpcError): void {
    if (this.dialing !== dialing) return
    this.dialing = undefined
    if (this.#host.closed || this.retired) return
    this.#attemptFailed(endpoint, error)
  }

  /** An attempt failed (or its connection was dropped before the server answered): try elsewhere, or wait. */
  #attemptFailed(endpoint: Endpoint | undefined, error: RpcError): void {
    this.failures++
    if (endpoint !== undefined && !this.tried.includes(endpoint)) this.tried.push(endpoint)
    this.#host.attemptFailed(endpoint, error)
    // Another server not tried yet in this round: go there now, no need to wait.
    if (this.#host.hasUntried(this)) {
      this.dial()
      return
    }
    this.#backOff(error)
    this.#host.roundFailed(error)
  }

  /**
   * Waits one backoff step before the next attempt. After a failure the slot is in
   * TRANSIENT_FAILURE (calls that do not wait for ready fail fast); after a graceful loss
   * (`graceful`: the server said GOAWAY or closed cleanly, again within backoff.initial, as in a
   * rolling restart) it only paces the reconnect and stays CONNECTING: calls wait for it.
   */
  #backOff(error: RpcError | undefined, graceful = false): void {
    const host = this.#host
    if (host.closed || this.retired) return
    const delay = this.backoff.next()
    this.tried = []
    this.#graceful = graceful
    this.timer = setTimeout(() => this.dial(), delay)
    if (host.queued === 0) this.timer.unref()
    host.events.emit('reconnecting', { slot: this.id, attempt: this.backoff.failures, delay, error })
    if (graceful) host.changed()
    else host.backedOff()
  }

  /**
   * The connection is gone. If it was a success (the server answered on it, or it stayed up
   * helloTimeout ms) the backoff starts over and the slot reconnects at once (at most once per
   * backoff.initial). A connection dropped before the server said anything, or closed with
   * RESOURCE_EXHAUSTED (a server at its connection limit), counts as a failed attempt: the
   * backoff grows instead of turning into a reconnect loop.
   */
  lost(connection: ClientConnection, error: RpcError | undefined): void {
    const now = performance.now()
    const succeeded = connection.answered || now - this.#connectedAt >= this.#host.options.helloTimeout
    // Refused by a server that is shutting down (a worker draining in a rolling restart took the
    // connection as it stopped): graceful, as a GOAWAY is; the backoff still paces the redials.
    const wentAway = connection.wentAway && error?.code === Code.UNAVAILABLE
    if ((!succeeded && !wentAway) || error?.code === Code.RESOURCE_EXHAUSTED) {
      this.#attemptFailed(
        this.endpoint,
        error ?? new RpcError(Code.UNAVAILABLE, 'the server closed the connection before answering'),
      )
      return
    }
    if (succeeded) {
      this.backoff.reset()
      if (this.endpoint !== undefined) this.endpoint.misconfigured = undefined
    }
    if (now - this.#lastFreeRedial >= this.#host.options.backoff.initial) {
      this.#lastFreeRedial = now
      this.dial()
    } else {
      this.#backOff(error, error === undefined || wentAway)
    }
  }

  adopt(connection: ClientConnection, endpoint: Endpoint): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.#graceful = false
    this.awaitingAddresses = false
    this.#connectedAt = performance.now()
    this.#host.own(connection, this)
    this.connection = connection
    this.endpoint = endpoint
    // The server spoke on it: its certificates work (again), a later failure is reported anew.
    connection.negotiated.then(() => {
      if (connection.answered) endpoint.misconfigured = undefined
    })
    if (connection.answered || !this.#host.ready.some((c) => c.answered)) {
      this.#rotate(connection)
      return
    }
    // Other connections already carry calls: this one waits until the server speaks on it (one
    // round trip), so a server that accepts and then drops it (at its connection limit) fails no call.
    connection.negotiated.then(() => {
      if (this.connection === connection && connection.available && !this.#host.closed)
        this.#rotate(connection)
    })
  }

  /** Into rotation: calls may use it from now on. */
  #rotate(connection: ClientConnection): void {
    this.#announced = connection
    this.#host.ready.push(connection)
    this.#host.events.emit('connect', { slot: this.id, address: this.endpoint!.key })
    this.#host.rotated()
  }

  /** Takes the connection out of rotation; it finishes the calls it has, then closes. */
  detach(): void {
    const connection = this.connection
    if (connection === undefined) return
    this.connection = undefined
    removeFrom(this.#host.ready, connection)
    this.#host.own(connection, undefined)
    connection.drain()
    this.#announceLoss(connection, undefined)
  }

  /** `disconnect` for a connection that `connect` announced. */
  #announceLoss(connection: ClientConnection, error: RpcError | undefined): void {
    if (this.#announced !== connection) return
    this.#announced = undefined
    this.#host.events.emit('disconnect', { slot: this.id, address: this.endpoint?.key, error })
  }

  /** Its connection closed (the balancer already forgot it). */
  closed(connection: ClientConnection, error: RpcError | undefined): void {
    this.connection = undefined
    this.#announceLoss(connection, error)
    if (this.#host.closed || this.retired) return
    // The connection failed: the replacement prefers another server, if there is one.
    if (error) {
      this.tried = this.endpoint ? [this.endpoint] : []
      this.#host.lastError = error
    }
    this.lost(connection, error)
  }

  /** The server is going away (GOAWAY): its calls finish there, new ones go to a fresh connection. */
  goaway(connection: ClientConnection): void {
    this.detach()
    if (!this.#host.closed && !this.retired) this.lost(connection, undefined)
  }

  /** A health probe answered in `rtt` ms. */
  healthPassed(rtt: number): void {
    this.lastRtt = rtt
  }

  /** A health probe failed: out of rotation at once, closed; `closed()` replaces it. */
  healthFailed(connection: ClientConnection, error: RpcError): void {
    this.failures++
    removeFrom(this.#host.ready, connection)
    this.#host.events.emit('unhealthy', { address: this.endpoint!.key, slot: this.id, error })
    connection.destroy(
      new RpcError(Code.UNAVAILABLE, `health check failed: ${error.message}`, { cause: error }),
    )
  }
}

/** Resolves once the connection's transport is gone. */
export function whenClosed(connection: ClientConnection): Promise<void> {
  return connection.frames.closed
}

/** One health monitor for the pool: probes the connections in rotation, tells their slots. */
export function monitorHealth(
  check: HealthCheck,
  ready: readonly ClientConnection[],
  slotOf: (connection: ClientConnection) => Subchannel | undefined,
  host: { readonly closed: boolean; changed(): void },
): HealthMonitor {
  return new HealthMonitor(check, {
    connections: () => ready,
    passed: (connection, rtt) => slotOf(connection)?.healthPassed(rtt),
    failed: (connection, error) => {
      const slot = slotOf(connection)
      if (slot === undefined || slot.connection !== connection || host.closed) return
      slot.healthFailed(connection, error)
      host.changed()
    },
  })
}

export function removeFrom<T>(list: T[], item: T): void {
  const i = list.indexOf(item)
  if (i >= 0) list.splice(i, 1)
}

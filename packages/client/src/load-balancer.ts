import { Code, RpcError } from '@srpc/protocol'
import type { EventEmitter } from 'eventemitter3'
import { ClientConnection, type ConnectionEvents } from './connection'
import type { PoolEvents } from './connectivity-state'
import { configurationError, Ejection, type Endpoint, newEndpoint } from './ejection'
import type { HealthMonitor } from './health'
import type { ResolvedPoolOptions } from './options'
import { Picker } from './picker'
import { type ResolvedAddress, ResolveLoop, type Resolver } from './resolver'
import {
  type ConnectFn,
  connectThen,
  type Dial,
  monitorHealth,
  removeFrom,
  Subchannel,
  type SubchannelHost,
} from './subchannel'
import { weightedOrder } from './weighted-order'

/** What the balancer tells the pool, which holds the waiting calls. */
export interface BalancerHooks {
  /** Calls waiting for a connection. */
  readonly queued: number
  /** A connection went into rotation or has room again: start waiting calls. */
  dispatch(): void
  /** Every server failed with a configuration error: waiting calls fail with it now. */
  failWaiting(error: RpcError): void
  /** A connection went into rotation. */
  rotated(): void
  /** A slot failed every server of its round and waits. */
  roundFailed(error: RpcError): void
  /** Something that the pool state depends on changed. */
  changed(): void
}

/**
 * Spreads the pool's slots over the servers the resolver names, and calls over the connections
 * in rotation (the picker). A server that fails an attempt is ejected: slots go elsewhere, and it
 * is probed on its own backoff until it answers. A connection opened to a server with fewer slots
 * takes the place of one on a busier server, so the load evens out after a server comes back.
 */
export class LoadBalancer implements SubchannelHost {
  readonly options: ResolvedPoolOptions
  readonly events: EventEmitter<PoolEvents>
  readonly connect: Dial
  readonly picker: Picker
  /** Connections in rotation: the picker picks among these. */
  readonly ready: ClientConnection[] = []
  slots: Subchannel[]
  started = false
  closed = false
  /** Attempts failed and nothing is ready: TRANSIENT_FAILURE until a connection is ready again. */
  failing = false
  lastError: RpcError | undefined
  #hooks: BalancerHooks
  #nextSlotId = 0
  /** Every open connection, with its slot (undefined while it drains or idles out). */
  #owners = new Map<ClientConnection, Subchannel | undefined>()
  #endpoints: Endpoint[]
  #resolution: ResolveLoop
  /** A connection opened to move a slot onto a less loaded server. */
  #moving: AbortController | undefined
  #health: HealthMonitor | undefined
  #ejection: Ejection
  #connectionEvents: ConnectionEvents = {
    onClose: (connection, error) => this.#onClose(connection, error),
    onGoaway: (connection) => this.#onGoaway(connection),
    onRelease: () => {
      if (this.#hooks.queued > 0) this.#hooks.dispatch()
    },
  }

  /** `connect` replaces `ClientConnection.connect` (tests inject a fake). */
  constructor(
    options: ResolvedPoolOptions,
    resolver: Resolver,
    events: EventEmitter<PoolEvents>,
    hooks: BalancerHooks,
    connect?: ConnectFn,
  ) {
    this.options = options
    this.events = events
    this.#hooks = hooks
    this.picker = new Picker(options.balancing)
    const open = connect ?? connectWith(options)
    this.connect = (address, signal) => open(address, signal, this.#connectionEvents)
    this.#resolution = new ResolveLoop(
      resolver,
      { interval: options.resolveInterval, minGap: options.backoff.initial, timeout: options.connectTimeout },
      {
        addresses: (addresses) => this.setEndpoints(addresses),
        failed: (error) => this.events.emit('error', error),
        settled: () => {
          for (const slot of this.slots) {
            if (slot.awaitingAddresses) {
              slot.awaitingAddresses = false
              slot.dial()
            }
          }
        },
      },
    )
    this.#endpoints = weightedOrder((resolver.known?.() ?? []).map((a) => newEndpoint(a, options.backoff)))
    this.#ejection = new Ejection(this)
    this.slots = Array.from({ length: options.size }, () => this.#newSlot())
    if (options.healthCheck) {
      this.#health = monitorHealth(options.healthCheck, this.ready, (c) => this.#owners.get(c), this)
    }
  }

  /** The servers known now, in the order slots prefer them. */
  get endpoints(): readonly Endpoint[] {
    return this.#endpoints
  }

  get queued(): number {
    return this.#hooks.queued
  }

  get resolving(): boolean {
    return this.#resolution.resolving
  }

  get resolveError(): RpcError | undefined {
    return this.#resolution.error
  }

  start(): void {
    if (this.started || this.closed) return
    this.started = true
    this.#resolution.start()
    this.#health?.start()
    for (const slot of this.slots) slot.dial()
    this.changed()
  }

  /** Grows at once; shrinks by retiring the least busy slots (a busy one drains: no call is cut). */
  setSize(n: number): void {
    while (this.slots.length < n) {
      const slot = this.#newSlot()
      this.slots.push(slot)
      if (this.started) slot.dial()
    }
    if (this.slots.length > n) {
      const load = (s: Subchannel) => (s.connection === undefined ? -1 : s.connection.inFlight)
      const byLoad = [...this.slots].sort((a, b) => load(a) - load(b))
      for (const slot of byLoad.slice(0, this.slots.length - n)) slot.retire()
      this.slots = this.slots.filter((s) => !s.retired)
    }
    this.rebalance()
    this.changed()
  }

  allConnected(): boolean {
    return this.slots.every((s) => s.connection !== undefined && this.ready.includes(s.connection))
  }

  refTimers(ref: boolean): void {
    for (const slot of this.slots) slot.refTimer(ref)
  }

  /** Every connection still open (in rotation, draining, or idling out). */
  connections(): ClientConnection[] {
    return [...this.#owners.keys()]
  }

  /** Stops every background job (dials, waits, probes, lookups, health checks); nothing is in rotation after. */
  stop(): void {
    this.closed = true
    this.#resolution.stop()
    this.#health?.stop()
    this.#moving?.abort()
    this.#moving = undefined
    this.#ejection.stop(this.#endpoints)
    for (const slot of this.slots) slot.stop()
    this.ready.length = 0
  }

  /** See `configurationError` in ejection.ts. */
  configurationError(): RpcError | undefined {
    return configurationError(this.#endpoints, this.ready.length)
  }

  /** Every server failed with a configuration error: waiting calls fail with it now. */
  misconfigured(error: RpcError): void {
    this.#hooks.failWaiting(error)
  }

  // --- SubchannelHost ---

  changed(): void {
    this.#hooks.changed()
  }

  own(connection: ClientConnection, slot: Subchannel | undefined): void {
    this.#owners.set(connection, slot)
  }

  rotated(): void {
    this.failing = false
    this.changed()
    if (this.#hooks.queued > 0) this.#hooks.dispatch()
    this.#hooks.rotated()
    this.rebalance()
  }

  backedOff(): void {
    if (this.ready.length === 0 && !this.slots.some((s) => s.dialing || s.awaitingAddresses)) {
      this.failing = true
    }
    this.changed()
  }

  roundFailed(error: RpcError): void {
    this.#hooks.roundFailed(error)
  }

  attemptFailed(endpoint: Endpoint | undefined, error: RpcError): void {
    this.lastError = error
    this.#ejection.reportFailure(endpoint, error)
    if (endpoint !== undefined) this.#ejection.eject(endpoint, error)
    this.#resolution.soon()
  }

  readmit(endpoint: Endpoint): void {
    this.#ejection.readmit(endpoint)
  }

  reachability(endpoint: Endpoint, reachable: boolean): void {
    const resolver = this.#resolution.resolver
    if (resolver.reachability === undefined || this.closed) return
    // A custom resolver's mistake must not break the balancer: it only loses the hint.
    let changed = false
    try {
      changed = resolver.reachability(endpoint, reachable) === true
    } catch (err) {
      this.events.emit('error', RpcError.from(err))
      return
    }
    if (!changed) return
    const known = resolver.known?.()
    if (known !== undefined) queueMicrotask(() => this.closed || this.setEndpoints(known))
    this.#resolution.soon()
  }

  hasUntried(slot: Subchannel): boolean {
    return this.#endpoints.some((e) => !e.ejected && !slot.tried.includes(e))
  }

  /**
   * The server for a slot's next attempt: the least loaded healthy one, preferring those it has
   * not tried in this round; when every server failed, the one tried longest ago (so a slot makes
   * one attempt per backoff step, whatever the number of servers).
   */
  choose(slot: Subchannel): Endpoint | undefined {
    const endpoints = this.#endpoints
    if (!endpoints.some((e) => !e.ejected)) {
      let oldest: Endpoint | undefined
      for (const e of endpoints) if (oldest === undefined || e.lastTried < oldest.lastTried) oldest = e
      return oldest
    }
    const load = this.#load()
    let best: Endpoint | undefined
    let bestRank = Number.POSITIVE_INFINITY
    for (const e of endpoints) {
      if (e.ejected) continue
      const rank = load.get(e)! + (slot.tried.includes(e) ? endpoints.length * this.slots.length : 0)
      if (rank < bestRank) {
        best = e
        bestRank = rank
      }
    }
    return best
  }

  // --- servers ---

  /** Takes a new list of addresses: new servers get slots, servers gone from it are drained. */
  setEndpoints(addresses: readonly ResolvedAddress[]): void {
    const previous = new Map(this.#endpoints.map((e) => [e.key, e]))
    const next: Endpoint[] = []
    let added = false
    for (const address of addresses) {
      const known = previous.get(address.key)
      previous.delete(address.key)
      if (known === undefined) added = true
      next.push(known ?? newEndpoint(address, this.options.backoff))
    }
    if (!added && previous.size === 0) return
    this.#endpoints = weightedOrder(next)
    this.#ejection.stop(previous.values())
    for (const slot of this.slots) {
      slot.tried = slot.tried.filter((e) => !previous.has(e.key))
      const gone = slot.endpoint !== undefined && previous.get(slot.endpoint.key) === slot.endpoint
      if (gone && slot.connection) {
        slot.detach()
        slot.dial()
      } else if (gone && slot.dialing) {
        slot.stop()
        slot.dial()
      } else if (added && slot.timer !== undefined && this.started) {
        // A server appeared: a slot waiting after failures tries it now.
        slot.stop()
        slot.dial()
      }
    }
    this.#ejection.sync()
    this.rebalance()
    this.changed()
  }

  /** Moves one slot at a time onto the least loaded healthy server until loads differ by one at most. */
  rebalance(): void {
    if (this.closed || !this.started || this.#moving || this.#endpoints.length < 2) return
    const load = this.#load()
    let target: Endpoint | undefined
    let most = 0
    for (const [e, l] of load) {
      most = Math.max(most, l)
      if (!e.ejected && e.probing === undefined && (target === undefined || l < load.get(target)!)) target = e
    }
    if (target === undefined || most - load.get(target)! < 2) return
    const moving = new AbortController()
    this.#moving = moving
    const endpoint = target
    endpoint.lastTried = performance.now()
    connectThen(
      this.connect,
      endpoint,
      moving,
      (connection) => {
        this.#moving = undefined
        if (!this.#endpoints.includes(endpoint)) {
          connection.destroy(new RpcError(Code.CANCELLED, 'connection no longer needed'))
          return
        }
        this.place(connection, endpoint)
      },
      (error) => {
        this.#moving = undefined
        this.#ejection.reportFailure(endpoint, error)
        this.#ejection.eject(endpoint, error)
      },
    )
  }

  #newSlot(): Subchannel {
    return new Subchannel(this.#nextSlotId++, this)
  }

  /** Slots connected or connecting to each server. */
  #load(): Map<Endpoint, number> {
    const load = new Map<Endpoint, number>()
    for (const e of this.#endpoints) load.set(e, 0)
    for (const slot of this.slots) {
      if (slot.endpoint && (slot.connection || slot.dialing) && load.has(slot.endpoint)) {
        load.set(slot.endpoint, load.get(slot.endpoint)! + 1)
      }
    }
    return load
  }

  /** A probe got through: the connection is placed like a rebalancing one. */
  probed(connection: ClientConnection, endpoint: Endpoint): void {
    this.place(connection, endpoint)
  }

  /**
   * Puts a connection opened to `endpoint` to use: in a slot that has none, or in place of a
   * slot's connection to a server with at least two more slots (which drains). Otherwise it closes.
   */
  place(connection: ClientConnection, endpoint: Endpoint): void {
    const idle = this.slots.find((s) => !s.connection && !s.dialing && !s.retired)
    if (idle !== undefined) {
      idle.tried = []
      idle.adopt(connection, endpoint)
      return
    }
    const load = this.#load()
    let source: Subchannel | undefined
    for (const slot of this.slots) {
      if (!slot.connection || !slot.endpoint || slot.endpoint === endpoint) continue
      const l = load.get(slot.endpoint) ?? Number.POSITIVE_INFINITY
      if (l - (load.get(endpoint) ?? 0) < 2) continue
      const best = source ? (load.get(source.endpoint!) ?? Number.POSITIVE_INFINITY) : -1
      if (l > best || (l === best && slot.connection.inFlight < source!.connection!.inFlight)) source = slot
    }
    if (source === undefined) {
      this.#owners.set(connection, undefined)
      connection.drain()
      return
    }
    source.detach()
    source.adopt(connection, endpoint)
  }

  // --- connection events ---

  #onClose(connection: ClientConnection, error: RpcError | undefined): void {
    const slot = this.#owners.get(connection)
    if (!this.#owners.delete(connection)) return
    removeFrom(this.ready, connection)
    if (slot === undefined || slot.connection !== connection) return
    slot.closed(connection, error)
    this.changed()
  }

  #onGoaway(connection: ClientConnection): void {
    const slot = this.#owners.get(connection)
    if (slot === undefined || slot.connection !== connection) return
    slot.goaway(connection)
    this.changed()
  }
}

/** The one place a connection is opened: slots, probes and rebalancing all come through here. */
function connectWith(options: ResolvedPoolOptions): ConnectFn {
  return (address, signal, events) =>
    ClientConnection.connect(options, events, {
      host: address.host,
      port: address.port,
      servername: address.servername,
      signal,
    })
}

import { type Deadline, deadlines, fromPlatformError, payloadBytes } from '@srpc/core'
import { Code, checkRoute, formatMs, invalidOption, positiveIntOption, RpcError } from '@srpc/protocol'
import { EventEmitter } from 'eventemitter3'
import { Backoff } from './backoff'
import { Balancer } from './balancer'
import type { ClientSession, SessionOptions } from './client-session'
import { ClientStream } from './client-stream'
import {
  ClientConnection,
  type CallOptions as ConnectionCallOptions,
  type ConnectionEvents,
  type ConnectTarget,
  type PoolCallOptions,
} from './connection'
import { HealthMonitor } from './health'
import {
  checkCallOptions,
  checkTimeout,
  checkWaitForReady,
  type PoolOptions,
  type ResolvedPoolOptions,
  type RetryPolicy,
  resolvePoolOptions,
  resolveRetryPolicy,
} from './options'
import { type ResolvedAddress, Resolver } from './resolver'
import { abortedError, type Resender } from './unary-call'

/** As gRPC names a channel's states. */
export type PoolState = 'idle' | 'connecting' | 'ready' | 'transient_failure' | 'closed'

/** One slot of the pool: a connection in rotation, an attempt under way, a wait before the next one. */
export type SlotState = 'idle' | 'connecting' | 'ready' | 'transient_failure' | 'closed'

export interface CallOptions extends ConnectionCallOptions {
  /**
   * While no connection is ready after attempts failed, wait (until the deadline) instead of
   * failing at once with UNAVAILABLE. Defaults to the pool's `waitForReady`.
   */
  waitForReady?: boolean
  /** Unary calls only: send again on the codes listed, for idempotent routes. Bounded by `timeout`. */
  retry?: RetryPolicy
}

export interface PoolEvents {
  /** A connection finished its TLS handshake and takes calls. */
  connect: [info: { slot: number; address: string }]
  /** A connection left rotation: closed (`error` says why when it was not orderly) or draining. */
  disconnect: [info: { slot: number; address: string | undefined; error: RpcError | undefined }]
  /** A slot waits `delay` ms before its next connection attempt (the `attempt`-th after a failure). */
  reconnecting: [info: { slot: number; attempt: number; delay: number; error: RpcError | undefined }]
  /** A server that had failed is back in rotation. */
  healthy: [info: { address: string }]
  /**
   * A connection failed its health check and was closed (`slot` set), or a server failed a
   * connection attempt and is avoided until it answers again (`slot` undefined).
   */
  unhealthy: [info: { address: string; slot: number | undefined; error: RpcError }]
  stateChange: [info: { from: PoolState; to: PoolState }]
  /**
   * Background work failed (a connection attempt, a DNS lookup). Never thrown. A configuration
   * error (UNAUTHENTICATED: the server's certificate is not trusted or names another host, the
   * server wants a client certificate) is emitted once per server, not at every redial, until a
   * connection to that server works again.
   */
  error: [error: RpcError]
}

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

/** A server address, with what the pool learned about it. */
interface Endpoint extends ResolvedAddress {
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

interface Slot {
  readonly id: number
  endpoint: Endpoint | undefined
  /** The connection in rotation. */
  connection: ClientConnection | undefined
  dialing: AbortController | undefined
  /** Waiting before the next attempt. */
  timer: NodeJS.Timeout | undefined
  awaitingAddresses: boolean
  /** When its connection was established. */
  connectedAt: number
  /** The connection `connect` was emitted for, until `disconnect` is. */
  announced: ClientConnection | undefined
  readonly backoff: Backoff
  /** Servers tried since the last success or the last wait: a failure moves on to an untried one. */
  tried: Endpoint[]
  /** When a lost connection was last replaced without waiting: at most once per backoff.initial. */
  lastFreeRedial: number
  failures: number
  lastRtt: number | undefined
  retired: boolean
}

/** A call waiting in the pool for a connection (or for room under the server's stream limit). */
interface Waiter {
  start: (connection: ClientConnection, timeout: number | undefined) => void
  fail: (error: RpcError) => void
  deadlineAt: number | undefined
  deadline: Deadline | undefined
  signal: AbortSignal | undefined
  onAbort: (() => void) | undefined
  waitForReady: boolean
}

/**
 * A pool of TLS connections to one or more servers. It keeps `size` connections open, spread
 * over every address (DNS names are resolved to all their addresses and looked up again), probes
 * them, replaces a dead one with exponential backoff between failed attempts, and balances calls
 * over the ready ones. While nothing is ready, calls wait during the first attempts and fail fast
 * with UNAVAILABLE once attempts failed (unless `waitForReady`); never past their deadline.
 *
 * ```ts
 * const pool = new Pool({ address: '127.0.0.1:8443', tls: clientOptions, size: 3 })
 * const reply = await pool.call('/health', '', { timeout: 5000 })
 * await pool.close()
 * ```
 */
export class Pool extends EventEmitter<PoolEvents> {
  readonly options: ResolvedPoolOptions
  #slots: Slot[]
  #nextSlotId = 0
  /** Connections in rotation: the balancer picks among these. */
  #ready: ClientConnection[] = []
  /** Every open connection of the pool, with its slot (undefined while it drains or idles out). */
  #owners = new Map<ClientConnection, Slot | undefined>()
  /** The options of a call that sets none: the pool's default timeout, enforced here and not sent. */
  #implicitOptions: PoolCallOptions
  /** Aborted by close(): ends retry waits at once. */
  #closing$ = new AbortController()
  #balancer: Balancer
  #queue = new Set<Waiter>()
  #endpoints: Endpoint[] = []
  #resolver: Resolver
  #resolving = false
  #resolveTimer: NodeJS.Timeout | undefined
  #lastResolve = Number.NEGATIVE_INFINITY
  #resolveError: RpcError | undefined
  /** A connection opened to move a slot onto a less loaded server. */
  #moving: AbortController | undefined
  #health: HealthMonitor | undefined
  #state: PoolState = 'idle'
  #started = false
  /** Attempts failed and nothing is ready: TRANSIENT_FAILURE until a connection is ready again. */
  #failing = false
  #lastError: RpcError | undefined
  #connectWaiters: { resolve: () => void; reject: (err: RpcError) => void }[] = []
  #closed = false
  #closing: Promise<void> | undefined
  #events: ConnectionEvents = {
    onClose: (connection, error) => this.#onClose(connection, error),
    onGoaway: (connection) => this.#onGoaway(connection),
    onRelease: () => {
      if (this.#queue.size > 0) this.#dispatch()
    },
  }

  constructor(options: PoolOptions) {
    super()
    this.options = resolvePoolOptions(options)
    this.#implicitOptions = Object.freeze({ timeout: this.options.defaultTimeout, implicitTimeout: true })
    this.#balancer = new Balancer(this.options.balancing)
    this.#resolver = new Resolver(this.options.targets, this.options.lookup, this.options.connectTimeout)
    this.#endpoints = shuffle(this.#resolver.known().map((address) => this.#newEndpoint(address)))
    this.#slots = Array.from({ length: this.options.size }, () => this.#newSlot())
    const check = this.options.healthCheck
    if (check) {
      this.#health = new HealthMonitor(check, {
        connections: () => this.#ready,
        passed: (connection, rtt) => {
          const slot = this.#owners.get(connection)
          if (slot) slot.lastRtt = rtt
        },
        failed: (connection, error) => this.#onUnhealthy(connection, error),
      })
    }
  }

  get state(): PoolState {
    return this.#state
  }

  /** Connections the pool keeps open (see `setSize`). */
  get size(): number {
    return this.#slots.length
  }

  /** Calls waiting for a connection right now. */
  get queued(): number {
    return this.#queue.size
  }

  /**
   * Opens every connection now; resolves when all are ready, rejects when an attempt failed (the
   * pool keeps trying in the background).
   */
  connect(): Promise<void> {
    if (this.#closed) return Promise.reject(closedError())
    this.#start()
    if (this.#allConnected()) return Promise.resolve()
    return new Promise((resolve, reject) => this.#connectWaiters.push({ resolve, reject }))
  }

  /**
   * A request-response call: resolves with the reply, rejects with an RpcError. A call no server
   * processed (refused, or never written) is sent again on another connection, within the same
   * deadline; other failures are retried only with an explicit `retry` policy.
   */
  call(
    route: string,
    payload: Uint8Array | string = EMPTY,
    options: CallOptions = NO_OPTIONS,
  ): Promise<Buffer> {
    let bytes: Buffer
    try {
      // Checked here, not when a queued call starts: there a throw would escape as uncaught.
      checkRoute(route)
      bytes = payloadBytes(payload, 'payload')
      checkCallOptions(options)
      checkTimeout(options.timeout)
      // A call without its own timeout gets the pool's default: no call waits forever.
      // It bounds the wait here only: the server is not told (as with gRPC, only explicit deadlines travel).
      if (options.timeout === undefined && this.options.defaultTimeout > 0) {
        // The usual call passes no options: share one object instead of building one per call.
        options =
          options === NO_OPTIONS
            ? this.#implicitOptions
            : ({ ...options, timeout: this.options.defaultTimeout, implicitTimeout: true } as CallOptions)
      }
      if (options.waitForReady !== undefined) checkWaitForReady(options.waitForReady)
      if (options.retry !== undefined) return this.#callWithRetry(route, bytes, options)
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#send(route, bytes, options, 0)
  }

  /** A server stream: iterate the chunks with `for await`; `break` cancels it on the server. */
  callStream(
    route: string,
    payload: Uint8Array | string = EMPTY,
    options: CallOptions = NO_OPTIONS,
  ): ClientStream {
    // A throw here fails the first next(): that is where a stream reports its errors.
    return new ClientStream(() => {
      checkRoute(route)
      const bytes = payloadBytes(payload, 'payload')
      checkCallOptions(options)
      checkTimeout(options.timeout)
      if (options.waitForReady !== undefined) checkWaitForReady(options.waitForReady)
      return this.#withConnection(options, (connection, timeout) =>
        connection.openStream(route, bytes, withTimeout(options, timeout)),
      )
    })
  }

  /**
   * Opens a bidirectional session on one connection of the pool. If that connection dies the
   * session ends with UNAVAILABLE (its messages are never moved: that would break their order);
   * open a new one, the pool is already reconnecting.
   */
  createBidirectionalSession(
    route: string,
    options: CallOptions & SessionOptions = NO_OPTIONS,
  ): Promise<ClientSession> {
    try {
      checkRoute(route)
      checkCallOptions(options)
      checkTimeout(options.timeout)
      if (options.waitForReady !== undefined) checkWaitForReady(options.waitForReady)
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#withConnection(options, (connection, timeout) =>
      connection.openSession(route, withTimeout(options, timeout)),
    )
  }

  /** Round-trip time of a ping on every ready connection, in ms (NaN for one that did not answer). */
  async ping(options: { timeout?: number } = {}): Promise<number[]> {
    const timeout = options.timeout ?? 5000
    return Promise.all(this.#ready.map((c) => c.ping(timeout).catch(() => Number.NaN)))
  }

  /** Per-connection numbers for dashboards. */
  stats(): ConnectionStats[] {
    return this.#slots.map((slot) => ({
      slot: slot.id,
      address: slot.endpoint?.key,
      state: this.#slotState(slot),
      inFlight: slot.connection?.inFlight ?? 0,
      lastRtt: slot.lastRtt,
      failures: slot.failures,
    }))
  }

  /**
   * Changes the number of connections. Growing opens the new ones at once; shrinking closes
   * connections with nothing in flight first, and lets a busy one finish its calls (it takes no
   * new ones) before it closes: no call is cut.
   */
  setSize(size: number): void {
    if (size === undefined) invalidOption('size', 'is required')
    const n = positiveIntOption('size', size, 0)
    if (this.#closed) return
    while (this.#slots.length < n) {
      const slot = this.#newSlot()
      this.#slots.push(slot)
      if (this.#started) this.#dial(slot)
    }
    if (this.#slots.length > n) {
      const load = (s: Slot) => (s.connection === undefined ? -1 : s.connection.inFlight)
      const byLoad = [...this.#slots].sort((a, b) => load(a) - load(b))
      for (const slot of byLoad.slice(0, this.#slots.length - n)) this.#retire(slot)
      this.#slots = this.#slots.filter((s) => !s.retired)
    }
    this.#settleConnectWaiters()
    this.#rebalance()
    this.#updateState()
  }

  /**
   * Closes every connection: calls still in flight or waiting fail with CANCELLED, timers stop.
   * Safe to call twice: both calls get the same promise.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing
    this.#closed = true
    this.#closing$.abort()
    const reason = new RpcError(Code.CANCELLED, 'pool closed')
    clearTimeout(this.#resolveTimer)
    this.#health?.stop()
    this.#moving?.abort()
    for (const endpoint of this.#endpoints) {
      clearTimeout(endpoint.probeTimer)
      endpoint.probing?.abort()
    }
    for (const slot of this.#slots) {
      clearTimeout(slot.timer)
      slot.timer = undefined
      slot.dialing?.abort()
      slot.dialing = undefined
    }
    for (const waiter of this.#queue) {
      this.#unqueue(waiter)
      waiter.fail(reason)
    }
    const waits: Promise<void>[] = []
    for (const connection of this.#owners.keys()) {
      const socket = connection.frames.socket
      if (!socket.closed) waits.push(new Promise<void>((resolve) => socket.once('close', () => resolve())))
      connection.destroy(reason)
    }
    this.#ready = []
    this.#rejectConnectWaiters(reason)
    this.#updateState()
    this.#closing = Promise.all(waits).then(() => {})
    return this.#closing
  }

  // --- calls ---

  #send(route: string, payload: Buffer, options: CallOptions, resends: number): Promise<Buffer> {
    const connection = this.#balancer.pick(this.#ready)
    if (connection !== undefined) return connection.call(route, payload, options, this.#resender, resends)
    return new Promise<Buffer>((resolve, reject) =>
      this.#enqueue(
        options,
        (c, timeout) =>
          c
            .call(route, payload, withTimeout(options, timeout), this.#resender, resends)
            .then(resolve, reject),
        reject,
      ),
    )
  }

  /**
   * A call the server provably never processed (refused) goes out again on another connection,
   * within its deadline, at most MAX_UNPROCESSED_RESENDS times. The call itself carries what that
   * needs, so the usual call pays nothing for this.
   */
  readonly #resender: Resender = {
    resend: (call) => {
      if (this.#closed || call.resends >= MAX_UNPROCESSED_RESENDS) return undefined
      const deadlineAt = call.deadlineAt
      const timeout = deadlineAt === undefined ? undefined : deadlineAt - performance.now()
      if (timeout !== undefined && timeout <= 0) return undefined
      return this.#send(call.route, call.payload, withTimeout(call.options, timeout), call.resends + 1)
    },
  }

  async #callWithRetry(route: string, payload: Buffer, options: CallOptions): Promise<Buffer> {
    const policy = resolveRetryPolicy(options.retry!)
    const deadlineAt = options.timeout === undefined ? undefined : performance.now() + options.timeout
    const once: CallOptions = { ...options, retry: undefined }
    let backoff: Backoff | undefined
    for (let attempt = 1; ; attempt++) {
      const timeout = deadlineAt === undefined ? undefined : deadlineAt - performance.now()
      try {
        return await this.#send(route, payload, withTimeout(once, timeout), 0)
      } catch (err) {
        if (
          !RpcError.is(err) ||
          attempt >= policy.maxAttempts ||
          !policy.codes.has(err.code) ||
          this.#closed
        ) {
          throw err
        }
        backoff ??= new Backoff(policy.backoff)
        const delay = backoff.next()
        if (deadlineAt !== undefined && performance.now() + delay >= deadlineAt) throw err
        await sleep(delay, options.signal, this.#closing$.signal)
      }
    }
  }

  #withConnection<T>(
    options: CallOptions,
    start: (connection: ClientConnection, timeout: number | undefined) => Promise<T>,
  ): Promise<T> {
    const connection = this.#balancer.pick(this.#ready)
    if (connection !== undefined) return start(connection, options.timeout)
    return new Promise<T>((resolve, reject) =>
      this.#enqueue(options, (c, timeout) => start(c, timeout).then(resolve, reject), reject),
    )
  }

  /** No ready connection had room: the call waits here, bounded by maxQueued, its deadline and its signal. */
  #enqueue(options: CallOptions, start: Waiter['start'], fail: (error: RpcError) => void): void {
    if (this.#closed) return fail(closedError())
    const signal = options.signal
    if (signal?.aborted) return fail(abortedError(signal))
    this.#start()
    const waitForReady = options.waitForReady ?? this.options.waitForReady
    // Waiting cannot fix a certificate problem, even for a call that waits for ready.
    const misconfigured = this.#configurationError()
    if (misconfigured !== undefined) return fail(misconfigured)
    if (!waitForReady && this.#state === 'transient_failure') return fail(this.#unavailable())
    if (this.#queue.size >= this.options.maxQueued) {
      return fail(
        new RpcError(
          Code.RESOURCE_EXHAUSTED,
          `${this.#queue.size} calls already wait for a connection (maxQueued ${this.options.maxQueued})`,
        ),
      )
    }
    const timeout = options.timeout
    const waiter: Waiter = {
      start,
      fail,
      deadlineAt: timeout === undefined ? undefined : performance.now() + timeout,
      deadline: undefined,
      signal,
      onAbort: undefined,
      waitForReady,
    }
    if (timeout !== undefined) {
      waiter.deadline = deadlines.schedule(timeout, () => {
        waiter.deadline = undefined
        this.#unqueue(waiter)
        fail(
          new RpcError(
            Code.DEADLINE_EXCEEDED,
            `timed out after ${formatMs(timeout)} waiting for a connection`,
          ),
        )
      })
    }
    if (signal) {
      waiter.onAbort = () => {
        this.#unqueue(waiter)
        fail(abortedError(signal))
      }
      signal.addEventListener('abort', waiter.onAbort, { once: true })
    }
    this.#queue.add(waiter)
    // A waiting call keeps the process alive through a backoff wait, as a connecting socket would.
    if (this.#queue.size === 1) this.#refTimers(true)
  }

  #unqueue(waiter: Waiter): void {
    if (!this.#queue.delete(waiter)) return
    deadlines.cancel(waiter.deadline)
    waiter.deadline = undefined
    if (waiter.onAbort) waiter.signal!.removeEventListener('abort', waiter.onAbort)
    if (this.#queue.size === 0) this.#refTimers(false)
  }

  /** Starts waiting calls, oldest first, while a connection has room. */
  #dispatch(): void {
    for (const waiter of this.#queue) {
      const connection = this.#balancer.pick(this.#ready)
      if (connection === undefined) return
      this.#unqueue(waiter)
      let timeout: number | undefined
      if (waiter.deadlineAt !== undefined) {
        timeout = waiter.deadlineAt - performance.now()
        if (timeout <= 0) {
          waiter.fail(new RpcError(Code.DEADLINE_EXCEEDED, 'timed out waiting for a connection'))
          continue
        }
      }
      waiter.start(connection, timeout)
    }
  }

  /** TRANSIENT_FAILURE: calls that do not wait for ready fail now. */
  #failFast(): void {
    let error: RpcError | undefined
    for (const waiter of this.#queue) {
      if (waiter.waitForReady) continue
      this.#unqueue(waiter)
      error ??= this.#unavailable()
      waiter.fail(error)
    }
  }

  /**
   * The configuration error calls get when nothing is ready and every server failed its last
   * attempt with one (see Endpoint.misconfigured); undefined while some server may still work.
   */
  #configurationError(): RpcError | undefined {
    if (this.#ready.length > 0) return undefined
    let error: RpcError | undefined
    for (const endpoint of this.#endpoints) {
      if (endpoint.misconfigured === undefined) return undefined
      error ??= endpoint.misconfigured
    }
    return error
  }

  #unavailable(): RpcError {
    const last = this.#lastError
    return new RpcError(
      Code.UNAVAILABLE,
      last ? `no connection is ready (last attempt: ${last.message})` : 'no connection is ready',
      { cause: last },
    )
  }

  // --- connections ---

  #start(): void {
    if (this.#started || this.#closed) return
    this.#started = true
    if (this.#resolver.dynamic) {
      this.#resolve()
      this.#armResolveTimer()
    }
    this.#health?.start()
    for (const slot of this.#slots) this.#dial(slot)
    this.#updateState()
  }

  #dial(slot: Slot): void {
    slot.timer = undefined
    if (this.#closed || slot.retired || slot.dialing || slot.connection) return
    const endpoint = this.#chooseEndpoint(slot)
    if (endpoint === undefined) {
      if (this.#resolving) {
        slot.awaitingAddresses = true
        return
      }
      this.#dialFailed(
        slot,
        undefined,
        undefined,
        this.#resolveError ?? new RpcError(Code.UNAVAILABLE, 'no address to connect to'),
      )
      return
    }
    slot.awaitingAddresses = false
    slot.endpoint = endpoint
    slot.tried.push(endpoint)
    endpoint.lastTried = performance.now()
    const dialing = new AbortController()
    slot.dialing = dialing
    ClientConnection.connect(this.options, this.#events, targetOf(endpoint, dialing)).then(
      (connection) => this.#dialed(slot, dialing, endpoint, connection),
      (err: unknown) => this.#dialFailed(slot, dialing, endpoint, err),
    )
    this.#updateState()
  }

  #dialed(slot: Slot, dialing: AbortController, endpoint: Endpoint, connection: ClientConnection): void {
    if (slot.dialing !== dialing || this.#closed || slot.retired) {
      // The slot moved on (pool closed, slot retired, server dropped by DNS) while this attempt ran.
      connection.destroy(new RpcError(Code.CANCELLED, 'connection no longer needed'))
      return
    }
    slot.dialing = undefined
    if (connection.state === 'closed') {
      this.#attemptFailed(slot, endpoint, new RpcError(Code.UNAVAILABLE, 'connection closed during setup'))
      return
    }
    slot.tried = []
    this.#readmit(endpoint)
    this.#adopt(slot, connection, endpoint)
  }

  #dialFailed(
    slot: Slot,
    dialing: AbortController | undefined,
    endpoint: Endpoint | undefined,
    err: unknown,
  ): void {
    if (slot.dialing !== dialing) return
    slot.dialing = undefined
    if (this.#closed || slot.retired) return
    this.#attemptFailed(slot, endpoint, fromPlatformError(err, 'connection attempt failed'))
  }

  /** An attempt failed (or its connection was dropped before the server answered): try elsewhere, or wait. */
  #attemptFailed(slot: Slot, endpoint: Endpoint | undefined, error: RpcError): void {
    slot.failures++
    this.#lastError = error
    this.#reportFailure(endpoint, error)
    if (endpoint !== undefined) {
      if (!slot.tried.includes(endpoint)) slot.tried.push(endpoint)
      this.#eject(endpoint, error)
    }
    this.#resolveSoon()
    // Another server not tried yet in this round: go there now, no need to wait.
    if (this.#endpoints.some((e) => !e.ejected && !slot.tried.includes(e))) {
      this.#dial(slot)
      return
    }
    this.#backOff(slot, error)
    this.#rejectConnectWaiters(error)
  }

  /**
   * Tells observers that an attempt failed. A configuration error (UNAUTHENTICATED) is told once
   * per server: the pool keeps redialing with backoff (a renewed certificate fixes it without a
   * restart, as with gRPC), and every redial would repeat it. Once every server failed that way,
   * waiting calls fail now with it instead of at their deadline.
   */
  #reportFailure(endpoint: Endpoint | undefined, error: RpcError): void {
    if (error.code !== Code.UNAUTHENTICATED || endpoint === undefined) {
      this.emit('error', error)
      return
    }
    const repeated = endpoint.misconfigured !== undefined
    endpoint.misconfigured = error
    if (!repeated) this.emit('error', error)
    const misconfigured = this.#configurationError()
    if (misconfigured === undefined) return
    for (const waiter of this.#queue) {
      this.#unqueue(waiter)
      waiter.fail(misconfigured)
    }
  }

  #backOff(slot: Slot, error: RpcError | undefined): void {
    if (this.#closed || slot.retired) return
    const delay = slot.backoff.next()
    slot.tried = []
    slot.timer = setTimeout(() => this.#dial(slot), delay)
    if (this.#queue.size === 0) slot.timer.unref()
    this.emit('reconnecting', { slot: slot.id, attempt: slot.backoff.failures, delay, error })
    if (this.#ready.length === 0 && !this.#slots.some((s) => s.dialing || s.awaitingAddresses)) {
      this.#failing = true
    }
    this.#updateState()
  }

  /**
   * A slot's connection is gone. If it was a success (the server answered on it, or it stayed up
   * helloTimeout ms) the backoff starts over and the slot reconnects at once (at most once per
   * backoff.initial). A connection dropped before the server said anything, or closed with
   * RESOURCE_EXHAUSTED (a server at its connection limit), counts as a failed attempt: the
   * backoff grows instead of turning into a reconnect loop.
   */
  #lost(slot: Slot, connection: ClientConnection, error: RpcError | undefined): void {
    const now = performance.now()
    const succeeded = connection.answered || now - slot.connectedAt >= this.options.helloTimeout
    if (!succeeded || error?.code === Code.RESOURCE_EXHAUSTED) {
      this.#attemptFailed(
        slot,
        slot.endpoint,
        error ?? new RpcError(Code.UNAVAILABLE, 'the server closed the connection before answering'),
      )
      return
    }
    slot.backoff.reset()
    if (slot.endpoint !== undefined) slot.endpoint.misconfigured = undefined
    if (now - slot.lastFreeRedial >= this.options.backoff.initial) {
      slot.lastFreeRedial = now
      this.#dial(slot)
    } else {
      this.#backOff(slot, error)
    }
  }

  #adopt(slot: Slot, connection: ClientConnection, endpoint: Endpoint): void {
    clearTimeout(slot.timer)
    slot.timer = undefined
    slot.awaitingAddresses = false
    slot.connectedAt = performance.now()
    this.#owners.set(connection, slot)
    slot.connection = connection
    slot.endpoint = endpoint
    // The server spoke on it: its certificates work (again), a later failure is reported anew.
    connection.negotiated.then(() => {
      if (connection.answered) endpoint.misconfigured = undefined
    })
    if (connection.answered || !this.#ready.some((c) => c.answered)) {
      this.#rotate(slot, connection)
      return
    }
    // Other connections already carry calls: this one waits until the server speaks on it (one
    // round trip), so a server that accepts and then drops it (at its connection limit) fails no call.
    connection.negotiated.then(() => {
      if (slot.connection === connection && connection.available && !this.#closed)
        this.#rotate(slot, connection)
    })
  }

  /** Into rotation: calls may use it from now on. */
  #rotate(slot: Slot, connection: ClientConnection): void {
    slot.announced = connection
    this.#ready.push(connection)
    this.#failing = false
    this.emit('connect', { slot: slot.id, address: slot.endpoint!.key })
    this.#updateState()
    if (this.#queue.size > 0) this.#dispatch()
    this.#settleConnectWaiters()
    this.#rebalance()
  }

  /** Takes a slot's connection out of rotation; it finishes the calls it has, then closes. */
  #detach(slot: Slot): void {
    const connection = slot.connection
    if (connection === undefined) return
    slot.connection = undefined
    this.#removeReady(connection)
    this.#owners.set(connection, undefined)
    connection.drain()
    this.#announceLoss(slot, connection, undefined)
  }

  /** `disconnect` for a connection that `connect` announced. */
  #announceLoss(slot: Slot, connection: ClientConnection, error: RpcError | undefined): void {
    if (slot.announced !== connection) return
    slot.announced = undefined
    this.emit('disconnect', { slot: slot.id, address: slot.endpoint?.key, error })
  }

  #onClose(connection: ClientConnection, error: RpcError | undefined): void {
    const slot = this.#owners.get(connection)
    if (!this.#owners.delete(connection)) return
    this.#removeReady(connection)
    if (slot === undefined || slot.connection !== connection) return
    slot.connection = undefined
    this.#announceLoss(slot, connection, error)
    if (this.#closed || slot.retired) return
    if (error) {
      // The connection failed: the replacement prefers another server, if there is one.
      slot.tried = slot.endpoint ? [slot.endpoint] : []
      this.#lastError = error
    }
    this.#lost(slot, connection, error)
    this.#updateState()
  }

  /** The server is going away (GOAWAY): its calls finish there, new ones go to a fresh connection. */
  #onGoaway(connection: ClientConnection): void {
    const slot = this.#owners.get(connection)
    if (slot === undefined || slot.connection !== connection) return
    this.#detach(slot)
    if (!this.#closed && !slot.retired) this.#lost(slot, connection, undefined)
    this.#updateState()
  }

  /** A health probe failed: out of rotation at once, closed; `#onClose` replaces it. */
  #onUnhealthy(connection: ClientConnection, error: RpcError): void {
    const slot = this.#owners.get(connection)
    if (slot === undefined || slot.connection !== connection || this.#closed) return
    slot.failures++
    this.#removeReady(connection)
    this.emit('unhealthy', { address: slot.endpoint!.key, slot: slot.id, error })
    connection.destroy(
      new RpcError(Code.UNAVAILABLE, `health check failed: ${error.message}`, { cause: error }),
    )
    this.#updateState()
  }

  #removeReady(connection: ClientConnection): void {
    const i = this.#ready.indexOf(connection)
    if (i >= 0) this.#ready.splice(i, 1)
  }

  #retire(slot: Slot): void {
    slot.retired = true
    clearTimeout(slot.timer)
    slot.timer = undefined
    slot.dialing?.abort()
    slot.dialing = undefined
    slot.awaitingAddresses = false
    this.#detach(slot)
  }

  // --- servers ---

  #newEndpoint(address: ResolvedAddress): Endpoint {
    return {
      ...address,
      ejected: false,
      backoff: new Backoff(this.options.backoff),
      probeTimer: undefined,
      probing: undefined,
      lastTried: Number.NEGATIVE_INFINITY,
      admittedAt: performance.now(),
      misconfigured: undefined,
    }
  }

  #newSlot(): Slot {
    return {
      id: this.#nextSlotId++,
      endpoint: undefined,
      connection: undefined,
      dialing: undefined,
      timer: undefined,
      awaitingAddresses: false,
      connectedAt: Number.NEGATIVE_INFINITY,
      announced: undefined,
      backoff: new Backoff(this.options.backoff),
      tried: [],
      lastFreeRedial: Number.NEGATIVE_INFINITY,
      failures: 0,
      lastRtt: undefined,
      retired: false,
    }
  }

  /** Slots connected or connecting to each server. */
  #load(): Map<Endpoint, number> {
    const load = new Map<Endpoint, number>()
    for (const e of this.#endpoints) load.set(e, 0)
    for (const slot of this.#slots) {
      if (slot.endpoint && (slot.connection || slot.dialing) && load.has(slot.endpoint)) {
        load.set(slot.endpoint, load.get(slot.endpoint)! + 1)
      }
    }
    return load
  }

  /**
   * The server for a slot's next attempt: the least loaded healthy one, preferring those it has
   * not tried in this round; when every server failed, the one tried longest ago (so a slot makes
   * one attempt per backoff step, whatever the number of servers).
   */
  #chooseEndpoint(slot: Slot): Endpoint | undefined {
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
      const rank = load.get(e)! + (slot.tried.includes(e) ? endpoints.length * this.#slots.length : 0)
      if (rank < bestRank) {
        best = e
        bestRank = rank
      }
    }
    return best
  }

  #eject(endpoint: Endpoint, error: RpcError): void {
    if (endpoint.ejected) return
    endpoint.ejected = true
    // A server that worked for a while starts its probes from the first step; one that failed
    // again right after coming back keeps its growing backoff.
    if (performance.now() - endpoint.admittedAt >= this.options.helloTimeout) endpoint.backoff.reset()
    this.emit('unhealthy', { address: endpoint.key, slot: undefined, error })
    this.#syncProbes()
  }

  #readmit(endpoint: Endpoint): void {
    if (!endpoint.ejected) return
    endpoint.ejected = false
    endpoint.admittedAt = performance.now()
    clearTimeout(endpoint.probeTimer)
    endpoint.probeTimer = undefined
    this.emit('healthy', { address: endpoint.key })
    this.#syncProbes()
  }

  /**
   * While some server works, each failed one is probed on its own backoff schedule, so it comes
   * back when it recovers. When none works the slots' own attempts do that job: no extra attempts.
   */
  #syncProbes(): void {
    const someHealthy = this.#endpoints.some((e) => !e.ejected)
    for (const endpoint of this.#endpoints) {
      const wanted = someHealthy && endpoint.ejected && !this.#closed
      if (wanted && endpoint.probeTimer === undefined && endpoint.probing === undefined) {
        endpoint.probeTimer = setTimeout(() => this.#probe(endpoint), endpoint.backoff.next())
        endpoint.probeTimer.unref()
      } else if (!wanted && endpoint.probeTimer !== undefined) {
        clearTimeout(endpoint.probeTimer)
        endpoint.probeTimer = undefined
      }
    }
  }

  #probe(endpoint: Endpoint): void {
    endpoint.probeTimer = undefined
    if (this.#closed || !endpoint.ejected || !this.#endpoints.includes(endpoint)) return
    const probing = new AbortController()
    endpoint.probing = probing
    endpoint.lastTried = performance.now()
    ClientConnection.connect(this.options, this.#events, targetOf(endpoint, probing)).then(
      (connection) => {
        endpoint.probing = undefined
        if (this.#closed || probing.signal.aborted) {
          connection.destroy(new RpcError(Code.CANCELLED, 'pool closed'))
          return
        }
        this.#readmit(endpoint)
        this.#place(connection, endpoint)
      },
      (err: unknown) => {
        endpoint.probing = undefined
        if (this.#closed || probing.signal.aborted) return
        this.#reportFailure(endpoint, fromPlatformError(err, 'connection attempt failed'))
        this.#syncProbes()
      },
    )
  }

  /**
   * Puts a connection opened to `endpoint` to use: in a slot that has none, or in place of a
   * slot's connection to a server with at least two more slots (which drains). Otherwise it closes.
   */
  #place(connection: ClientConnection, endpoint: Endpoint): void {
    const idle = this.#slots.find((s) => !s.connection && !s.dialing && !s.retired)
    if (idle !== undefined) {
      idle.tried = []
      this.#adopt(idle, connection, endpoint)
      return
    }
    const load = this.#load()
    let source: Slot | undefined
    for (const slot of this.#slots) {
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
    this.#detach(source)
    this.#adopt(source, connection, endpoint)
  }

  /** Moves one slot at a time onto the least loaded healthy server until loads differ by one at most. */
  #rebalance(): void {
    if (this.#closed || !this.#started || this.#moving || this.#endpoints.length < 2) return
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
    ClientConnection.connect(this.options, this.#events, targetOf(endpoint, moving)).then(
      (connection) => {
        this.#moving = undefined
        if (this.#closed || moving.signal.aborted || !this.#endpoints.includes(endpoint)) {
          connection.destroy(new RpcError(Code.CANCELLED, 'connection no longer needed'))
          return
        }
        this.#place(connection, endpoint)
      },
      (err: unknown) => {
        this.#moving = undefined
        if (this.#closed || moving.signal.aborted) return
        const error = fromPlatformError(err, 'connection attempt failed')
        this.#reportFailure(endpoint, error)
        this.#eject(endpoint, error)
      },
    )
  }

  /** Takes a new list of addresses: new servers get slots, servers gone from it are drained. */
  #setEndpoints(addresses: readonly ResolvedAddress[]): void {
    const previous = new Map(this.#endpoints.map((e) => [e.key, e]))
    const next: Endpoint[] = []
    let added = false
    for (const address of addresses) {
      const known = previous.get(address.key)
      previous.delete(address.key)
      if (known === undefined) added = true
      next.push(known ?? this.#newEndpoint(address))
    }
    if (!added && previous.size === 0) return
    this.#endpoints = shuffle(next)
    for (const gone of previous.values()) {
      clearTimeout(gone.probeTimer)
      gone.probeTimer = undefined
      gone.probing?.abort()
    }
    for (const slot of this.#slots) {
      slot.tried = slot.tried.filter((e) => !previous.has(e.key))
      const gone = slot.endpoint !== undefined && previous.get(slot.endpoint.key) === slot.endpoint
      if (gone && slot.connection) {
        this.#detach(slot)
        this.#dial(slot)
      } else if (gone && slot.dialing) {
        slot.dialing.abort()
        slot.dialing = undefined
        this.#dial(slot)
      } else if (added && slot.timer !== undefined && this.#started) {
        // A server appeared: a slot waiting after failures tries it now.
        clearTimeout(slot.timer)
        this.#dial(slot)
      }
    }
    this.#syncProbes()
    this.#rebalance()
    this.#updateState()
  }

  #resolve(): void {
    if (this.#resolving || this.#closed) return
    this.#resolving = true
    this.#lastResolve = performance.now()
    this.#resolver
      .resolve()
      .then(
        ({ addresses, error }) => {
          this.#resolving = false
          if (this.#closed) return
          this.#resolveError = error
          if (error) this.emit('error', error)
          this.#setEndpoints(addresses)
        },
        (err: unknown) => {
          this.#resolving = false
          this.#resolveError = fromPlatformError(err, 'address lookup failed')
        },
      )
      .finally(() => {
        for (const slot of this.#slots) {
          if (slot.awaitingAddresses) {
            slot.awaitingAddresses = false
            this.#dial(slot)
          }
        }
      })
      .catch((err: unknown) => this.emit('error', RpcError.from(err)))
  }

  #armResolveTimer(): void {
    this.#resolveTimer = setTimeout(() => {
      this.#resolve()
      this.#armResolveTimer()
    }, this.options.resolveInterval)
    this.#resolveTimer.unref()
  }

  /** After a failure, look the names up again (at most once per backoff.initial). */
  #resolveSoon(): void {
    if (!this.#resolver.dynamic) return
    if (performance.now() - this.#lastResolve >= this.options.backoff.initial) this.#resolve()
  }

  // --- state ---

  #updateState(): void {
    const next: PoolState = this.#closed
      ? 'closed'
      : this.#ready.length > 0
        ? 'ready'
        : !this.#started
          ? 'idle'
          : this.#failing
            ? 'transient_failure'
            : 'connecting'
    if (next === this.#state) return
    const from = this.#state
    this.#state = next
    this.emit('stateChange', { from, to: next })
    if (next === 'transient_failure') this.#failFast()
  }

  #slotState(slot: Slot): SlotState {
    if (this.#closed) return 'closed'
    if (slot.connection) return this.#ready.includes(slot.connection) ? 'ready' : 'connecting'
    if (slot.dialing || slot.awaitingAddresses) return 'connecting'
    if (slot.timer) return 'transient_failure'
    return 'idle'
  }

  #allConnected(): boolean {
    return this.#slots.every((s) => s.connection !== undefined && this.#ready.includes(s.connection))
  }

  #settleConnectWaiters(): void {
    if (this.#connectWaiters.length === 0 || !this.#allConnected()) return
    for (const waiter of this.#connectWaiters.splice(0)) waiter.resolve()
  }

  #rejectConnectWaiters(error: RpcError): void {
    for (const waiter of this.#connectWaiters.splice(0)) waiter.reject(error)
  }

  #refTimers(ref: boolean): void {
    for (const slot of this.#slots) {
      if (slot.timer === undefined) continue
      if (ref) slot.timer.ref()
      else slot.timer.unref()
    }
  }
}

const EMPTY = Buffer.alloc(0)
const NO_OPTIONS: CallOptions = Object.freeze({})
/** Resends of a call that provably never reached a handler (refused, or never written). */
const MAX_UNPROCESSED_RESENDS = 3

function targetOf(endpoint: Endpoint, controller: AbortController): ConnectTarget {
  return {
    host: endpoint.host,
    port: endpoint.port,
    servername: endpoint.servername,
    signal: controller.signal,
  }
}

function withTimeout<T extends { timeout?: number }>(options: T, timeout: number | undefined): T {
  return timeout === options.timeout ? options : { ...options, timeout }
}

function closedError(): RpcError {
  return new RpcError(Code.UNAVAILABLE, 'pool is closed')
}

/** Waits `ms` between retries; ends early with the call's signal, or when the pool closes. */
function sleep(ms: number, signal: AbortSignal | undefined, closing: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortedError(signal))
    if (closing.aborted) return reject(closedError())
    const settle = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      closing.removeEventListener('abort', onClose)
    }
    const onAbort = () => {
      settle()
      reject(abortedError(signal!))
    }
    const onClose = () => {
      settle()
      reject(closedError())
    }
    const timer = setTimeout(() => {
      settle()
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
    closing.addEventListener('abort', onClose, { once: true })
  })
}

/** Fisher–Yates: each pool starts its slots on different servers, so many clients spread over all of them. */
function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[items[i], items[j]] = [items[j], items[i]]
  }
  return items
}

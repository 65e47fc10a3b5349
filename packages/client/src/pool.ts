import { callsObserved, type Interceptor, observedInterceptors, payloadBytes } from '@srpc/core'
import {
  Code,
  checkRoute,
  formatMs,
  invalidOption,
  nonNegativeIntOption,
  positiveIntOption,
  RpcError,
} from '@srpc/protocol'
import { EventEmitter } from 'eventemitter3'
import { CallQueue, type CallQueueHost, closedError, type QueuedCallOptions } from './call-queue'
import { type ClientSession, callOf, type SessionOptions } from './client-session'
import { type ClientStream, streamOf } from './client-stream'
import type { ClientConnection, CallOptions as ConnectionCallOptions, PoolCallOptions } from './connection'
import {
  type ConnectivityFacts,
  type ConnectivityHost,
  ConnectivityState,
  ConnectWaiters,
  type PoolEvents,
  type PoolState,
} from './connectivity-state'
import { interceptStreaming, interceptUnary } from './intercepted-call'
import { type BalancerHooks, LoadBalancer } from './load-balancer'
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
import type { Picker } from './picker'
import { logPoolEvents } from './pool-logging'
import { type Resender, refusedCallResender } from './resend'
import { resolverFor } from './resolver'
import { retryInterceptor } from './retry'
import { type ConnectionStats, whenClosed } from './subchannel'

export type { PoolEvents, PoolState } from './connectivity-state'
export type { ConnectionStats, SlotState } from './subchannel'

export interface CallOptions extends ConnectionCallOptions {
  /**
   * While no connection is ready after attempts failed, wait (until the deadline) instead of
   * failing at once with UNAVAILABLE. Defaults to the pool's `waitForReady`.
   */
  waitForReady?: boolean
  /** Unary calls only: send again on the codes listed, for idempotent routes. Bounded by `timeout`. */
  retry?: RetryPolicy
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
  /** The options of a call that sets none: the pool's default timeout, enforced here and not sent. */
  #implicitOptions: PoolCallOptions
  /** Aborted by close() and destroy(): ends retry waits at once. Made by the first call with a retry policy. */
  #closing$: AbortController | undefined
  #lb: LoadBalancer
  /** The load balancer's picker, and the connections in rotation it picks among (shared arrays). */
  #balancer: Picker
  #ready: ClientConnection[]
  #queue: CallQueue
  #connectivity: ConnectivityState
  #connectWaiters = new ConnectWaiters()
  #closed = false
  #closing: Promise<void> | undefined
  #destroying: Promise<void> | undefined

  constructor(options: PoolOptions) {
    super()
    this.options = resolvePoolOptions(options)
    this.#implicitOptions = Object.freeze({ timeout: this.options.defaultTimeout, implicitTimeout: true })
    // One object serves the queue and the balancer as their host (a literal with getters per
    // pool made a dictionary-mode object and a hidden class of its own: about 1.7 KiB a pool).
    const hooks = new Pool.#Hooks(this)
    this.#queue = new CallQueue(hooks)
    this.#lb = new LoadBalancer(this.options, resolverFor(this.options), this, hooks)
    logPoolEvents(this, this.options.logger)
    this.#balancer = this.#lb.picker
    this.#ready = this.#lb.ready
    this.#connectivity = new ConnectivityState(hooks)
  }

  /** What the call queue and the load balancer ask of their pool (inside the class: it reads private state). */
  static readonly #Hooks = class PoolHooks implements CallQueueHost, BalancerHooks, ConnectivityHost {
    readonly #pool: Pool
    readonly maxQueued: number
    readonly waitForReady: boolean

    constructor(pool: Pool) {
      this.#pool = pool
      this.maxQueued = pool.options.maxQueued
      this.waitForReady = pool.options.waitForReady
    }

    // --- CallQueueHost ---
    get closed(): boolean {
      return this.#pool.#closed
    }

    get state(): PoolState {
      return this.#pool.#connectivity.state
    }

    get lastError(): RpcError | undefined {
      return this.#pool.#lb.lastError
    }

    start(): void {
      this.#pool.#lb.start()
    }

    configurationError(): RpcError | undefined {
      return this.#pool.#lb.configurationError()
    }

    pick(): ClientConnection | undefined {
      return this.#pool.#balancer.pick(this.#pool.#ready)
    }

    refTimers(ref: boolean): void {
      this.#pool.#lb.refTimers(ref)
    }

    // --- BalancerHooks ---
    get queued(): number {
      return this.#pool.#queue.size
    }

    dispatch(): void {
      this.#pool.#queue.dispatch()
    }

    failWaiting(error: RpcError): void {
      this.#pool.#queue.failAll(error)
    }

    rotated(): void {
      this.#pool.#settleConnectWaiters()
    }

    roundFailed(error: RpcError): void {
      this.#pool.#rejectConnectWaiters(error)
    }

    changed(): void {
      this.#pool.#connectivity.update()
    }

    // --- ConnectivityHost ---
    connectivityFacts(): ConnectivityFacts {
      const pool = this.#pool
      return {
        closed: pool.#closed,
        ready: pool.#ready.length,
        started: pool.#lb.started,
        failing: pool.#lb.failing,
      }
    }

    stateChanged(from: PoolState, to: PoolState): void {
      const pool = this.#pool
      pool.emit('stateChange', { from, to })
      if (to === 'transient_failure') pool.#queue.failFast()
    }
  }

  get state(): PoolState {
    return this.#connectivity.state
  }

  /** Connections the pool keeps open (see `setSize`). */
  get size(): number {
    return this.#lb.slots.length
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
    this.#lb.start()
    if (this.#lb.allConnected()) return Promise.resolve()
    return this.#connectWaiters.wait()
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
      // Without interceptors or a retry policy, the direct path: nothing allocated for them.
      // The diagnostics channels' publisher joins only while someone subscribes (one check per call).
      if (options.retry !== undefined || this.options.interceptors.length > 0 || callsObserved()) {
        return this.#intercepted(route, bytes, options)
      }
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#send(route, bytes, options, 0)
  }

  /**
   * A call through the interceptors. Its own method: a closure in `call` would make every call,
   * intercepted or not, allocate the context that holds what the closure captures.
   */
  #intercepted(route: string, bytes: Buffer, options: CallOptions): Promise<Buffer> {
    return interceptUnary(this.#chainFor(options), route, bytes, options, (once) =>
      this.#send(route, bytes, once, 0),
    )
  }

  /** The pool's interceptors, with the call's retry policy innermost (user ones see one call, not each attempt). */
  #chainFor(options: CallOptions): readonly Interceptor[] {
    const interceptors = observedInterceptors(this.options.interceptors)
    if (options.retry === undefined) return interceptors
    if (this.#closing$ === undefined) {
      this.#closing$ = new AbortController()
      if (this.#closed) this.#closing$.abort()
    }
    const retry = retryInterceptor(resolveRetryPolicy(options.retry), this.#closing$.signal)
    return [...interceptors, retry]
  }

  /** A server stream: iterate the chunks with `for await`; `break` cancels it on the server. */
  callStream(
    route: string,
    payload: Uint8Array | string = EMPTY,
    options: CallOptions = NO_OPTIONS,
  ): ClientStream {
    // A throw here fails the first next(): that is where a stream reports its errors.
    return streamOf(() => {
      checkRoute(route)
      const bytes = payloadBytes(payload, 'payload')
      checkCallOptions(options)
      checkTimeout(options.timeout)
      if (options.waitForReady !== undefined) checkWaitForReady(options.waitForReady)
      const open = (once: CallOptions) =>
        this.#withConnection(once, (connection, timeout) =>
          connection.openStream(route, bytes, withTimeout(once, timeout)),
        )
      const interceptors = observedInterceptors(this.options.interceptors)
      if (interceptors.length === 0) return open(options)
      return interceptStreaming(interceptors, 'server-stream', route, bytes, options, open)
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
    const open = (once: CallOptions & SessionOptions) =>
      this.#withConnection(once, (connection, timeout) =>
        connection.openSession(route, withTimeout(once, timeout)),
      )
    const interceptors = observedInterceptors(this.options.interceptors)
    if (interceptors.length === 0) return open(options)
    // The interceptors see the call behind the session (its counts, its end); the caller gets the session.
    return interceptStreaming(interceptors, 'session', route, EMPTY, options, (once) =>
      open(once).then(callOf),
    ).then((call) => call.session)
  }

  /** Round-trip time of a ping on every ready connection, in ms (NaN for one that did not answer). */
  async ping(options: { timeout?: number } = {}): Promise<number[]> {
    const timeout = options.timeout ?? 5000
    return Promise.all(this.#ready.map((c) => c.ping(timeout).catch(() => Number.NaN)))
  }

  /** Per-connection numbers for dashboards. */
  stats(): ConnectionStats[] {
    return this.#lb.slots.map((slot) => slot.stats())
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
    this.#lb.setSize(n)
    this.#settleConnectWaiters()
  }

  /**
   * Graceful stop: new calls are refused (UNAVAILABLE "pool is closed"), and so are calls still
   * waiting for a connection (they never reached a server); calls, streams and sessions in flight
   * finish, each within its own deadline, then the connections close. After `timeout` ms what is
   * left is destroyed: it fails with CANCELLED. Safe to call twice: both calls get the same
   * promise; `destroy()` cuts a close short.
   */
  close(options: { timeout?: number } = {}): Promise<void> {
    if (this.#destroying) return this.#destroying
    if (this.#closing) return this.#closing
    let timeout: number
    try {
      timeout = nonNegativeIntOption('timeout', options?.timeout, -1)
    } catch (err) {
      return Promise.reject(err)
    }
    const open = this.#shutDown(closedError())
    for (const connection of open) connection.drain()
    let timer: NodeJS.Timeout | undefined
    if (timeout >= 0 && open.length > 0) {
      timer = setTimeout(
        () =>
          void this.destroy(
            new RpcError(Code.CANCELLED, `pool closed: still in flight after ${formatMs(timeout)}`),
          ),
        timeout,
      )
    }
    this.#closing = Promise.all(open.map(whenClosed)).then(() => clearTimeout(timer))
    return this.#closing
  }

  /**
   * Hard stop: every call, stream and session in flight or waiting fails now with `error`
   * (CANCELLED "pool closed" by default), connections close, timers stop. Safe to call twice:
   * both calls get the same promise.
   */
  destroy(error?: Error): Promise<void> {
    if (this.#destroying) return this.#destroying
    const reason =
      error === undefined
        ? new RpcError(Code.CANCELLED, 'pool closed')
        : RpcError.is(error)
          ? error
          : new RpcError(Code.CANCELLED, `pool destroyed: ${error.message}`, { cause: error })
    const open = this.#shutDown(reason)
    const closed = open.map(whenClosed)
    for (const connection of open) connection.destroy(reason)
    this.#destroying = Promise.all(closed).then(() => {})
    return this.#destroying
  }

  /** Stops intake and every background job; returns the connections still open. */
  #shutDown(reason: RpcError): ClientConnection[] {
    if (!this.#closed) {
      this.#closed = true
      this.#closing$?.abort()
      this.#lb.stop()
      this.#queue.failAll(reason)
      this.#rejectConnectWaiters(reason)
      this.#connectivity.update()
    }
    return this.#lb.connections()
  }

  // --- calls ---

  #send(route: string, payload: Buffer, options: CallOptions, resends: number): Promise<Buffer> {
    const connection = this.#balancer.pick(this.#ready)
    if (connection !== undefined) return connection.call(route, payload, options, this.#resender, resends)
    return this.#sendWhenReady(route, payload, options, resends)
  }

  /** No connection is ready: the call waits in the queue (apart from #send, so that a call sent at once allocates no closure context). */
  #sendWhenReady(route: string, payload: Buffer, options: CallOptions, resends: number): Promise<Buffer> {
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

  /** Resends calls no server processed (refused): see resend.ts. */
  readonly #resender: Resender = refusedCallResender(
    (route, payload, options, resends) => this.#send(route, payload, options, resends),
    () => this.#closed,
  )

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

  #enqueue(
    options: QueuedCallOptions,
    start: (connection: ClientConnection, timeout: number | undefined) => void,
    fail: (error: RpcError) => void,
  ): void {
    this.#queue.enqueue(options, start, fail)
  }

  #settleConnectWaiters(): void {
    if (this.#connectWaiters.size > 0 && this.#lb.allConnected()) this.#connectWaiters.resolve()
  }

  #rejectConnectWaiters(error: RpcError): void {
    this.#connectWaiters.reject(error)
  }
}

const EMPTY = Buffer.alloc(0)
const NO_OPTIONS: CallOptions = Object.freeze({})

function withTimeout<T extends { timeout?: number }>(options: T, timeout: number | undefined): T {
  return timeout === options.timeout ? options : { ...options, timeout }
}

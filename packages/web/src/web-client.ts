import { DeadlineScheduler } from '@srpc/core/portable'
import { Code, checkRoute, Flags, formatMs, payloadBytes, RpcError } from '@srpc/protocol'
import { abortedError, ReceivingCall, SessionCall, UnaryCall } from './calls'
import { WebConnection } from './connection'
import {
  type CallOptions,
  checkTimeout,
  DEFAULT_SESSION_CLOSE_TIMEOUT,
  type ResolvedWebClientOptions,
  resolveWebClientOptions,
  type SessionOptions,
  type WebClientOptions,
} from './options'
import { sessionOf, type WebSession } from './web-session'
import { streamOf, type WebStream } from './web-stream'
import { openLink } from './websocket-link'

/**
 * `idle`: no connection yet (one opens with the first call). `connecting`: the WebSocket is
 * opening. `ready`: calls go out now. `reconnecting`: the connection dropped or an attempt failed;
 * the next attempt waits for the backoff. `closed`: `close()` or `destroy()` was called.
 */
export type WebClientState = 'idle' | 'connecting' | 'ready' | 'reconnecting' | 'closed'

export interface StateChange {
  from: WebClientState
  to: WebClientState
}

const EMPTY = new Uint8Array(0)
const NO_OPTIONS: CallOptions = Object.freeze({})
/** A refused request-response call (no handler saw it) is sent again this many times at most. */
const MAX_RESENDS = 3

/**
 * An srpc client for browsers, over one WebSocket (`wss://host:port/srpc`, served by
 * `server.listenWebSocket()`): request-response calls, server streams and bidirectional
 * sessions with the same shape as the Node `Pool`, deadlines, `AbortSignal`, metadata and
 * `RpcError` codes. It reconnects with backoff after the connection drops (calls in flight on
 * it fail with UNAVAILABLE; refused request-response calls are sent again), and moves to a new
 * connection when the server says GOAWAY.
 *
 * ```ts
 * const client = new WebClient({ url: 'wss://example.com/srpc' })
 * const reply = await client.call('/echo', 'hello', { timeout: 5000 })
 * ```
 */
export class WebClient {
  readonly options: ResolvedWebClientOptions
  #state: WebClientState = 'idle'
  #connection: WebConnection | undefined
  /** Connections told to go away, finishing their calls. */
  #draining = new Set<WebConnection>()
  #dialing: Promise<WebConnection> | undefined
  #failures = 0
  #retryTimer: ReturnType<typeof setTimeout> | undefined
  #listeners = new Set<(change: StateChange) => void>()
  #closing: Promise<void> | undefined
  #deadlines = new DeadlineScheduler()

  constructor(options: WebClientOptions) {
    this.options = resolveWebClientOptions(options)
  }

  get state(): WebClientState {
    return this.#state
  }

  /** Calls in flight right now. */
  get inFlight(): number {
    let count = this.#connection?.inFlight ?? 0
    for (const connection of this.#draining) count += connection.inFlight
    return count
  }

  /** Listens to state changes (`ready` after a reconnect, …); returns the function that stops it. */
  on(event: 'stateChange', listener: (change: StateChange) => void): () => void {
    if (event !== 'stateChange') throw new RpcError(Code.INVALID_ARGUMENT, `unknown event ${String(event)}`)
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Opens the connection now; rejects with UNAVAILABLE when the attempt fails. */
  async connect(): Promise<void> {
    await this.#connect()
  }

  /**
   * A request-response call: resolves with the reply, rejects with an RpcError. A call without
   * `timeout` gets the client's `defaultTimeout`, enforced here and not sent to the server;
   * `timeout: 0` means no deadline.
   */
  call(
    route: string,
    payload: Uint8Array | string = EMPTY,
    options: CallOptions = NO_OPTIONS,
  ): Promise<Uint8Array> {
    let bytes: Uint8Array
    try {
      checkRoute(route)
      bytes = payloadBytes(payload, 'payload')
      checkTimeout(options.timeout)
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#unary(route, bytes, options, this.#timeoutOf(options, this.#defaultTimeout), 0)
  }

  /** A server stream: iterate the chunks with `for await`; `break` cancels it on the server. */
  callStream(
    route: string,
    payload: Uint8Array | string = EMPTY,
    options: CallOptions = NO_OPTIONS,
  ): WebStream {
    return streamOf(async () => {
      checkRoute(route)
      const bytes = payloadBytes(payload, 'payload')
      checkTimeout(options.timeout)
      const timeout = this.#timeoutOf(options)
      const started = Date.now()
      const connection = await this.#ready(options, timeout, true)
      const left = remaining(timeout, started)
      const call = new ReceivingCall(connection, connection.nextId(), route)
      call.onResponseMetadata = options.onResponseMetadata
      return this.#open(connection, call, Flags.REQUEST | Flags.STREAM, route, bytes, options, left)
    })
  }

  /**
   * Opens a bidirectional session on the current connection. If that connection dies the session
   * fails with UNAVAILABLE; open a new one (the client is already reconnecting).
   */
  async createBidirectionalSession(route: string, options: SessionOptions = NO_OPTIONS): Promise<WebSession> {
    checkRoute(route)
    checkTimeout(options.timeout)
    const timeout = this.#timeoutOf(options)
    const started = Date.now()
    const connection = await this.#ready(options, timeout, true)
    const left = remaining(timeout, started)
    const call = new SessionCall(
      connection,
      connection.nextId(),
      route,
      options.closeTimeout ?? DEFAULT_SESSION_CLOSE_TIMEOUT,
    )
    call.onResponseMetadata = options.onResponseMetadata
    this.#open(connection, call, Flags.STREAM, route, EMPTY, options, left)
    return sessionOf(call)
  }

  /**
   * Graceful stop: no new calls, calls in flight finish for up to `timeout` ms (default 5000),
   * then the connection closes and what is left fails with UNAVAILABLE. Safe to call twice.
   */
  close(options: { timeout?: number } = {}): Promise<void> {
    this.#closing ??= this.#close(options.timeout ?? 5000)
    return this.#closing
  }

  /** Hard stop: every call fails with UNAVAILABLE and the WebSocket closes now. */
  destroy(): Promise<void> {
    this.#shutDown()
    for (const connection of this.#all()) connection.close()
    return this.close({ timeout: 0 })
  }

  async #close(timeout: number): Promise<void> {
    this.#shutDown()
    const connections = this.#all()
    for (const connection of connections) connection.drain()
    const deadline = Date.now() + timeout
    while (connections.some((c) => c.state !== 'closed') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    for (const connection of connections) connection.close()
    this.#deadlines.clear()
  }

  #shutDown(): void {
    clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
    this.#setState('closed')
  }

  #all(): WebConnection[] {
    const all = [...this.#draining]
    if (this.#connection) all.push(this.#connection)
    return all
  }

  /** A call's deadline, ms: its own `timeout` (0: none), else `fallback`. */
  #timeoutOf(options: CallOptions, fallback: number | undefined = undefined): number | undefined {
    if (options.timeout !== undefined) return options.timeout > 0 ? options.timeout : undefined
    return fallback
  }

  /** Request-response calls that set no timeout get the client's default (streams and sessions do not). */
  get #defaultTimeout(): number | undefined {
    return this.options.defaultTimeout > 0 ? this.options.defaultTimeout : undefined
  }

  async #unary(
    route: string,
    bytes: Uint8Array,
    options: CallOptions,
    timeout: number | undefined,
    resends: number,
  ): Promise<Uint8Array> {
    const negotiate =
      options.metadata !== undefined ||
      options.waitForExtensions === true ||
      options.onResponseMetadata !== undefined
    const started = Date.now()
    // The usual case, connected and nothing to wait for, takes no promise and no timer here.
    const connection =
      this.#usableNow(negotiate, options.signal) ?? (await this.#ready(options, timeout, negotiate))
    const left = remaining(timeout, started)
    const call = this.#open(
      connection,
      new UnaryCall(connection, connection.nextId(), options.onResponseMetadata),
      Flags.REQUEST,
      route,
      bytes,
      options,
      left,
    )
    try {
      return await call.promise
    } catch (err) {
      // Refused: no handler saw it (GOAWAY, a lost connection before it was read): send it again.
      if (RpcError.is(err) && err.refused && resends < MAX_RESENDS && this.#state !== 'closed') {
        const after = remaining(timeout, started)
        if (after === undefined || after > 0) return this.#unary(route, bytes, options, after, resends + 1)
      }
      throw err
    }
  }

  /** Registers `call`, writes its opening frame and starts its deadline; a frame that cannot be written fails it. */
  #open<C extends UnaryCall | ReceivingCall>(
    connection: WebConnection,
    call: C,
    flags: number,
    route: string,
    payload: Uint8Array,
    options: CallOptions,
    timeout: number | undefined,
  ): C {
    if (connection.inFlight >= connection.maxConcurrentStreams) {
      throw new RpcError(
        Code.RESOURCE_EXHAUSTED,
        `the server allows ${connection.maxConcurrentStreams} calls in flight on one connection`,
        { refused: true },
      )
    }
    connection.register(call)
    try {
      connection.open(flags, call.id, route, payload, options.metadata, sent(options, timeout))
    } catch (err) {
      connection.forget(call.id)
      throw err
    }
    call.start(timeout, options.signal)
    return call
  }

  /** The open connection when a call can use it right now, without waiting for anything. */
  #usableNow(negotiate: boolean, signal: AbortSignal | undefined): WebConnection | undefined {
    const connection = this.#connection
    if (connection === undefined || !connection.usable || (negotiate && !connection.extended))
      return undefined
    if (signal?.aborted || this.#state === 'closed') return undefined
    return connection
  }

  /**
   * A usable connection for a call: the open one, or the next attempt's. Bounded by the call's
   * deadline and signal. Without `waitForReady` a failed attempt fails the call with UNAVAILABLE.
   * `negotiate`: wait (up to helloTimeout) for the server's HELLO, so the call gets the extensions.
   */
  async #ready(
    options: CallOptions,
    timeout: number | undefined,
    negotiate: boolean,
  ): Promise<WebConnection> {
    const { signal } = options
    const started = Date.now()
    for (;;) {
      if (signal?.aborted) throw abortedError(signal)
      if (this.#state === 'closed') throw new RpcError(Code.UNAVAILABLE, 'client closed', { refused: true })
      const left = remaining(timeout, started)
      let connection: WebConnection
      try {
        connection = await bounded(this.#connect(), left, signal)
      } catch (err) {
        if (!options.waitForReady || !RpcError.is(err, Code.UNAVAILABLE)) throw err
        await bounded(sleep(this.options.backoff.initial), remaining(timeout, started), signal)
        continue
      }
      if (negotiate && !connection.extended) {
        await bounded(connection.negotiated(this.options.helloTimeout), remaining(timeout, started), signal)
      }
      if (connection.usable) return connection
    }
  }

  /** The usable connection, or the attempt under way, or a new attempt. */
  #connect(): Promise<WebConnection> {
    const current = this.#connection
    if (current?.usable) return Promise.resolve(current)
    if (this.#state === 'closed') return Promise.reject(new RpcError(Code.UNAVAILABLE, 'client closed'))
    this.#dialing ??= this.#dial()
    return this.#dialing
  }

  async #dial(): Promise<WebConnection> {
    clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
    if (this.#state !== 'reconnecting') this.#setState('connecting')
    try {
      const link = await openLink(this.options.url, this.options.WebSocket, this.options.connectTimeout)
      if (this.#state === 'closed') {
        link.close()
        throw new RpcError(Code.UNAVAILABLE, 'client closed')
      }
      const connection = new WebConnection(
        link,
        this.options,
        { onGoaway: (c) => this.#onGoaway(c), onClose: (c, error) => this.#onClose(c, error) },
        this.#deadlines,
      )
      this.#connection = connection
      this.#failures = 0
      this.#setState('ready')
      return connection
    } catch (err) {
      this.#failures++
      this.#scheduleRetry()
      throw RpcError.from(err, Code.UNAVAILABLE)
    } finally {
      this.#dialing = undefined
    }
  }

  /** Next attempt after a jittered, growing delay (only while the client is meant to stay connected). */
  #scheduleRetry(): void {
    if (this.#state === 'closed') return
    this.#setState('reconnecting')
    if (!this.options.reconnect || this.#retryTimer !== undefined) return
    const { initial, multiplier, max } = this.options.backoff
    const ceiling = Math.min(max, initial * multiplier ** this.#failures)
    const delay = Math.round(initial + Math.random() * (ceiling - initial))
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined
      this.#connect().catch(() => {})
    }, delay)
  }

  #onGoaway(connection: WebConnection): void {
    if (connection !== this.#connection) return
    this.#connection = undefined
    this.#draining.add(connection)
    // The next call dials; a page that keeps a session open reconnects now.
    if (this.#state !== 'closed' && this.options.reconnect) this.#connect().catch(() => {})
  }

  #onClose(connection: WebConnection, _error: RpcError | undefined): void {
    this.#draining.delete(connection)
    if (connection !== this.#connection) return
    this.#connection = undefined
    this.#failures++
    this.#scheduleRetry()
  }

  #setState(to: WebClientState): void {
    const from = this.#state
    if (from === to || from === 'closed') return
    this.#state = to
    for (const listener of [...this.#listeners]) {
      try {
        listener({ from, to })
      } catch (err) {
        // A listener's bug must not break the client; report it where the page can see it.
        queueMicrotask(() => {
          throw err
        })
      }
    }
  }
}

/** Time left of `timeout` since `started`, ms (undefined: no deadline). */
function remaining(timeout: number | undefined, started: number): number | undefined {
  if (timeout === undefined) return undefined
  return Math.max(0, timeout - (Date.now() - started))
}

/** The deadline told to the server: only one the caller set (a default timeout stays local). */
function sent(options: CallOptions, left: number | undefined): number | undefined {
  return options.timeout === undefined || options.timeout === 0 ? undefined : left
}

/** `promise`, or DEADLINE_EXCEEDED after `timeout` ms, or CANCELLED when `signal` aborts. */
function bounded<T>(
  promise: Promise<T>,
  timeout: number | undefined,
  signal: AbortSignal | undefined,
): Promise<T> {
  if (timeout === undefined && signal === undefined) return promise
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortedError(signal))
    if (timeout !== undefined && timeout <= 0) {
      return reject(new RpcError(Code.DEADLINE_EXCEEDED, 'deadline exceeded while waiting for a connection'))
    }
    const timer =
      timeout === undefined
        ? undefined
        : setTimeout(
            () =>
              finish(() =>
                reject(
                  new RpcError(
                    Code.DEADLINE_EXCEEDED,
                    `deadline of ${formatMs(timeout)} exceeded waiting for a connection`,
                  ),
                ),
              ),
            timeout,
          )
    const onAbort = () => finish(() => reject(abortedError(signal!)))
    signal?.addEventListener('abort', onAbort, { once: true })
    let settled = false
    function finish(then: () => void) {
      if (settled) return
      settled = true
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      then()
    }
    promise.then(
      (value) => finish(() => resolve(value)),
      (err) => finish(() => reject(err)),
    )
  })
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

import type { AddressInfo } from 'node:net'
import { createServer, type TLSSocket, type Server as TlsServer } from 'node:tls'
import {
  ALL_FEATURES,
  type ExtensionSettings,
  type Interceptor,
  type Transport,
  tlsTransport,
} from '@srpc/core'
import { Code, invalidOption, RpcError } from '@srpc/protocol'
import { EventEmitter } from 'eventemitter3'
import { ConcurrencyLimiter } from './concurrency-limiter'
import type { Middleware } from './middleware'
import type { Handler, Mux } from './mux'
import {
  DEFAULT_SHUTDOWN_TIMEOUT,
  type ResolvedServerOptions,
  resolveServerOptions,
  type ServerOptions,
} from './options'
import { Router } from './router'
import type { ServerCall } from './server-call'
import { type ConnectionHost, ServerConnection } from './server-connection'
import { interceptCall, startCall } from './server-interceptors'

export type ServerState = 'idle' | 'listening' | 'draining' | 'closed'

export interface ServerEvents {
  /** A client connected (after the TLS handshake), or a transport was accepted. */
  connection: [peer: { transport: string; address: string | undefined; port: number | undefined }]
  /** A client connection closed; `error` is set when it did not close cleanly. */
  disconnect: [error: RpcError | undefined]
  /** Something went wrong that no caller will see: a handler threw a non-RpcError. */
  error: [error: Error]
  /** A client failed before it had a connection: TLS handshake error or timeout, non-TLS bytes. */
  clientError: [error: Error]
}

/**
 * An srpc server: a route mux and a worker pool serving connections from its TLS listener
 * (`listen()`) or handed to it (`accept(transport)`).
 *
 * ```ts
 * const server = new Server({ address: '127.0.0.1:0', tls: serverOptions })
 * server.mux.handle('/health', (ctx) => ctx.reply('ok'))
 * const { port } = await server.listen()
 * await server.shutdown({ timeout: 5000 })
 * ```
 */
export class Server extends EventEmitter<ServerEvents> implements ConnectionHost {
  readonly options: ResolvedServerOptions
  readonly pool: ConcurrencyLimiter
  readonly extensionSettings: ExtensionSettings
  #tls: TlsServer | undefined
  #connections = new Set<ServerConnection>()
  #state: ServerState = 'idle'
  #sessions = 0
  #shutdown: Promise<void> | undefined
  #onAllClosed: (() => void) | undefined
  #router = new Router()
  /** Ends the grace period of a shutdown in progress at once. */
  #hurry: (() => void) | undefined
  /** destroy() was called: connections are dropped, not sent their calls' errors. */
  #hard = false
  #shutdownReason: RpcError | undefined

  constructor(options: ServerOptions = {}) {
    super()
    this.options = resolveServerOptions(options)
    this.pool = new ConcurrencyLimiter(this.options.workers, this.options.maxQueue)
    this.extensionSettings = {
      features: ALL_FEATURES,
      compression: this.options.compression,
      initialWindow: this.options.initialWindow,
      maxWindow: this.options.maxWindow,
      maxFrameSize: this.options.maxFrameSize,
      maxConcurrentStreams: this.options.maxConcurrentStreams,
    }
  }

  /** The route table (`handle`, `fallback`, `routes`); `server.handle` is the shorthand. */
  get mux(): Mux {
    return this.#router.mux
  }

  get state(): ServerState {
    return this.#state
  }

  /** Set once a graceful shutdown began: what calls' `ctx.shutdownSignal` is aborted with. */
  get shutdownReason(): RpcError | undefined {
    return this.#shutdownReason
  }

  get draining(): boolean {
    return this.#state === 'draining' || this.#state === 'closed'
  }

  /** Open connections right now. */
  get connections(): number {
    return this.#connections.size
  }

  /** Shorthand for `server.mux.handle(route, handler)`. */
  handle(route: string, handler: Handler): this {
    this.#router.mux.handle(route, handler)
    return this
  }

  /** Shorthand for `server.mux.fallback(handler)`: answers calls to routes nobody registered. */
  fallback(handler: Handler): this {
    this.#router.mux.fallback(handler)
    return this
  }

  /**
   * Adds middleware that runs around every handler, in the order added: calls to registered
   * routes and to unknown ones alike (those reach the fallback, NOT_FOUND by default), so an auth
   * middleware answers a caller without credentials before it can learn which routes exist.
   * Middleware is the handler-level layer: it runs in a worker slot and settles when the handler
   * returns. To see a call's final code (a stream's end, a session's close), use `interceptors`.
   */
  use(middleware: Middleware): this {
    if (typeof middleware !== 'function')
      throw new RpcError(Code.INVALID_ARGUMENT, 'middleware must be a function')
    this.#router.use(middleware)
    return this
  }

  /**
   * Starts the TLS listener; resolves with the bound address once the port is open. Every
   * connection it takes goes through `accept()`. Needs the `tls` option.
   */
  listen(): Promise<{ address: string; port: number }> {
    if (this.#state !== 'idle') {
      return Promise.reject(new RpcError(Code.FAILED_PRECONDITION, `cannot listen: server is ${this.#state}`))
    }
    if (this.options.tls === undefined) {
      try {
        invalidOption('tls', 'is required to listen (key and cert, see @srpc/tlsutil)')
      } catch (err) {
        return Promise.reject(err)
      }
    }
    const tls = createServer({
      minVersion: 'TLSv1.2',
      ...this.options.tls,
      handshakeTimeout: this.options.handshakeTimeout,
    })
    this.#tls = tls
    tls.on('secureConnection', (socket: TLSSocket) => this.accept(tlsTransport(socket)))
    // Garbage, stalled handshakes and bad certificates: the socket is already gone; tell observers.
    // Node leaves the socket open when this event has a listener: close it ourselves.
    tls.on('tlsClientError', (err, socket) => {
      socket.destroy()
      this.emit('clientError', err)
    })
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => {
        this.#tls = undefined
        reject(
          new RpcError(
            Code.UNAVAILABLE,
            `cannot listen on ${this.options.host}:${this.options.port}: ${err.message}`,
            { cause: err },
          ),
        )
      }
      tls.once('error', onError)
      tls.listen(this.options.port, this.options.host, () => {
        tls.off('error', onError)
        tls.on('error', (err) => this.emit('error', err))
        this.#state = 'listening'
        const { address, port } = tls.address() as AddressInfo
        resolve({ address, port })
      })
    })
  }

  /**
   * Graceful stop: stops accepting, refuses new calls with UNAVAILABLE, tells srpc clients to go
   * away (GOAWAY), aborts `ctx.shutdownSignal` so long streams and sessions can say goodbye, lets
   * calls in flight finish for up to `timeout` ms, then fails what is left with UNAVAILABLE
   * "server is shutting down" and closes the connections. Safe to call twice: both calls get the
   * same promise.
   */
  shutdown(options: { timeout?: number } = {}): Promise<void> {
    if (this.#shutdown) return this.#shutdown
    const timeout = options.timeout ?? DEFAULT_SHUTDOWN_TIMEOUT
    this.#shutdown = this.#drainAndClose(timeout)
    return this.#shutdown
  }

  /** Hard stop: aborts every call and closes every connection now, without telling the clients why. */
  destroy(): Promise<void> {
    this.#hard = true
    // During a graceful shutdown this cuts its wait short; otherwise it is a shutdown with no grace.
    this.#hurry?.()
    return this.shutdown({ timeout: 0 })
  }

  async #drainAndClose(timeout: number): Promise<void> {
    this.#state = 'draining'
    const reason = new RpcError(Code.UNAVAILABLE, 'server is shutting down')
    this.#shutdownReason = reason
    const tls = this.#tls
    const listenerClosed = tls
      ? new Promise<void>((resolve) => tls.close(() => resolve()))
      : Promise.resolve()
    // Accepted transports count too: a server without a listener still waits for its clients.
    const allClosed =
      this.#connections.size === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            this.#onAllClosed = resolve
          })
    for (const connection of this.#connections) connection.shutdown(reason)
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeout)
      this.#hurry = resolve
    })
    await Promise.race([Promise.all([listenerClosed, allClosed]), deadline])
    clearTimeout(timer)
    for (const connection of this.#connections) {
      if (this.#hard) connection.destroy(reason)
      else connection.cut(reason)
    }
    await listenerClosed
    await allClosed
    this.#state = 'closed'
  }

  /**
   * Serves one connected transport exactly as a connection from `listen()`: the same limits,
   * events and shutdown. The server owns it from now on. Once `maxConnections` are open, or
   * while the server shuts down, the client is told why (RESOURCE_EXHAUSTED, UNAVAILABLE) and
   * the transport closed. Works without `listen()` and without the `tls` option.
   */
  accept(transport: Transport): void {
    if (typeof transport?.start !== 'function' || typeof transport.write !== 'function') {
      throw new RpcError(Code.INVALID_ARGUMENT, 'accept() needs a Transport (see @srpc/core)')
    }
    if (this.draining) {
      const refused = new ServerConnection(transport, this)
      refused.frames.failConnection(new RpcError(Code.UNAVAILABLE, 'server is shutting down'))
      return
    }
    if (this.#connections.size >= this.options.maxConnections) {
      // Tell the client why before closing, so it backs off instead of retrying blindly.
      const refused = new ServerConnection(transport, this)
      refused.frames.failConnection(
        new RpcError(
          Code.RESOURCE_EXHAUSTED,
          `server has ${this.options.maxConnections} connections already`,
        ),
      )
      return
    }
    const connection = new ServerConnection(transport, this)
    this.#connections.add(connection)
    const { peer } = connection
    this.emit('connection', { transport: peer.transport, address: peer.address, port: peer.port })
  }

  // --- ConnectionHost ---
  run(call: ServerCall): void {
    const interceptors: readonly Interceptor[] = this.options.interceptors
    if (interceptors.length === 0) return startCall(call, this.pool)
    interceptCall(call, interceptors, this.pool, (error) => this.handlerFailed(error, call))
  }

  lookup(route: string): Handler {
    return this.#router.lookup(route)
  }

  openSession(): boolean {
    if (this.#sessions >= this.options.maxSessions) return false
    this.#sessions++
    return true
  }

  closeSession(): void {
    this.#sessions--
  }

  handlerFailed(error: unknown, call: ServerCall): void {
    let err: Error & { route?: string }
    try {
      err = error instanceof Error ? error : new Error(String(error), { cause: error })
      err.route = call.route
    } catch {
      // A frozen error, or a thrown value String() cannot print (a null-prototype object).
      err = new Error('handler failed with a value that cannot be reported', { cause: error })
      err.route = call.route
    }
    this.emit('error', err)
  }

  connectionClosed(connection: ServerConnection, error: RpcError | undefined): void {
    this.#connections.delete(connection)
    this.emit('disconnect', error)
    if (this.#connections.size === 0) this.#onAllClosed?.()
  }
}

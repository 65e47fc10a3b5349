import type { AddressInfo } from 'node:net'
import { createServer, type TLSSocket } from 'node:tls'
import { type Transport, tlsTransport } from '@srpc/core'
import { Code, invalidOption, nonNegativeIntOption, RpcError } from '@srpc/protocol'
import { EventEmitter } from 'eventemitter3'
import type { ConcurrencyLimiter } from './concurrency-limiter'
import { HealthService, registerHealth } from './health'
import { ServerLifecycle, type ServerState } from './lifecycle'
import type { Middleware } from './middleware'
import type { Handler, Mux, RouteInfo } from './mux'
import {
  DEFAULT_SHUTDOWN_TIMEOUT,
  type ResolvedServerOptions,
  resolveServerOptions,
  type ServerOptions,
} from './options'
import { registerReflection } from './reflection'
import { Router } from './router'
import { ServerConnection } from './server-connection'
import { ServerHost } from './server-host'
import { listenWebSocket, type WebSocketListenOptions } from './websocket-listener'

export type { ServerState }

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

/** Reaches a server's private host, for `@srpc/server/internal` only (set in Server's static block). */
let hostOf: (server: Server) => ServerHost

/**
 * An srpc server: routes, interceptors, middleware and a concurrency limit serving connections
 * from its TLS listener (`listen()`) or handed to it (`accept(transport)`).
 *
 * ```ts
 * const server = new Server({ address: '127.0.0.1:0', tls: serverOptions })
 * server.handle('/health', (ctx) => ctx.reply('ok'))
 * const { port } = await server.listen()
 * await server.close({ timeout: 5000 })
 * ```
 */
export class Server extends EventEmitter<ServerEvents> {
  readonly options: ResolvedServerOptions
  #router = new Router()
  #lifecycle = new ServerLifecycle<ServerConnection>()
  /** What connections see of this server; not part of its public surface. */
  #host: ServerHost
  #listeningTls = false
  #listeningWebSocket = false
  /**
   * The health every server serves (`/srpc.health/check`, `/srpc.health/watch`):
   * `server.health.set('my.Service', 'NOT_SERVING')`; `''` is the whole server, SERVING from the start.
   */
  readonly health: HealthService

  static {
    hostOf = (server) => server.#host
  }

  constructor(options: ServerOptions = {}) {
    super()
    this.options = resolveServerOptions(options)
    this.#host = new ServerHost(this.options, this.#router, this.#lifecycle, this)
    this.#lifecycle.logger = this.options.logger
    this.health = new HealthService(this.options.maxHealthWatchers)
    registerHealth(this.#router.mux, this.health)
    if (this.options.reflection) registerReflection(this.#router.mux)
  }

  /** The route table (`handle`, `fallback`, `routes`); `server.handle` is the shorthand. */
  get mux(): Mux {
    return this.#router.mux
  }

  get state(): ServerState {
    return this.#lifecycle.state
  }

  /** Open connections right now. */
  get connections(): number {
    return this.#lifecycle.size
  }

  /**
   * Serves `route` (matched exactly) with `handler`; ALREADY_EXISTS if the route has one. `info`
   * describes the route (its kind, schemas) for reflection and call checks.
   */
  handle(route: string, handler: Handler, info?: RouteInfo): this {
    this.#router.mux.handle(route, handler, info)
    return this
  }

  /** Answers calls to routes nobody registered (NOT_FOUND by default). */
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
    const state = this.#lifecycle.state
    if (this.#lifecycle.draining || this.#listeningTls) {
      return Promise.reject(new RpcError(Code.FAILED_PRECONDITION, `cannot listen: server is ${state}`))
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
    this.#lifecycle.attach(tls)
    this.#listeningTls = true
    tls.on('secureConnection', (socket: TLSSocket) => this.accept(tlsTransport(socket)))
    // Garbage, stalled handshakes and bad certificates: the socket is already gone; tell observers.
    // Node leaves the socket open when this event has a listener: close it ourselves.
    tls.on('tlsClientError', (err, socket) => {
      this.options.logger.warn(
        { peer: `${socket.remoteAddress}:${socket.remotePort}`, code: (err as { code?: string }).code, err },
        'TLS handshake failed',
      )
      socket.destroy()
      this.emit('clientError', err)
    })
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => {
        this.#lifecycle.detach(tls)
        this.#listeningTls = false
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
        this.#lifecycle.listening()
        const { address, port } = tls.address() as AddressInfo
        resolve({ address, port })
      })
    })
  }

  /**
   * Starts an HTTPS listener (the server's `tls` options) that upgrades requests on `path`
   * (default `/srpc`) to WebSockets for browsers: each socket is served through `accept()` with
   * the same routes, interceptors, limits and shutdown as `listen()`; `ctx.peer.transport` is
   * `websocket` and `ctx.peer.headers` holds the HTTP request's headers. The `Origin` header is
   * checked against `allowedOrigins` before the upgrade (default: same origin only). Resolves with
   * the bound address and the `wss://` URL. May run beside `listen()`.
   */
  listenWebSocket(
    options: WebSocketListenOptions = {},
  ): Promise<{ address: string; port: number; url: string }> {
    if (this.#lifecycle.draining || this.#listeningWebSocket) {
      return Promise.reject(
        new RpcError(
          Code.FAILED_PRECONDITION,
          `cannot listen for WebSockets: server is ${this.#lifecycle.state}`,
        ),
      )
    }
    this.#listeningWebSocket = true
    return listenWebSocket(
      {
        options: this.options,
        lifecycle: this.#lifecycle,
        accept: (transport) => this.accept(transport),
        clientError: (error) => this.emit('clientError', error),
        error: (error) => this.emit('error', error),
      },
      options,
    ).catch((err: unknown) => {
      this.#listeningWebSocket = false
      throw err
    })
  }

  /**
   * Graceful stop: sets every health status to NOT_SERVING (watchers hear it first), stops accepting, refuses new calls with UNAVAILABLE, tells srpc clients to go
   * away (GOAWAY), aborts `ctx.shutdownSignal` so long streams and sessions can say goodbye, lets
   * calls in flight finish for up to `timeout` ms (5 s by default), then fails what is left with
   * UNAVAILABLE "server is shutting down" and closes the connections. Safe to call twice: every
   * call gets the first one's promise (`destroy()` too).
   */
  shutdown(options: { timeout?: number } = {}): Promise<void> {
    const stopping = this.#lifecycle.stopping
    if (stopping) return stopping
    let timeout: number
    try {
      timeout = nonNegativeIntOption('timeout', options?.timeout, DEFAULT_SHUTDOWN_TIMEOUT)
    } catch (err) {
      return Promise.reject(err)
    }
    // Health first: watchers (balancers) hear NOT_SERVING before the drain begins.
    this.health.shutdown()
    return this.#lifecycle.shutdown(timeout)
  }

  /** `shutdown(options)` by its usual Node name: the same stop, the same promise. */
  close(options: { timeout?: number } = {}): Promise<void> {
    return this.shutdown(options)
  }

  /**
   * Hard stop: aborts every call (`ctx.signal`, with `error` as its reason when given, else
   * UNAVAILABLE "server is shutting down") and drops every connection now, without telling the
   * clients why. During a graceful shutdown it cuts the grace period short. Safe to call twice:
   * every call gets the same promise as `shutdown()`.
   */
  destroy(error?: Error): Promise<void> {
    const reason =
      error === undefined
        ? new RpcError(Code.UNAVAILABLE, 'server is shutting down')
        : RpcError.is(error)
          ? error
          : new RpcError(Code.UNAVAILABLE, `server destroyed: ${error.message}`, { cause: error })
    this.health.shutdown()
    return this.#lifecycle.destroy(reason)
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
    if (this.#lifecycle.draining) {
      this.#refuse(transport, new RpcError(Code.UNAVAILABLE, 'server is shutting down'))
      return
    }
    const max = this.options.maxConnections
    if (this.#lifecycle.size >= max) {
      // Tell the client why before closing, so it backs off instead of retrying blindly.
      this.#refuse(transport, new RpcError(Code.RESOURCE_EXHAUSTED, `server has ${max} connections already`))
      return
    }
    const connection = new ServerConnection(transport, this.#host)
    this.#lifecycle.add(connection)
    this.#host.connectionOpened(connection)
    if (this.listenerCount('connection') > 0) {
      const { peer } = connection
      this.emit('connection', { transport: peer.transport, address: peer.address, port: peer.port })
    }
  }

  #refuse(transport: Transport, error: RpcError): void {
    const { address, port } = transport.peer
    this.options.logger.warn(
      { peer: `${address}:${port}`, code: error.code, err: error },
      'connection refused',
    )
    new ServerConnection(transport, this.#host).frames.failConnection(error)
  }
}

/** The concurrency limiter of `server` (for tests and apps, through `@srpc/server/internal`). */
export function limiterOf(server: Server): ConcurrencyLimiter {
  return hostOf(server).pool
}

/** Calls this server has started, every kind and route (cluster stats, through `@srpc/server/internal`). */
export function callsOf(server: Server): number {
  return hostOf(server).calls
}

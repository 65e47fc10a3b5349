import {
  ALL_FEATURES,
  type ExtensionSettings,
  errorFields,
  type Interceptor,
  type Logger,
  observedInterceptors,
  publishConnectionClose,
  publishConnectionOpen,
  SILENT_LOGGER,
} from '@srpc/core'
import { Code, type RpcError } from '@srpc/protocol'
import type { EventEmitter } from 'eventemitter3'
import { ConcurrencyLimiter } from './concurrency-limiter'
import { IdleSweep } from './idle-sweep'
import type { ServerLifecycle } from './lifecycle'
import type { Handler } from './mux'
import type { ResolvedServerOptions } from './options'
import type { Router } from './router'
import type { ServerEvents } from './server'
import type { ServerCall } from './server-call'
import type { ConnectionHost, ServerConnection } from './server-connection'
import { interceptCall, startCall } from './server-interceptors'

/**
 * What a connection sees of its server, kept off the Server's public surface: the route
 * lookup, the way into interceptors and the concurrency limiter, the session count, and the
 * reports back (handler failures, closed connections).
 */
export class ServerHost implements ConnectionHost {
  readonly options: ResolvedServerOptions
  readonly extensionSettings: ExtensionSettings
  /** The concurrency limiter (`pool` is the name connections know it by). */
  readonly pool: ConcurrencyLimiter
  #router: Router
  #lifecycle: ServerLifecycle<ServerConnection>
  #events: EventEmitter<ServerEvents>
  #sessions = 0
  /** Closes connections idle past idleTimeout, from one timer for all of them. */
  #idleSweep: IdleSweep
  /** Calls started since the server was made (every kind, every route): cluster stats read it. */
  calls = 0
  readonly logger: Logger
  /** The limiter refused a call (its queue is full): logged, as shed load is what an operator must see. */
  readonly #shed = (call: ServerCall, error: RpcError): void =>
    this.logger.warn({ ...connectionFields(call.host), route: call.route, code: error.code }, 'call shed')

  constructor(
    options: ResolvedServerOptions,
    router: Router,
    lifecycle: ServerLifecycle<ServerConnection>,
    events: EventEmitter<ServerEvents>,
  ) {
    this.options = options
    this.#router = router
    this.#lifecycle = lifecycle
    this.#events = events
    this.logger = options.logger
    this.pool = new ConcurrencyLimiter(options.workers, options.maxQueue)
    this.#idleSweep = new IdleSweep(options.idleTimeout, lifecycle.connections)
    this.extensionSettings = {
      features: ALL_FEATURES,
      compression: options.compression,
      initialWindow: options.initialWindow,
      maxWindow: options.maxWindow,
      maxFrameSize: options.maxFrameSize,
      maxConcurrentStreams: options.maxConcurrentStreams,
    }
  }

  get draining(): boolean {
    return this.#lifecycle.draining
  }

  get shutdownReason(): RpcError | undefined {
    return this.#lifecycle.shutdownReason
  }

  lookup(route: string): Handler {
    return this.#router.lookup(route)
  }

  /** Interceptors first (when there are any), then the limiter, then middleware and handler. */
  run(call: ServerCall): void {
    this.calls++
    // The diagnostics channels' publisher joins the chain only while someone subscribes.
    const interceptors = observedInterceptors(this.options.interceptors)
    if (interceptors.length === 0) return startCall(call, this.pool, this.#shed)
    this.#intercepted(call, interceptors)
  }

  /** Apart from run(): its closure would make every call allocate the context it captures. */
  #intercepted(call: ServerCall, interceptors: readonly Interceptor[]): void {
    interceptCall(call, interceptors, this.pool, (error) => this.handlerFailed(error, call), this.#shed)
  }

  openSession(connection: ServerConnection, route: string): boolean {
    if (this.#sessions >= this.options.maxSessions) {
      this.logger.warn(
        {
          ...connectionFields(connection),
          route,
          code: Code.RESOURCE_EXHAUSTED,
          maxSessions: this.options.maxSessions,
        },
        'session refused: too many open sessions',
      )
      return false
    }
    this.#sessions++
    return true
  }

  closeSession(): void {
    this.#sessions--
  }

  /** A handler or interceptor failed in a way no caller sees in full: the `error` event gets it. */
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
    this.logger.error({ ...connectionFields(call.host), route: call.route, err }, 'handler failed')
    this.#events.emit('error', err)
  }

  shed(connection: ServerConnection, route: string, error: RpcError): void {
    this.logger.warn(
      { ...connectionFields(connection), route, code: error.code },
      'call refused: stream limit',
    )
  }

  /** A connection was accepted and counts against maxConnections. */
  connectionOpened(connection: ServerConnection): void {
    this.#idleSweep.connectionAdded()
    publishConnectionOpen('server', connection.connectionId, connection.peer)
    // Its fields are built only for a real logger: by default a connection's opening allocates none.
    if (this.logger !== SILENT_LOGGER) {
      this.logger.debug(
        { ...connectionFields(connection), transport: connection.peer.transport },
        'connection opened',
      )
    }
  }

  connectionClosed(connection: ServerConnection, error: RpcError | undefined): void {
    if (!this.#lifecycle.delete(connection)) return void this.#events.emit('disconnect', error)
    publishConnectionClose('server', connection.connectionId, connection.peer, error)
    const fields = { ...connectionFields(connection), ...errorFields(error) }
    if (error?.code === Code.PROTOCOL_ERROR) this.logger.warn(fields, 'connection closed: protocol error')
    else if (error !== undefined) this.logger.info(fields, 'connection closed with an error')
    else this.logger.debug(fields, 'connection closed')
    this.#events.emit('disconnect', error)
  }
}

/** How a log line names a connection: its id and the client's address. */
export function connectionFields(connection: {
  connectionId: number
  peer: { address: string | undefined; port: number | undefined }
}): { connectionId: number; peer: string | undefined } {
  const { address, port } = connection.peer
  return {
    connectionId: connection.connectionId,
    peer:
      address === undefined
        ? undefined
        : address.includes(':')
          ? `[${address}]:${port}`
          : `${address}:${port}`,
  }
}

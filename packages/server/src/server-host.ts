import { ALL_FEATURES, type ExtensionSettings } from '@srpc/core'
import type { RpcError } from '@srpc/protocol'
import type { EventEmitter } from 'eventemitter3'
import { ConcurrencyLimiter } from './concurrency-limiter'
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
  /** Calls started since the server was made (every kind, every route): cluster stats read it. */
  calls = 0

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
    this.pool = new ConcurrencyLimiter(options.workers, options.maxQueue)
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
    const interceptors = this.options.interceptors
    if (interceptors.length === 0) return startCall(call, this.pool)
    interceptCall(call, interceptors, this.pool, (error) => this.handlerFailed(error, call))
  }

  openSession(): boolean {
    if (this.#sessions >= this.options.maxSessions) return false
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
    this.#events.emit('error', err)
  }

  connectionClosed(connection: ServerConnection, error: RpcError | undefined): void {
    this.#lifecycle.delete(connection)
    this.#events.emit('disconnect', error)
  }
}

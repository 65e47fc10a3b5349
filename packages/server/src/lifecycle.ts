import { type Logger, SILENT_LOGGER } from '@srpc/core'
import { Code, RpcError } from '@srpc/protocol'

export type ServerState = 'idle' | 'listening' | 'draining' | 'closed'

/** What the shutdown asks of each open connection, phase by phase (ServerConnection). */
export interface Stoppable {
  /** Phase 1: GOAWAY (or close once idle), abort the shutdownSignal of calls that read it. */
  shutdown(reason: RpcError): void
  /** Phase 2, after the grace period: fail what is left with `reason`, flush, close. */
  cut(reason: RpcError): void
  /** destroy(): abort every call and drop the transport without a word. */
  destroy(reason: RpcError): void
}

/** The listener, as the shutdown needs it: something that stops accepting and says when it is done. */
export interface Listener {
  close(callback: () => void): void
}

/**
 * The server's state, its open connections and the phases of a stop: stop accepting, flip to
 * draining, tell every connection (GOAWAY), wait up to the grace period for them to close, cut
 * what is left with UNAVAILABLE "server is shutting down", and wait for the listener and the
 * connections to be gone. `destroy` skips or cuts short the grace period and drops connections
 * instead of cutting them. One promise for the whole stop, whichever verb started it.
 */
export class ServerLifecycle<C extends Stoppable> {
  #state: ServerState = 'idle'
  /** The TLS listener and the WebSocket listener, when started: a stop closes each. */
  #listeners = new Set<Listener>()
  #connections = new Set<C>()
  #stopping: Promise<void> | undefined
  /** Set once a stop began: the reason calls' shutdownSignal carries. */
  #reason: RpcError | undefined
  /** Set by destroy(): connections are dropped with it instead of being cut. */
  #destroyReason: RpcError | undefined
  /** The grace period is over (or was skipped): connections were cut or dropped. */
  #cut = false
  /** Ends the grace period of a stop in progress at once. */
  #hurry: (() => void) | undefined
  #onAllClosed: (() => void) | undefined
  /** Where the phases of a stop are logged (info): draining, cut, closed. */
  logger: Logger = SILENT_LOGGER

  get state(): ServerState {
    return this.#state
  }

  get draining(): boolean {
    return this.#state === 'draining' || this.#state === 'closed'
  }

  get shutdownReason(): RpcError | undefined {
    return this.#reason
  }

  get size(): number {
    return this.#connections.size
  }

  /** The open connections (read only: add and delete change it). */
  get connections(): ReadonlySet<C> {
    return this.#connections
  }

  /** The promise of the stop under way, if one began. */
  get stopping(): Promise<void> | undefined {
    return this.#stopping
  }

  /** A listener is starting: a stop from now on closes it. */
  attach(listener: Listener): void {
    this.#listeners.add(listener)
  }

  /** A listener failed to start: nothing to close. */
  detach(listener: Listener): void {
    this.#listeners.delete(listener)
  }

  /** The listener is bound. */
  listening(): void {
    if (this.#state === 'idle') this.#state = 'listening'
  }

  add(connection: C): void {
    this.#connections.add(connection)
  }

  /** Forgets a closed connection; false if it was never added (one refused at the door). */
  delete(connection: C): boolean {
    const known = this.#connections.delete(connection)
    if (this.#connections.size === 0) this.#onAllClosed?.()
    return known
  }

  /** Graceful stop with `timeout` ms of grace; a second call gets the first one's promise. */
  shutdown(timeout: number): Promise<void> {
    this.#stopping ??= this.#stop(timeout)
    return this.#stopping
  }

  /** Hard stop: no (more) grace, connections dropped with `reason`. Same promise as shutdown(). */
  destroy(reason: RpcError): Promise<void> {
    this.#destroyReason ??= reason
    // Past the grace period already (connections cut, not yet closed): drop them now.
    if (this.#cut) for (const connection of this.#connections) connection.destroy(this.#destroyReason)
    this.#hurry?.()
    return this.shutdown(0)
  }

  async #stop(timeout: number): Promise<void> {
    this.#state = 'draining'
    const reason = new RpcError(Code.UNAVAILABLE, 'server is shutting down')
    this.#reason = reason
    const listenerClosed = Promise.all(
      [...this.#listeners].map((listener) => new Promise<void>((resolve) => listener.close(() => resolve()))),
    )
    // Accepted transports count too: a server without a listener still waits for its clients.
    const allClosed =
      this.#connections.size === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            this.#onAllClosed = resolve
          })
    this.logger.info(
      { phase: 'draining', connections: this.#connections.size, timeout },
      'shutdown: draining',
    )
    for (const connection of this.#connections) connection.shutdown(reason)
    let timer: NodeJS.Timeout | undefined
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeout)
      this.#hurry = resolve
    })
    await Promise.race([Promise.all([listenerClosed, allClosed]), grace])
    clearTimeout(timer)
    this.#cut = true
    if (this.#connections.size > 0) {
      const phase = this.#destroyReason ? 'destroy' : 'cut'
      this.logger.info(
        { phase, connections: this.#connections.size },
        phase === 'cut'
          ? 'shutdown: grace period over, failing the calls left'
          : 'shutdown: dropping connections',
      )
    }
    for (const connection of this.#connections) {
      if (this.#destroyReason) connection.destroy(this.#destroyReason)
      else connection.cut(reason)
    }
    await listenerClosed
    await allClosed
    this.#state = 'closed'
    this.logger.info({ phase: 'closed' }, 'shutdown: closed')
  }
}

import type { RpcError } from '@srpc/protocol'

/** As gRPC names a channel's states. */
export type PoolState = 'idle' | 'connecting' | 'ready' | 'transient_failure' | 'closed'

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

/** What the pool's state is computed from. */
export interface ConnectivityFacts {
  /** close() or destroy() was called. */
  readonly closed: boolean
  /** Connections in rotation. */
  readonly ready: number
  /** The first call, connect() or setSize() started connecting. */
  readonly started: boolean
  /** Attempts failed and nothing is ready (until a connection is ready again). */
  readonly failing: boolean
}

export function poolStateOf(facts: ConnectivityFacts): PoolState {
  if (facts.closed) return 'closed'
  if (facts.ready > 0) return 'ready'
  if (!facts.started) return 'idle'
  return facts.failing ? 'transient_failure' : 'connecting'
}

/** What the pool's state is computed from, and who hears of a change (the pool's own hooks object). */
export interface ConnectivityHost {
  connectivityFacts(): ConnectivityFacts
  stateChanged(from: PoolState, to: PoolState): void
}

/**
 * The pool's state, recomputed after anything that may change it; a change is told once, in
 * order, to the host (the pool emits `stateChange`, and fails fast on TRANSIENT_FAILURE).
 */
export class ConnectivityState {
  #state: PoolState = 'idle'
  #host: ConnectivityHost

  constructor(host: ConnectivityHost) {
    this.#host = host
  }

  get state(): PoolState {
    return this.#state
  }

  update(): void {
    const next = poolStateOf(this.#host.connectivityFacts())
    if (next === this.#state) return
    const from = this.#state
    this.#state = next
    this.#host.stateChanged(from, next)
  }
}

/** Callers of `pool.connect()`: resolved once every slot is ready, rejected when a slot's attempts failed. */
export class ConnectWaiters {
  #waiters: { resolve: () => void; reject: (err: RpcError) => void }[] = []

  get size(): number {
    return this.#waiters.length
  }

  wait(): Promise<void> {
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }))
  }

  resolve(): void {
    for (const waiter of this.#waiters.splice(0)) waiter.resolve()
  }

  reject(error: RpcError): void {
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error)
  }
}

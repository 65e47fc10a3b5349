import { Code, RpcError } from '@srpc/protocol'
import { EventEmitter } from 'eventemitter3'
import type { ClientSession, SessionOptions } from './client-session'
import { ClientStream } from './client-stream'
import { type CallOptions, ClientConnection } from './connection'
import { checkTimeout, type PoolOptions, type ResolvedPoolOptions, resolvePoolOptions } from './options'

export type PoolState = 'idle' | 'connecting' | 'ready' | 'closed'

export interface PoolEvents {
  /** A connection finished its TLS handshake. */
  connect: [info: { slot: number }]
  /** A connection closed; `error` says why when it was not an orderly close. */
  disconnect: [info: { slot: number; error: RpcError | undefined }]
  /** Background work failed (a connection attempt nobody was waiting for, …). Never thrown. */
  error: [error: RpcError]
}

/** One slot of the pool: a live connection, an attempt under way, or nothing yet. */
interface Slot {
  connection: ClientConnection | undefined
  connecting: Promise<ClientConnection> | undefined
}

/**
 * A pool of TLS connections to one server. Calls are spread over the connections that are
 * ready, round-robin; connections open on first use (or with `connect()`), and a dead one is
 * replaced on the next use.
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
  #next = 0
  #closed = false
  #closing: Promise<void> | undefined

  constructor(options: PoolOptions) {
    super()
    this.options = resolvePoolOptions(options)
    this.#slots = Array.from({ length: this.options.size }, () => ({
      connection: undefined,
      connecting: undefined,
    }))
  }

  get state(): PoolState {
    if (this.#closed) return 'closed'
    if (this.#slots.some((s) => s.connection?.available)) return 'ready'
    if (this.#slots.some((s) => s.connecting)) return 'connecting'
    return 'idle'
  }

  /** Opens every connection now; resolves when all are ready, rejects if any attempt fails. */
  async connect(): Promise<void> {
    await Promise.all(this.#slots.map((_, i) => this.#ensure(i)))
  }

  /**
   * A request-response call: resolves with the reply, rejects with an RpcError. A call the
   * server provably never processed (it crossed a GOAWAY) is sent again on another
   * connection, within the same deadline.
   */
  call(route: string, payload: Uint8Array | string = EMPTY, options: CallOptions = {}): Promise<Buffer> {
    try {
      checkTimeout(options.timeout)
    } catch (err) {
      return Promise.reject(err)
    }
    const began = performance.now()
    const attempt = (tries: number, opts: CallOptions): Promise<Buffer> =>
      this.#callOnce(route, payload, opts).catch((err: unknown) => {
        if (!RpcError.is(err) || !err.refused || this.#closed || tries >= MAX_UNPROCESSED_RETRIES) throw err
        const timeout =
          opts.timeout === undefined ? undefined : options.timeout! - (performance.now() - began)
        if (timeout !== undefined && timeout <= 0) throw err
        return attempt(tries + 1, { ...opts, timeout })
      })
    return attempt(0, options)
  }

  #callOnce(route: string, payload: Uint8Array | string, options: CallOptions): Promise<Buffer> {
    const connection = this.#pickReady()
    if (connection) return connection.call(route, payload, options)
    return this.#withConnection(options, (conn, remaining) =>
      conn.call(route, payload, { ...options, timeout: remaining }),
    )
  }

  /** A server stream: iterate the chunks with `for await`; `break` cancels it on the server. */
  callStream(route: string, payload: Uint8Array | string = EMPTY, options: CallOptions = {}): ClientStream {
    return new ClientStream(() => {
      checkTimeout(options.timeout)
      return this.#withConnection(options, (conn, remaining) =>
        conn.openStream(route, payload, { ...options, timeout: remaining }),
      )
    })
  }

  /** Opens a bidirectional session on one connection of the pool. */
  createBidirectionalSession(
    route: string,
    options: CallOptions & SessionOptions = {},
  ): Promise<ClientSession> {
    try {
      checkTimeout(options.timeout)
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#withConnection(options, (conn, remaining) =>
      conn.openSession(route, { ...options, timeout: remaining }),
    )
  }

  /** Round-trip time of a ping on every live connection, in ms (NaN for one that did not answer). */
  async ping(options: { timeout?: number } = {}): Promise<number[]> {
    const timeout = options.timeout ?? 5000
    const live = this.#slots
      .map((s) => s.connection)
      .filter((c): c is ClientConnection => c?.available === true)
    return Promise.all(live.map((c) => c.ping(timeout).catch(() => Number.NaN)))
  }

  /** Per-connection numbers for dashboards. */
  stats(): { slot: number; state: string; inFlight: number }[] {
    return this.#slots.map((s, slot) => ({
      slot,
      state: s.connection?.state ?? (s.connecting ? 'connecting' : 'idle'),
      inFlight: s.connection?.inFlight ?? 0,
    }))
  }

  /**
   * Closes every connection: calls still in flight fail with CANCELLED. Safe to call twice:
   * both calls get the same promise.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing
    this.#closed = true
    const reason = new RpcError(Code.CANCELLED, 'pool closed')
    const waits: Promise<void>[] = []
    for (const slot of this.#slots) {
      const connection = slot.connection
      if (connection && connection.state !== 'closed') {
        waits.push(new Promise<void>((resolve) => connection.frames.socket.once('close', () => resolve())))
        connection.destroy(reason)
      }
      slot.connecting?.then(
        (c) => c.destroy(reason),
        () => {},
      )
    }
    this.#closing = Promise.all(waits).then(() => {})
    return this.#closing
  }

  #pickReady(): ClientConnection | undefined {
    const slots = this.#slots
    const n = slots.length
    for (let i = 0; i < n; i++) {
      const index = (this.#next + i) % n
      const connection = slots[index].connection
      if (connection?.available) {
        this.#next = index + 1
        // Keep the other slots filled: a dead or unopened one is (re)connected in the background.
        if (n > 1) this.#fillOthers()
        return connection
      }
    }
    return undefined
  }

  #fillOthers(): void {
    for (let i = 0; i < this.#slots.length; i++) {
      const slot = this.#slots[i]
      if (!slot.connecting && !slot.connection?.available) {
        this.#ensure(i).catch((err) => this.emit('error', err))
      }
    }
  }

  /** Waits for a connection (bounded by the call's timeout and connectTimeout), then runs `start`. */
  async #withConnection<T>(
    options: CallOptions,
    start: (connection: ClientConnection, remaining: number | undefined) => Promise<T>,
  ): Promise<T> {
    if (this.#closed) throw new RpcError(Code.UNAVAILABLE, 'pool is closed')
    if (options.signal?.aborted) throw new RpcError(Code.CANCELLED, 'call cancelled by its signal')
    const began = performance.now()
    const connection = this.#pickReady() ?? (await this.#awaitAny(options))
    let remaining = options.timeout
    if (remaining !== undefined) {
      remaining -= performance.now() - began
      if (remaining <= 0)
        throw new RpcError(Code.DEADLINE_EXCEEDED, `timed out after ${options.timeout} ms while connecting`)
    }
    return start(connection, remaining)
  }

  #awaitAny(options: CallOptions): Promise<ClientConnection> {
    const index = this.#next++ % this.#slots.length
    const attempt = this.#ensure(index)
    if (this.#slots.length > 1) this.#fillOthers()
    if (options.timeout === undefined && !options.signal) return attempt
    return new Promise<ClientConnection>((resolve, reject) => {
      const timer =
        options.timeout === undefined
          ? undefined
          : setTimeout(
              () =>
                reject(
                  new RpcError(
                    Code.DEADLINE_EXCEEDED,
                    `timed out after ${options.timeout} ms while connecting`,
                  ),
                ),
              options.timeout,
            )
      const onAbort = () => reject(new RpcError(Code.CANCELLED, 'call cancelled by its signal'))
      options.signal?.addEventListener('abort', onAbort, { once: true })
      attempt.then(resolve, reject).finally(() => {
        clearTimeout(timer)
        options.signal?.removeEventListener('abort', onAbort)
      })
    })
  }

  #ensure(index: number): Promise<ClientConnection> {
    const slot = this.#slots[index]
    if (slot.connection?.available) return Promise.resolve(slot.connection)
    if (slot.connecting) return slot.connecting
    if (this.#closed) return Promise.reject(new RpcError(Code.UNAVAILABLE, 'pool is closed'))
    const attempt = ClientConnection.connect(this.options, {
      onClose: (connection, error) => {
        if (slot.connection === connection) slot.connection = undefined
        this.emit('disconnect', { slot: index, error })
      },
      onGoaway: (connection) => {
        // The server is going away: stop using this connection, open a fresh one now.
        if (slot.connection === connection) slot.connection = undefined
        if (!this.#closed) this.#ensure(index).catch((err) => this.emit('error', err))
      },
    })
    slot.connecting = attempt
    attempt.then(
      (connection) => {
        slot.connecting = undefined
        if (this.#closed) {
          connection.destroy(new RpcError(Code.CANCELLED, 'pool closed'))
          return
        }
        slot.connection = connection
        this.emit('connect', { slot: index })
      },
      () => {
        slot.connecting = undefined
      },
    )
    return attempt
  }
}

const EMPTY = Buffer.alloc(0)
/** Resends of a call that provably never reached a handler (it crossed a GOAWAY). */
const MAX_UNPROCESSED_RETRIES = 3

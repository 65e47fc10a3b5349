import { type Deadline, deadlines } from '@srpc/core'
import { Code, formatMs, RpcError } from '@srpc/protocol'
import type { ClientConnection } from './connection'
import type { PoolState } from './connectivity-state'
import { abortedError } from './unary-call'

/** What a waiting call needs to know about it. */
export interface QueuedCallOptions {
  timeout?: number
  signal?: AbortSignal
  waitForReady?: boolean
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

/** What the queue asks the pool. */
export interface CallQueueHost {
  readonly closed: boolean
  readonly state: PoolState
  readonly maxQueued: number
  /** The pool's `waitForReady`, for calls that set none. */
  readonly waitForReady: boolean
  /** A waiting call starts the pool connecting. */
  start(): void
  /** Set when waiting cannot help: every server failed with a configuration error. */
  configurationError(): RpcError | undefined
  /** The last failed attempt: what calls that do not wait for ready are told in TRANSIENT_FAILURE. */
  readonly lastError: RpcError | undefined
  /** A connection with room for one more call, if any. */
  pick(): ClientConnection | undefined
  /** While calls wait, backoff timers keep the process alive (as a connecting socket would). */
  refTimers(ref: boolean): void
}

/**
 * The calls waiting for a connection, oldest first: bounded by maxQueued (past it a call fails at
 * once with RESOURCE_EXHAUSTED), each by its deadline and its signal.
 */
export class CallQueue {
  #host: CallQueueHost
  #waiters = new Set<Waiter>()

  constructor(host: CallQueueHost) {
    this.#host = host
  }

  get size(): number {
    return this.#waiters.size
  }

  /** No ready connection had room: the call waits here, bounded by maxQueued, its deadline and its signal. */
  enqueue(options: QueuedCallOptions, start: Waiter['start'], fail: (error: RpcError) => void): void {
    const host = this.#host
    if (host.closed) return fail(closedError())
    const signal = options.signal
    if (signal?.aborted) return fail(abortedError(signal))
    host.start()
    const waitForReady = options.waitForReady ?? host.waitForReady
    // Waiting cannot fix a certificate problem, even for a call that waits for ready.
    const misconfigured = host.configurationError()
    if (misconfigured !== undefined) return fail(misconfigured)
    if (!waitForReady && host.state === 'transient_failure') return fail(this.#unavailable())
    if (this.#waiters.size >= host.maxQueued) {
      return fail(
        new RpcError(
          Code.RESOURCE_EXHAUSTED,
          `${this.#waiters.size} calls already wait for a connection (maxQueued ${host.maxQueued})`,
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
    this.#waiters.add(waiter)
    if (this.#waiters.size === 1) host.refTimers(true)
  }

  /** Starts waiting calls, oldest first, while a connection has room. */
  dispatch(): void {
    for (const waiter of this.#waiters) {
      const connection = this.#host.pick()
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
  failFast(): void {
    let error: RpcError | undefined
    for (const waiter of this.#waiters) {
      if (waiter.waitForReady) continue
      this.#unqueue(waiter)
      error ??= this.#unavailable()
      waiter.fail(error)
    }
  }

  /** Every waiting call fails with `error` (the pool closes, or waiting cannot help). */
  failAll(error: RpcError): void {
    for (const waiter of this.#waiters) {
      this.#unqueue(waiter)
      waiter.fail(error)
    }
  }

  #unavailable(): RpcError {
    const last = this.#host.lastError
    return new RpcError(
      Code.UNAVAILABLE,
      last ? `no connection is ready (last attempt: ${last.message})` : 'no connection is ready',
      { cause: last },
    )
  }

  #unqueue(waiter: Waiter): void {
    if (!this.#waiters.delete(waiter)) return
    deadlines.cancel(waiter.deadline)
    waiter.deadline = undefined
    if (waiter.onAbort) waiter.signal!.removeEventListener('abort', waiter.onAbort)
    if (this.#waiters.size === 0) this.#host.refTimers(false)
  }
}

export function closedError(): RpcError {
  return new RpcError(Code.UNAVAILABLE, 'pool is closed')
}

import { Code, RpcError } from '@srpc/protocol'
import { type Deadline, deadlines } from './deadline-scheduler'

/**
 * A call's life, the same on both ends for a unary call, a server stream and a session. "Local"
 * is the half this end sends, "remote" the half the peer sends.
 *
 * | from \ event  | endLocal()  | endRemote()  | failCall(e)                  |
 * |---------------|-------------|--------------|------------------------------|
 * | open          | local-ended | remote-ended | failed                       |
 * | local-ended   | (no-op)     | closed       | failed                       |
 * | remote-ended  | closed      | (no-op)      | failed                       |
 * | closed        | (no-op)     | (no-op)      | failed until settled, then no-op |
 * | failed        | (no-op)     | (no-op)      | (no-op: the first error stays) |
 *
 * A client unary call or server stream starts `local-ended` (the request was all it sends), a
 * server request starts `remote-ended` (likewise, from the other side), a session starts `open`.
 * A transition that does not apply is a no-op and returns false, never a throw: a late frame or a
 * second cancel is normal on a network. `settle()` is separate from the phase: it runs the
 * cleanup once, when the end that owns the call is done with it (a client at `closed` or
 * `failed`; a server when its handler also returned, so a call that answered can still fail).
 */
export type CallPhase = 'open' | 'local-ended' | 'remote-ended' | 'closed' | 'failed'

/**
 * The life-cycle bookkeeping every call class on either end extends: the phase, the error kept
 * for later sends, the deadline, the caller's AbortSignal and the call's own lazily created one.
 * The call is its own deadline entry and its own abort listener (`handleEvent`), so watching a
 * timeout and a signal allocates nothing beyond what the scheduler and the EventTarget keep.
 */
export abstract class CallState implements Deadline {
  /** Deadline fields, owned by the scheduler. */
  at = 0
  index = -1
  prev: Deadline | undefined = undefined
  next: Deadline | undefined = undefined
  #phase: CallPhase
  #error: RpcError | undefined = undefined
  #settled = false
  /** The caller's signal we listen to, until the call settles. */
  #signal: AbortSignal | undefined = undefined
  /** Behind `signal`; created on first read. */
  #controller: AbortController | undefined = undefined

  constructor(phase: CallPhase) {
    this.#phase = phase
  }

  get phase(): CallPhase {
    return this.#phase
  }

  /** The error the call failed with (kept, so every later send rejects with it); undefined unless failed. */
  get error(): RpcError | undefined {
    return this.#error
  }

  /** This end sends nothing more. */
  get localEnded(): boolean {
    const phase = this.#phase
    return phase === 'local-ended' || phase === 'closed' || phase === 'failed'
  }

  /** The peer sends nothing more (that we take). */
  get remoteEnded(): boolean {
    const phase = this.#phase
    return phase === 'remote-ended' || phase === 'closed' || phase === 'failed'
  }

  /** Both halves ended, or the call failed. */
  get ended(): boolean {
    return this.#phase === 'closed' || this.#phase === 'failed'
  }

  /** The cleanup ran: the deadline and the signal are let go. */
  get settled(): boolean {
    return this.#settled
  }

  /** Created on first read (a call that never looks allocates nothing); aborted with the error when the call fails. */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController()
      if (this.#error) this.#controller.abort(this.#error)
    }
    return this.#controller.signal
  }

  /**
   * Starts the deadline (`timeoutMs` from now) and listens to the caller's `signal`, either
   * optional. Both end the call through `stop`; both are let go when it settles or fails. A
   * `loose` deadline (a default nobody asked for by value) may end the call up to a second late
   * and costs no clock read (`DeadlineScheduler.addLoose`).
   */
  protected watch(timeoutMs: number | undefined, signal: AbortSignal | undefined, loose = false): void {
    if (timeoutMs !== undefined) {
      if (loose) deadlines.addLoose(this, timeoutMs)
      else deadlines.add(this, timeoutMs)
    }
    if (signal !== undefined) {
      this.#signal = signal
      signal.addEventListener('abort', this, { once: true })
    }
  }

  /** Our half is over. False (nothing changes) unless the phase was `open` or `remote-ended`. */
  endLocal(): boolean {
    const phase = this.#phase
    if (phase === 'open') this.#phase = 'local-ended'
    else if (phase === 'remote-ended') this.#phase = 'closed'
    else return false
    return true
  }

  /** The peer's half is over. False (nothing changes) unless the phase was `open` or `local-ended`. */
  endRemote(): boolean {
    const phase = this.#phase
    if (phase === 'open') this.#phase = 'remote-ended'
    else if (phase === 'local-ended') this.#phase = 'closed'
    else return false
    return true
  }

  /**
   * The call failed with `error`: the deadline is cancelled, `dropHalves` lets queued messages
   * go, then `signal` aborts. False (nothing changes) once failed or settled: the first error stays.
   */
  failCall(error: RpcError): boolean {
    if (this.#phase === 'failed' || this.#settled) return false
    this.#phase = 'failed'
    this.#error = error
    deadlines.cancel(this)
    this.dropHalves(error)
    this.#controller?.abort(error)
    return true
  }

  /**
   * Why a send cannot go: the error the call failed with (every later send gets that one), else
   * FAILED_PRECONDITION with `message` once our half ended; undefined while our half is open.
   */
  sendRefusal(message: string): RpcError | undefined {
    if (this.#error !== undefined) return this.#error
    return this.localEnded ? new RpcError(Code.FAILED_PRECONDITION, message) : undefined
  }

  /** Runs the cleanup (deadline, signal listener) once; true the first time only. */
  settle(): boolean {
    if (this.#settled) return false
    this.#settled = true
    deadlines.cancel(this)
    const signal = this.#signal
    if (signal !== undefined) {
      this.#signal = undefined
      signal.removeEventListener('abort', this)
    }
    return true
  }

  /** The deadline passed (called by the scheduler, once). */
  fire(): void {
    if (this.#settled || this.#phase === 'failed') return
    this.stop(new RpcError(Code.DEADLINE_EXCEEDED, this.deadlineMessage()))
  }

  /** The caller's signal aborted (the call is the listener object: no closure per call). */
  handleEvent(): void {
    const signal = this.#signal
    if (signal === undefined || this.#settled || this.#phase === 'failed') return
    this.stop(new RpcError(Code.CANCELLED, this.signalMessage(), { cause: signal.reason }))
  }

  /** Ends the call from this side because its deadline passed or its caller's signal aborted. */
  protected abstract stop(error: RpcError): void

  /** The message of the DEADLINE_EXCEEDED error (each end words its own). */
  protected abstract deadlineMessage(): string

  /** The message of the CANCELLED error when the caller's signal aborts. */
  protected signalMessage(): string {
    return 'cancelled by its signal'
  }

  /** The call failed: reject what is queued to send and fail the readers of what arrived. */
  protected dropHalves(_error: RpcError): void {}
}

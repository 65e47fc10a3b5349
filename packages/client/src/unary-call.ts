import { type CallHost, type Deadline, deadlines, type Frame } from '@srpc/core'
import { Code, decodeErrorValue, Flags, type FrameId, formatMs, RpcError } from '@srpc/protocol'
import type { CallOptions } from './connection'
import type { PendingCall } from './pending-call'

/** Sends a call again, elsewhere, when it failed as refused: no server processed it (the pool does this). */
export interface Resender {
  /** The promise of the new attempt, or undefined to let the call fail with its error. */
  resend(call: UnaryCall): Promise<Buffer> | undefined
}

/** The error of a call, stream, session or wait whose AbortSignal fired. */
export function abortedError(signal: AbortSignal): RpcError {
  return new RpcError(Code.CANCELLED, 'call cancelled by its signal', { cause: signal.reason })
}

/**
 * Where `capture`, one executor shared by every call, leaves a new promise's resolving functions:
 * a call then needs no closure of its own to get at them.
 */
const captured: {
  resolve: ((value: Buffer | PromiseLike<Buffer>) => void) | undefined
  reject: ((error: RpcError) => void) | undefined
} = { resolve: undefined, reject: undefined }

function capture(resolve: (value: Buffer | PromiseLike<Buffer>) => void, reject: (error: RpcError) => void) {
  captured.resolve = resolve
  captured.reject = reject
}

/**
 * One request waiting for its response. It is its own entry in the deadline scheduler, so a call
 * with a timeout (every call has one: the pool's default applies when none is given) allocates
 * nothing beyond itself and its promise.
 */
export class UnaryCall implements PendingCall, Deadline {
  readonly id: FrameId
  readonly promise: Promise<Buffer>
  /** What a resend needs: the call itself carries it, so a call costs no closure for it. */
  readonly route: string
  readonly payload: Buffer
  readonly options: CallOptions
  readonly resends: number
  /** Deadline fields, owned by the scheduler. */
  at = 0
  index = -1
  #host: CallHost
  #resolve!: (value: Buffer | PromiseLike<Buffer>) => void
  #reject!: (error: RpcError) => void
  #resender: Resender | undefined
  #onAbort: (() => void) | undefined
  #done = false

  constructor(
    host: CallHost,
    id: FrameId,
    route: string,
    payload: Buffer,
    options: CallOptions,
    resender: Resender | undefined,
    resends: number,
  ) {
    this.#host = host
    this.id = id
    this.route = route
    this.payload = payload
    this.options = options
    this.resends = resends
    this.#resender = resender
    this.promise = new Promise<Buffer>(capture)
    this.#resolve = captured.resolve!
    this.#reject = captured.reject!
    if (options.timeout !== undefined) deadlines.add(this, options.timeout)
    const signal = options.signal
    if (signal) {
      this.#onAbort = () => this.#cancel(abortedError(signal))
      signal.addEventListener('abort', this.#onAbort, { once: true })
    }
  }

  /** performance.now() time of the call's deadline, undefined without a timeout. */
  get deadlineAt(): number | undefined {
    return this.options.timeout === undefined ? undefined : this.at
  }

  /** The timeout passed (called by the scheduler). */
  fire(): void {
    this.#cancel(
      new RpcError(Code.DEADLINE_EXCEEDED, `call timed out after ${formatMs(this.options.timeout!)}`),
    )
  }

  onFrame(frame: Frame): void {
    if (frame.flags & Flags.ERROR) {
      this.#host.forget(this.id)
      this.#finish()
      this.#rejectOrResend(decodeErrorValue(frame.value))
    } else if ((frame.flags & (Flags.RESPONSE | Flags.STREAM)) === Flags.RESPONSE) {
      this.#host.forget(this.id)
      this.#finish()
      this.#resolve(frame.value)
    } else if (frame.flags & (Flags.STREAM | Flags.STREAM_END)) {
      // A stream answer to a plain call (a chunk is RESPONSE|STREAM): the route is a stream
      // route. Stop the server's work.
      this.#cancel(
        new RpcError(Code.FAILED_PRECONDITION, 'the server answered with a stream: use callStream()'),
      )
    } else {
      throw new RpcError(Code.PROTOCOL_ERROR, `frame with flags 0x${frame.flags.toString(16)} has no meaning`)
    }
  }

  /** A unary call sends nothing after its request: credit is of no use to it. */
  grant(_bytes: number): void {}

  fail(error: RpcError): void {
    if (this.#done) return
    this.#finish()
    this.#rejectOrResend(error)
  }

  /** A refused call may go out again (its promise then follows the new attempt); anything else fails. */
  #rejectOrResend(error: RpcError): void {
    const again = error.refused ? this.#resender?.resend(this) : undefined
    if (again === undefined) this.#reject(error)
    else this.#resolve(again)
  }

  #cancel(error: RpcError): void {
    if (this.#done) return
    this.#host.cancel(this.id, error)
    this.#finish()
    this.#reject(error)
  }

  #finish(): void {
    this.#done = true
    deadlines.cancel(this)
    if (this.#onAbort) this.options.signal!.removeEventListener('abort', this.#onAbort)
  }
}

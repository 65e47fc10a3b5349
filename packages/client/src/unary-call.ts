import { type CallHost, CallState, type Frame } from '@srpc/core'
import {
  Code,
  decodeErrorValue,
  Flags,
  type FrameId,
  formatMs,
  type Metadata,
  RpcError,
} from '@srpc/protocol'
import type { CallOptions, PoolCallOptions } from './connection'
import type { PendingCall } from './pending-call'
import type { RefusedCall, Resender } from './resend'

/** The error of a call, stream, session or wait whose AbortSignal fired. */
export function abortedError(signal: AbortSignal): RpcError {
  return new RpcError(Code.CANCELLED, 'call cancelled by its signal', { cause: signal.reason })
}

/**
 * Hands response metadata to the caller's callback; what it throws becomes the call's error
 * (never the connection's).
 */
export function deliverMetadata(
  callback: (metadata: Metadata) => void,
  metadata: Metadata,
): RpcError | undefined {
  try {
    callback(metadata)
    return undefined
  } catch (err) {
    return RpcError.from(err)
  }
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
 * One request waiting for its response. Its state is core's CallState, which is also its entry
 * in the deadline scheduler and its signal's listener, so a call with a timeout (every call has
 * one: the pool's default applies when none is given) allocates nothing beyond itself and its
 * promise. It starts `local-ended`: the request is all it sends.
 */
export class UnaryCall extends CallState implements PendingCall, RefusedCall {
  readonly id: FrameId
  readonly promise: Promise<Buffer>
  /** What a resend needs: the call itself carries it, so a call costs no closure for it. */
  readonly route: string
  readonly payload: Buffer
  readonly options: CallOptions
  readonly resends: number
  #host: CallHost
  #resolve!: (value: Buffer | PromiseLike<Buffer>) => void
  #reject!: (error: RpcError) => void
  #resender: Resender | undefined

  constructor(
    host: CallHost,
    id: FrameId,
    route: string,
    payload: Buffer,
    options: CallOptions,
    resender: Resender | undefined,
    resends: number,
  ) {
    super('local-ended')
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
    // The pool's implicit default timeout only guards against waiting forever: it may be late by a second.
    this.watch(options.timeout, options.signal, (options as PoolCallOptions).implicitTimeout === true)
  }

  /** performance.now() time of the call's deadline, undefined without a timeout. */
  get deadlineAt(): number | undefined {
    return this.options.timeout === undefined ? undefined : this.at
  }

  onFrame(frame: Frame, metadata?: Metadata): void {
    if (frame.flags & Flags.ERROR) {
      this.#host.forget(this.id)
      this.fail(decodeErrorValue(frame.value))
    } else if ((frame.flags & (Flags.RESPONSE | Flags.STREAM)) === Flags.RESPONSE) {
      this.#host.forget(this.id)
      this.endRemote()
      this.settle()
      if (metadata !== undefined && this.options.onResponseMetadata !== undefined) {
        const error = deliverMetadata(this.options.onResponseMetadata, metadata)
        if (error !== undefined) return this.#reject(error)
      }
      this.#resolve(frame.value)
    } else if (frame.flags & (Flags.STREAM | Flags.STREAM_END)) {
      // A stream answer to a plain call (a chunk is RESPONSE|STREAM): the route is a stream
      // route. Stop the server's work.
      this.stop(new RpcError(Code.FAILED_PRECONDITION, 'the server answered with a stream: use callStream()'))
    } else {
      throw new RpcError(Code.PROTOCOL_ERROR, `frame with flags 0x${frame.flags.toString(16)} has no meaning`)
    }
  }

  /** A unary call sends nothing after its request: credit is of no use to it. */
  grant(_bytes: number): void {}

  fail(error: RpcError): void {
    if (!this.failCall(error)) return
    this.settle()
    this.#rejectOrResend(error)
  }

  /** A refused call may go out again (its promise then follows the new attempt); anything else fails. */
  #rejectOrResend(error: RpcError): void {
    const again = error.refused ? this.#resender?.resend(this) : undefined
    if (again === undefined) this.#reject(error)
    else this.#resolve(again)
  }

  /** Ends the call from our side: the server is told to stop, the caller gets `error`. */
  protected override stop(error: RpcError): void {
    if (!this.failCall(error)) return
    this.#host.cancel(this.id, error)
    this.settle()
    this.#reject(error)
  }

  protected override deadlineMessage(): string {
    return `call timed out after ${formatMs(this.options.timeout!)}`
  }

  protected override signalMessage(): string {
    return 'call cancelled by its signal'
  }
}

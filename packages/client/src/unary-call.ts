import {
  Code,
  type Deadline,
  deadlines,
  decodeErrorValue,
  Flags,
  type Frame,
  type FrameId,
  RpcError,
} from '@srpc/protocol'
import type { CallHost, PendingCall } from './call-host'

/**
 * One request waiting for its response. It is its own entry in the deadline scheduler, so a call
 * with a timeout (every call has one: the pool's default applies when none is given) allocates
 * nothing beyond itself and its promise.
 */
export class UnaryCall implements PendingCall, Deadline {
  readonly id: FrameId
  readonly promise: Promise<Buffer>
  /** Deadline fields, owned by the scheduler. */
  at = 0
  index = -1
  #host: CallHost
  #resolve!: (value: Buffer) => void
  #reject!: (error: RpcError) => void
  #timeoutMs: number | undefined
  #signal: AbortSignal | undefined
  #onAbort: (() => void) | undefined
  #done = false

  constructor(host: CallHost, id: FrameId, timeoutMs: number | undefined, signal: AbortSignal | undefined) {
    this.#host = host
    this.id = id
    this.promise = new Promise<Buffer>((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
    if (timeoutMs !== undefined) {
      this.#timeoutMs = timeoutMs
      deadlines.add(this, timeoutMs)
    }
    if (signal) {
      this.#signal = signal
      this.#onAbort = () =>
        this.#cancel(new RpcError(Code.CANCELLED, 'call cancelled by its signal', { cause: signal.reason }))
      signal.addEventListener('abort', this.#onAbort, { once: true })
    }
  }

  /** The timeout passed (called by the scheduler). */
  fire(): void {
    this.#cancel(new RpcError(Code.DEADLINE_EXCEEDED, `call timed out after ${this.#timeoutMs} ms`))
  }

  onFrame(frame: Frame): void {
    if (frame.flags & Flags.ERROR) {
      this.#host.forget(this.id)
      this.#finish()
      this.#reject(decodeErrorValue(frame.value))
    } else if (frame.flags & Flags.RESPONSE) {
      this.#host.forget(this.id)
      this.#finish()
      this.#resolve(frame.value)
    } else {
      // A stream answer to a plain call: the route is a stream route. Stop the server's work.
      this.#cancel(
        new RpcError(Code.FAILED_PRECONDITION, 'the server answered with a stream: use callStream()'),
      )
    }
  }

  fail(error: RpcError): void {
    if (this.#done) return
    this.#finish()
    this.#reject(error)
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
    if (this.#onAbort) this.#signal!.removeEventListener('abort', this.#onAbort)
  }
}

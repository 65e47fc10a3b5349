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

/** One request waiting for its response. */
export class UnaryCall implements PendingCall {
  readonly id: FrameId
  readonly promise: Promise<Buffer>
  #host: CallHost
  #resolve!: (value: Buffer) => void
  #reject!: (error: RpcError) => void
  #deadline: Deadline | undefined
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
      this.#deadline = deadlines.schedule(timeoutMs, () => {
        this.#deadline = undefined
        this.#cancel(new RpcError(Code.DEADLINE_EXCEEDED, `call timed out after ${timeoutMs} ms`))
      })
    }
    if (signal) {
      this.#signal = signal
      this.#onAbort = () =>
        this.#cancel(new RpcError(Code.CANCELLED, 'call cancelled by its signal', { cause: signal.reason }))
      signal.addEventListener('abort', this.#onAbort, { once: true })
    }
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
    deadlines.cancel(this.#deadline)
    this.#deadline = undefined
    if (this.#onAbort) this.#signal!.removeEventListener('abort', this.#onAbort)
  }
}

import {
  type CallHost,
  type Deadline,
  deadlines,
  type Extensions,
  type Frame,
  type MessageQueue,
  StreamReceiver,
} from '@srpc/core'
import { Code, decodeErrorValue, Flags, type FrameId, formatMs, RpcError } from '@srpc/protocol'
import type { PendingCall } from './pending-call'

export interface StreamingCallOptions {
  timeout?: number
  signal?: AbortSignal
}

/**
 * The client side of a server stream or a session: frames for the id go into a message queue
 * that the application drains. It ends when the server ends its half (STREAM_END, or a
 * RESPONSE without STREAM), fails on an ERROR frame, a dead connection, the deadline or the signal.
 */
export class StreamingCall implements PendingCall {
  readonly id: FrameId
  protected readonly host: CallHost
  protected readonly queue: MessageQueue
  protected readonly ext: Extensions
  #receiver: StreamReceiver
  /** Our sending half is over (always true for a server stream: the request was all we send). */
  protected localEnded: boolean
  protected remoteEnded = false
  #error: RpcError | undefined
  #deadline: Deadline | undefined
  #signal: AbortSignal | undefined
  #onAbort: (() => void) | undefined
  #remoteEndWaiters: (() => void)[] = []
  #controller: AbortController | undefined
  /** Messages that arrived (chunks, session messages), counted for interceptors. */
  messagesReceived = 0
  /** Called once when the call is over: both halves ended (undefined) or it failed. */
  onEnd: ((error: RpcError | undefined) => void) | undefined

  constructor(
    host: CallHost,
    id: FrameId,
    localEnded: boolean,
    options: StreamingCallOptions,
    ext: Extensions,
  ) {
    this.host = host
    this.id = id
    this.localEnded = localEnded
    this.ext = ext
    this.#receiver = new StreamReceiver(ext, {
      highWaterMark: host.streamHighWaterMark,
      pauseReading: () => host.pauseReading(),
      resumeReading: () => host.resumeReading(),
      grant: (bytes) => host.grant(id, bytes),
    })
    this.queue = this.#receiver.queue
    const { timeout, signal } = options
    if (timeout !== undefined) {
      this.#deadline = deadlines.schedule(timeout, () => {
        this.#deadline = undefined
        this.cancel(new RpcError(Code.DEADLINE_EXCEEDED, `timed out after ${formatMs(timeout)}`))
      })
    }
    if (signal) {
      this.#signal = signal
      this.#onAbort = () =>
        this.cancel(new RpcError(Code.CANCELLED, 'cancelled by its signal', { cause: signal.reason }))
      signal.addEventListener('abort', this.#onAbort, { once: true })
    }
  }

  /** The error that ended the call, if one did. */
  get error(): RpcError | undefined {
    return this.#error
  }

  /** Messages sent, counted for interceptors: a server stream sends its request only. */
  get messagesSent(): number {
    return 1
  }

  /** Created on first read; aborted with the RpcError when the call fails. */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController()
      if (this.#error) this.#controller.abort(this.#error)
    }
    return this.#controller.signal
  }

  get ended(): boolean {
    return this.#error !== undefined || (this.remoteEnded && this.localEnded)
  }

  /** The next message, or `undefined` once the server ended its half. */
  receive(): Promise<Buffer | undefined> {
    return this.queue.next()
  }

  /** A message already received, or `undefined` if none is waiting. */
  tryReceive(): Buffer | undefined {
    return this.queue.tryNext()
  }

  onFrame(frame: Frame): void {
    const flags = frame.flags
    if (flags & Flags.ERROR) {
      this.host.forget(this.id)
      this.fail(decodeErrorValue(frame.value))
      return
    }
    if (this.remoteEnded) return
    // Chunks come as RESPONSE|STREAM (0x06), the last as RESPONSE|STREAM|STREAM_END (0x0e), as v1
    // servers send them; srpc 0.1 servers sent 0x04/0x0c, as session messages still go. All of
    // them pass through the receiver, so flow control counts them alike.
    if (flags & Flags.STREAM_END) {
      // An empty value is a bare end marker: the stream is over, no chunk with it.
      if (frame.value.length > 0) {
        this.messagesReceived++
        this.#receiver.deliver(frame.value)
      }
      this.#endRemote()
    } else if (flags & Flags.STREAM) {
      this.messagesReceived++
      this.#receiver.deliver(frame.value)
    } else if (flags & Flags.RESPONSE) {
      // A plain reply to a stream request: one chunk that ends the stream (never flow-controlled).
      this.messagesReceived++
      this.queue.push(frame.value)
      this.#endRemote()
    } else {
      throw new RpcError(Code.PROTOCOL_ERROR, `frame with flags 0x${flags.toString(16)} has no meaning`)
    }
  }

  fail(error: RpcError): void {
    if (this.#error || (this.remoteEnded && this.localEnded)) return
    this.#error = error
    this.#cleanup()
    this.queue.fail(error)
    this.#controller?.abort(error)
    this.#ended(error)
  }

  /** The server granted send credit on this id (only sessions send after opening). */
  grant(_bytes: number): void {}

  /** Ends the call from our side: tells the server to stop (where it can) and fails local readers. */
  cancel(error: RpcError): void {
    if (this.ended) return
    this.host.cancel(this.id, error)
    this.fail(error)
  }

  /** Resolves once the server ended its half, the call failed, or after `timeoutMs`. */
  protected waitForRemoteEnd(timeoutMs: number): Promise<boolean> {
    if (this.remoteEnded || this.#error) return Promise.resolve(true)
    return new Promise((resolve) => {
      const entry = deadlines.schedule(timeoutMs, () => {
        this.#remoteEndWaiters = this.#remoteEndWaiters.filter((w) => w !== done)
        resolve(false)
      })
      const done = () => {
        deadlines.cancel(entry)
        resolve(true)
      }
      this.#remoteEndWaiters.push(done)
    })
  }

  protected endLocal(): void {
    this.localEnded = true
    if (this.remoteEnded) this.#complete()
  }

  #endRemote(): void {
    this.remoteEnded = true
    this.queue.end()
    if (this.localEnded) this.#complete()
    for (const waiter of this.#remoteEndWaiters.splice(0)) waiter()
  }

  #complete(): void {
    this.host.forget(this.id)
    this.#cleanup()
    this.#ended(undefined)
  }

  #ended(error: RpcError | undefined): void {
    const onEnd = this.onEnd
    if (onEnd === undefined) return
    this.onEnd = undefined
    onEnd(error)
  }

  #cleanup(): void {
    deadlines.cancel(this.#deadline)
    this.#deadline = undefined
    if (this.#onAbort) {
      this.#signal!.removeEventListener('abort', this.#onAbort)
      this.#onAbort = undefined
    }
    for (const waiter of this.#remoteEndWaiters.splice(0)) waiter()
  }
}

import {
  type CallHost,
  CallState,
  callReceiver,
  deadlines,
  type Extensions,
  type Frame,
  type MessageQueue,
  type StreamReceiver,
} from '@srpc/core'
import {
  Code,
  decodeErrorValue,
  Flags,
  type FrameId,
  formatMs,
  type Metadata,
  RpcError,
} from '@srpc/protocol'
import type { PendingCall } from './pending-call'
import { deliverMetadata } from './unary-call'

export interface StreamingCallOptions {
  timeout?: number
  signal?: AbortSignal
  onResponseMetadata?: (metadata: Metadata) => void
}

/**
 * The client side of a server stream or a session: frames for the id go into a message queue
 * that the application drains. It ends when the server ends its half (STREAM_END, or a
 * RESPONSE without STREAM), fails on an ERROR frame, a dead connection, the deadline or the
 * signal. Its state is core's CallState: a server stream starts `local-ended` (the request was
 * all we send), a session `open`.
 */
export class StreamingCall extends CallState implements PendingCall {
  readonly id: FrameId
  protected readonly host: CallHost
  protected readonly queue: MessageQueue
  protected readonly ext: Extensions
  #receiver: StreamReceiver
  #timeout: number | undefined
  #remoteEndWaiters: (() => void)[] = []
  /** Set when we ended the call ourselves: what is queued is not wanted any more. */
  #gaveUp = false
  /** Messages that arrived (chunks, session messages), counted for interceptors. */
  messagesReceived = 0
  /** The metadata the server sent with the end of its half, once it did. */
  responseMetadata: Metadata | undefined
  #onResponseMetadata: ((metadata: Metadata) => void) | undefined
  /** Called once when the call is over: both halves ended (undefined) or it failed. */
  onEnd: ((error: RpcError | undefined) => void) | undefined

  constructor(
    host: CallHost,
    id: FrameId,
    localEnded: boolean,
    options: StreamingCallOptions,
    ext: Extensions,
  ) {
    super(localEnded ? 'local-ended' : 'open')
    this.host = host
    this.id = id
    this.ext = ext
    this.#receiver = callReceiver(host, id, ext)
    this.queue = this.#receiver.queue
    this.#timeout = options.timeout
    this.#onResponseMetadata = options.onResponseMetadata
    this.watch(options.timeout, options.signal)
  }

  /** Messages sent, counted for interceptors: a server stream sends its request only. */
  get messagesSent(): number {
    return 1
  }

  /** The next message, or `undefined` once the server ended its half. */
  receive(): Promise<Buffer | undefined> {
    return this.queue.next()
  }

  /** A message already received, or `undefined` if none is waiting. */
  tryReceive(): Buffer | undefined {
    return this.queue.tryNext()
  }

  onFrame(frame: Frame, metadata?: Metadata): void {
    const flags = frame.flags
    if (flags & Flags.ERROR) {
      this.host.forget(this.id)
      this.fail(decodeErrorValue(frame.value))
      return
    }
    if (this.remoteEnded) return
    if (metadata !== undefined) {
      this.responseMetadata = metadata
      const error = this.#onResponseMetadata && deliverMetadata(this.#onResponseMetadata, metadata)
      if (error) return this.cancel(error)
    }
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
    if (!this.failCall(error)) return
    this.#settle(error)
  }

  /** The server granted send credit on this id (only sessions send after opening). */
  grant(_bytes: number): void {}

  /** Ends the call from our side: tells the server to stop (where it can) and fails local readers. */
  cancel(error: RpcError): void {
    if (this.ended) return
    this.#gaveUp = true
    this.host.cancel(this.id, error)
    this.fail(error)
  }

  /** Our half is over; with the server's over too, the call is complete. */
  override endLocal(): boolean {
    if (!super.endLocal()) return false
    if (this.phase === 'closed') this.#complete()
    return true
  }

  /** Resolves once the server ended its half, the call failed, or after `timeoutMs`. */
  protected waitForRemoteEnd(timeoutMs: number): Promise<boolean> {
    if (this.remoteEnded) return Promise.resolve(true)
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

  protected override stop(error: RpcError): void {
    this.cancel(error)
  }

  protected override deadlineMessage(): string {
    return `timed out after ${formatMs(this.#timeout!)}`
  }

  /**
   * Readers fail with the error: at once when we gave up on the call (cancel, deadline), after
   * the messages that already arrived when the server or the link failed it.
   */
  protected override dropHalves(error: RpcError): void {
    this.queue.fail(error, { keepQueued: !this.#gaveUp })
  }

  #endRemote(): void {
    if (!this.endRemote()) return
    this.queue.end()
    if (this.phase === 'closed') this.#complete()
    for (const waiter of this.#remoteEndWaiters.splice(0)) waiter()
  }

  #complete(): void {
    this.host.forget(this.id)
    this.#settle(undefined)
  }

  /** The one way out: cleanup once, waiters woken, onEnd told. */
  #settle(error: RpcError | undefined): void {
    if (!this.settle()) return
    for (const waiter of this.#remoteEndWaiters.splice(0)) waiter()
    const onEnd = this.onEnd
    if (onEnd === undefined) return
    this.onEnd = undefined
    onEnd(error)
  }
}

import { type Extensions, payloadBytes, type Session, StreamSender } from '@srpc/core'
import { Code, Flags, RpcError } from '@srpc/protocol'
import type { CallHost } from './call-host'
import { StreamingCall, type StreamingCallOptions } from './streaming-call'

const EMPTY = Buffer.alloc(0)

export interface SessionOptions extends StreamingCallOptions {
  /** How long close() waits for the server to end its half before cancelling, ms. */
  closeTimeout?: number
}

/**
 * A bidirectional session: one id for its whole life, messages in order both ways.
 * `receive()` resolves with the next server message, or `undefined` once the server ended
 * its half; `close()` ends ours and waits (bounded) for the server to finish.
 */
export class ClientSession extends StreamingCall implements Session, AsyncIterable<Buffer> {
  readonly route: string
  #closeTimeout: number
  #closing: Promise<void> | undefined
  #sender: StreamSender

  constructor(
    host: CallHost,
    id: number,
    route: string,
    options: SessionOptions,
    closeTimeout: number,
    ext: Extensions,
  ) {
    super(host, id, false, options, ext)
    this.route = route
    this.#sender = new StreamSender(
      ext,
      {
        write: (flags, payload) => host.send(flags, id, '', payload),
        writable: () => host.writable,
        whenWritable: () => host.whenWritable(),
      },
      host.maxBufferedBytes,
    )
    this.#closeTimeout = options.closeTimeout ?? closeTimeout
  }

  /**
   * Bytes of messages queued and not yet handed to the socket, like WebSocket's
   * `bufferedAmount`. A send fails with RESOURCE_EXHAUSTED once this would pass the pool's
   * `maxBufferedBytes`; a broadcaster checks it to skip a slow peer instead of stalling on it.
   */
  get bufferedAmount(): number {
    return this.#sender.bufferedAmount
  }

  /**
   * Sends one message; resolves when it is handed to the socket and the connection can take
   * more. Rejects with RESOURCE_EXHAUSTED, sending nothing, when `maxBufferedBytes` are queued.
   */
  send(data: Uint8Array | string): Promise<void> {
    let bytes: Buffer
    try {
      bytes = payloadBytes(data, 'message')
    } catch (err) {
      return Promise.reject(err)
    }
    if (this.error) return Promise.reject(this.error)
    if (this.localEnded)
      return Promise.reject(new RpcError(Code.FAILED_PRECONDITION, 'session is closed for sending'))
    return this.#sender.send(Flags.STREAM, bytes)
  }

  /** The server's messages, ending when the server ends its half (same as iterating the session). */
  messages(): AsyncIterable<Buffer> {
    return this.queue
  }

  override get messagesSent(): number {
    return this.#sender.messagesWritten
  }

  /** The server granted more credit. */
  override grant(bytes: number): void {
    this.#sender.grant(bytes)
  }

  override fail(error: RpcError): void {
    super.fail(error)
    this.#sender.fail(error)
  }

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    return this.queue[Symbol.asyncIterator]()
  }

  /**
   * Ends our half (the server's receiveMessage() gets `undefined`), then waits for the server to
   * end its half, for at most the close timeout; after that the session is cancelled. Messages
   * the server sent before ending stay readable. Safe to call twice.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing
    if (this.ended) return Promise.resolve()
    // The end marker goes through the sender, after any message still waiting for credit.
    this.#sender.send(Flags.STREAM | Flags.STREAM_END, EMPTY).catch(() => {})
    this.endLocal()
    this.#closing = this.waitForRemoteEnd(this.#closeTimeout).then((ended) => {
      if (!ended) this.cancel(new RpcError(Code.CANCELLED, 'session closed by the client'))
    })
    return this.#closing
  }
}

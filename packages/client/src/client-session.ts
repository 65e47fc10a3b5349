import { Code, Flags, RpcError, toBuffer } from '@srpc/protocol'
import type { CallHost } from './call-host'
import { StreamingCall, type StreamingCallOptions } from './streaming-call'

const RESOLVED = Promise.resolve()
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
export class ClientSession extends StreamingCall implements AsyncIterable<Buffer> {
  readonly route: string
  #closeTimeout: number
  #closing: Promise<void> | undefined

  constructor(host: CallHost, id: number, route: string, options: SessionOptions, closeTimeout: number) {
    super(host, id, false, options)
    this.route = route
    this.#closeTimeout = options.closeTimeout ?? closeTimeout
  }

  /** Sends one message; resolves when the connection can take more. */
  send(data: Uint8Array | string): Promise<void> {
    if (this.error) return Promise.reject(this.error)
    if (this.localEnded)
      return Promise.reject(new RpcError(Code.FAILED_PRECONDITION, 'session is closed for sending'))
    const writable = this.host.send(Flags.STREAM, this.id, '', toBuffer(data))
    return writable ? RESOLVED : this.host.whenWritable()
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
    if (this.ended) return RESOLVED
    this.host.send(Flags.STREAM | Flags.STREAM_END, this.id, '', EMPTY)
    this.endLocal()
    this.#closing = this.waitForRemoteEnd(this.#closeTimeout).then((ended) => {
      if (!ended) this.cancel(new RpcError(Code.CANCELLED, 'session closed by the client'))
    })
    return this.#closing
  }
}

import type { Metadata, RpcError } from '@srpc/protocol'
import type { SessionCall } from './calls'

/** Makes a WebSession (its constructor is private: users get one from `createBidirectionalSession`). */
export let sessionOf!: (call: SessionCall, closeTimeout: number) => WebSession

/**
 * A bidirectional session: messages both ways on one id, in order, until both halves end. The
 * same shape as the Node client's ClientSession (`send`, `receive`, `messages()`, `close`,
 * `bufferedAmount`, `signal`), so code and typed contracts move between the two.
 */
export class WebSession implements AsyncIterable<Uint8Array> {
  #call: SessionCall
  #closeTimeout: number

  static {
    sessionOf = (call, closeTimeout) => new WebSession(call, closeTimeout)
  }

  private constructor(call: SessionCall, closeTimeout: number) {
    this.#call = call
    this.#closeTimeout = closeTimeout
  }

  get route(): string {
    return this.#call.route
  }

  /**
   * Bytes of messages queued and not yet handed to the WebSocket (credit or backpressure holds
   * them). A sender that finds it high can skip a message instead of waiting.
   */
  get bufferedAmount(): number {
    return this.#call.bufferedAmount
  }

  /** What the server set in `ctx.responseMetadata`, once its half ended (servers with `response-metadata`). */
  get responseMetadata(): Metadata | undefined {
    return this.#call.responseMetadata
  }

  /** Why the session failed, once it did. */
  get error(): RpcError | undefined {
    return this.#call.error
  }

  /** Both halves ended, or the session failed. */
  get ended(): boolean {
    return this.#call.signal.aborted
  }

  /** Aborted when the session is over (with its error as reason when it failed). */
  get signal(): AbortSignal {
    return this.#call.signal
  }

  /**
   * Sends one message; resolves once it is handed to the WebSocket. Rejects with
   * RESOURCE_EXHAUSTED when `maxBufferedBytes` are already queued, FAILED_PRECONDITION after
   * `close()`, and the session's error once it failed.
   */
  send(data: Uint8Array | string): Promise<void> {
    return this.#call.send(data)
  }

  /** The next message from the server, or `undefined` once it ended its half. */
  receive(): Promise<Uint8Array | undefined> {
    return this.#call.receive()
  }

  tryReceive(): Uint8Array | undefined {
    return this.#call.tryReceive()
  }

  async *messages(): AsyncGenerator<Uint8Array, void, undefined> {
    for (;;) {
      const message = await this.#call.receive()
      if (message === undefined) return
      yield message
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this.messages()
  }

  /** Ends our half and waits (up to `closeTimeout`) for the server to end its half, then cancels. */
  close(): Promise<void> {
    return this.#call.close(this.#closeTimeout)
  }

  /** Ends the session now; the server's handler sees its signal abort. */
  cancel(error: RpcError): void {
    this.#call.abort(error)
  }
}

import type { Metadata, RpcError } from '@srpc/protocol'

/** What a session's public face needs of its call, on the Node pool and in the browser alike. */
export interface SessionSource<T> {
  readonly route: string
  readonly bufferedAmount: number
  readonly responseMetadata: Metadata | undefined
  readonly error: RpcError | undefined
  readonly ended: boolean
  readonly signal: AbortSignal
  send(data: Uint8Array | string): Promise<void>
  receive(): Promise<T | undefined>
  tryReceive(): T | undefined
  /** Ends our half, then waits (bounded) for the peer's; cancels after that. Safe to call twice. */
  close(): Promise<void>
  cancel(error: RpcError): void
}

/**
 * A client's bidirectional session as its user sees it: one id for its whole life, messages in
 * order both ways, until both halves end. The Node pool's ClientSession and the browser's
 * WebSession are this, over their own calls, so code and typed contracts move between the two.
 */
export class CallSession<T> implements AsyncIterable<T> {
  readonly #source: SessionSource<T>

  protected constructor(source: SessionSource<T>) {
    this.#source = source
  }

  /** The route the session was opened on. */
  get route(): string {
    return this.#source.route
  }

  /**
   * Bytes of messages queued and not yet handed to the transport, like WebSocket's
   * `bufferedAmount`. A send fails with RESOURCE_EXHAUSTED once this would pass
   * `maxBufferedBytes`; a broadcaster checks it to skip a slow peer instead of stalling on it.
   */
  get bufferedAmount(): number {
    return this.#source.bufferedAmount
  }

  /**
   * The metadata the server sent with the end of its half (`ctx.responseMetadata`), once it
   * ended; undefined before, or when the server sent none.
   */
  get responseMetadata(): Metadata | undefined {
    return this.#source.responseMetadata
  }

  /** The error that ended the session, if one did. */
  get error(): RpcError | undefined {
    return this.#source.error
  }

  /** Both halves ended, or the session failed. */
  get ended(): boolean {
    return this.#source.ended
  }

  /** Aborted when the session is over, with its RpcError as reason when it failed. */
  get signal(): AbortSignal {
    return this.#source.signal
  }

  /**
   * Sends one message; resolves when it is handed to the transport and the connection can take
   * more. Rejects with RESOURCE_EXHAUSTED, sending nothing, when `maxBufferedBytes` are queued,
   * and with the session's error once it failed.
   */
  send(data: Uint8Array | string): Promise<void> {
    return this.#source.send(data)
  }

  /** The next message, or `undefined` once the server ended its half. */
  receive(): Promise<T | undefined> {
    return this.#source.receive()
  }

  /** A message already received, or `undefined` if none is waiting. */
  tryReceive(): T | undefined {
    return this.#source.tryReceive()
  }

  /** The server's messages, ending when the server ends its half (same as iterating the session). */
  async *messages(): AsyncGenerator<T, void, undefined> {
    for (;;) {
      const message = await this.#source.receive()
      if (message === undefined) return
      yield message
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return this.messages()
  }

  /**
   * Ends our half (the server's receiveMessage() gets `undefined`), then waits for the server to
   * end its half, for at most the close timeout; after that the session is cancelled. Messages
   * the server sent before ending stay readable. Safe to call twice.
   */
  close(): Promise<void> {
    return this.#source.close()
  }

  /** Ends the session now: the server is told to stop (where it can) and local readers fail with `error`. */
  cancel(error: RpcError): void {
    this.#source.cancel(error)
  }
}

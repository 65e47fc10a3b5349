import {
  type CallHost,
  callSender,
  type Extensions,
  payloadBytes,
  type Session,
  type StreamSender,
} from '@srpc/core'
import { Code, Flags, type Metadata, RpcError } from '@srpc/protocol'
import { StreamingCall, type StreamingCallOptions } from './streaming-call'

const EMPTY = Buffer.alloc(0)

export interface SessionOptions extends StreamingCallOptions {
  /** How long close() waits for the server to end its half before cancelling, ms. */
  closeTimeout?: number
}

/** Builds the public face of a session call (the constructor is private: users never make one). */
let faceOf!: (call: SessionCall) => ClientSession
/** The call behind a session, for the pool's interceptors. */
export let callOf!: (session: ClientSession) => SessionCall

/**
 * A session as its connection sees it: the server's frames in, our messages out through a
 * credit-aware sender. Users get its `session`, which shows none of this plumbing.
 */
export class SessionCall extends StreamingCall {
  readonly route: string
  readonly session: ClientSession
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
    this.#sender = callSender(host, id, ext)
    this.#closeTimeout = options.closeTimeout ?? closeTimeout
    this.session = faceOf(this)
  }

  get bufferedAmount(): number {
    return this.#sender.bufferedAmount
  }

  send(data: Uint8Array | string): Promise<void> {
    let bytes: Buffer
    try {
      bytes = payloadBytes(data, 'message')
    } catch (err) {
      return Promise.reject(err)
    }
    const refused = this.sendRefusal('session is closed for sending')
    if (refused) return Promise.reject(refused)
    return this.#sender.send(Flags.STREAM, bytes)
  }

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

  /** Messages still waiting for credit are dropped too: their sends reject with the error. */
  protected override dropHalves(error: RpcError): void {
    super.dropHalves(error)
    this.#sender.fail(error)
  }

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

/**
 * A bidirectional session: one id for its whole life, messages in order both ways.
 * `receive()` resolves with the next server message, or `undefined` once the server ended
 * its half; `close()` ends ours and waits (bounded) for the server to finish.
 */
export class ClientSession implements Session, AsyncIterable<Buffer> {
  static {
    faceOf = (call) => new ClientSession(call)
    callOf = (session) => session.#call
  }

  #call: SessionCall

  private constructor(call: SessionCall) {
    this.#call = call
  }

  /** The route the session was opened on. */
  get route(): string {
    return this.#call.route
  }

  /**
   * Bytes of messages queued and not yet handed to the socket, like WebSocket's
   * `bufferedAmount`. A send fails with RESOURCE_EXHAUSTED once this would pass the pool's
   * `maxBufferedBytes`; a broadcaster checks it to skip a slow peer instead of stalling on it.
   */
  get bufferedAmount(): number {
    return this.#call.bufferedAmount
  }

  /**
   * The metadata the server sent with the end of its half (`ctx.responseMetadata`), once it
   * ended; undefined before, or when the server sent none.
   */
  get responseMetadata(): Metadata | undefined {
    return this.#call.responseMetadata
  }

  /** The error that ended the session, if one did. */
  get error(): RpcError | undefined {
    return this.#call.error
  }

  /** Both halves ended, or the session failed. */
  get ended(): boolean {
    return this.#call.ended
  }

  /** Created on first read; aborted with the RpcError when the session fails. */
  get signal(): AbortSignal {
    return this.#call.signal
  }

  /**
   * Sends one message; resolves when it is handed to the socket and the connection can take
   * more. Rejects with RESOURCE_EXHAUSTED, sending nothing, when `maxBufferedBytes` are queued.
   */
  send(data: Uint8Array | string): Promise<void> {
    return this.#call.send(data)
  }

  /** The next message, or `undefined` once the server ended its half. */
  receive(): Promise<Buffer | undefined> {
    return this.#call.receive()
  }

  /** A message already received, or `undefined` if none is waiting. */
  tryReceive(): Buffer | undefined {
    return this.#call.tryReceive()
  }

  /** The server's messages, ending when the server ends its half (same as iterating the session). */
  messages(): AsyncIterable<Buffer> {
    return this.#call.messages()
  }

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    return this.#call.messages()[Symbol.asyncIterator]()
  }

  /**
   * Ends our half (the server's receiveMessage() gets `undefined`), then waits for the server to
   * end its half, for at most the close timeout; after that the session is cancelled. Messages
   * the server sent before ending stay readable. Safe to call twice.
   */
  close(): Promise<void> {
    return this.#call.close()
  }

  /** Ends the session now: the server is told to stop (where it can) and local readers fail with `error`. */
  cancel(error: RpcError): void {
    this.#call.cancel(error)
  }
}

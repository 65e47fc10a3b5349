import {
  type CallHost,
  CallSession,
  callSender,
  type Extensions,
  payloadBytes,
  type Session,
  type StreamSender,
} from '@srpc/core'
import { Code, Flags, RpcError } from '@srpc/protocol'
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
 * its half; `close()` ends ours and waits (bounded) for the server to finish. Core's CallSession
 * over this pool's SessionCall (the browser's WebSession is the same over its own).
 */
export class ClientSession extends CallSession<Buffer> implements Session {
  static {
    faceOf = (call) => new ClientSession(call)
    callOf = (session) => session.#call
  }

  #call: SessionCall

  private constructor(call: SessionCall) {
    super(call)
    this.#call = call
  }
}

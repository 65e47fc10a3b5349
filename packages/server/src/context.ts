import type { PeerInfo, Session } from '@srpc/core'
import type { FrameId, Metadata } from '@srpc/protocol'
import type { ServerCall } from './server-call'

export type { PeerInfo }

/** A server stream: chunks go out in order; the one marked last ends the stream. */
export interface ServerStream {
  /**
   * Resolves when the chunk is queued and the connection can take more; rejects with CANCELLED
   * if the client went away, with INVALID_ARGUMENT (and fails the call) for a chunk that is not
   * a string or Uint8Array.
   */
  writeChunk(data: Uint8Array | string, isLast?: boolean): Promise<void>
}

/** Builds a call's Context (server-call.ts); set in Context's static block, as its constructor is private. */
let create: (call: ServerCall) => Context

/** The call behind a Context (for the server's own wrappers; the constructor is private). */
let callOf: (ctx: Context) => ServerCall

/** The call behind `ctx`, for checks the server runs around handlers (route kinds). */
export function callOfContext(ctx: Context): ServerCall {
  return callOf(ctx)
}

/** A call's Context; the server makes one per call. */
export function contextFor(call: ServerCall): Context {
  return create(call)
}

/**
 * What a handler sees of one call. Requests use `reply` or `stream()`; bidirectional sessions
 * use `sendMessage`, `receiveMessage`, `tryReceiveMessage` and `messages()`.
 */
export class Context {
  #call: ServerCall

  static {
    create = (call) => new Context(call)
    callOf = (ctx) => ctx.#call
  }

  private constructor(call: ServerCall) {
    this.#call = call
  }

  get id(): FrameId {
    return this.#call.id
  }

  get route(): string {
    return this.#call.route
  }

  /** The request payload (empty for a session). */
  get payload(): Buffer {
    return this.#call.payload
  }

  /** Metadata the client sent with the call (empty when none or when the peer speaks plain v1). */
  get metadata(): Readonly<Metadata> {
    return this.#call.metadata
  }

  /** Epoch milliseconds after which nobody waits for this call, when the client set a timeout. */
  get deadline(): number | undefined {
    return this.#call.deadlineEpoch
  }

  /** Aborted when the client cancels, the connection dies, the deadline passes or the server shuts down hard. */
  get signal(): AbortSignal {
    return this.#call.signal
  }

  /**
   * Aborted when the server begins a graceful shutdown, with RpcError UNAVAILABLE "server is
   * shutting down" as its reason (already aborted for a call that starts during one). A long
   * stream or session listens to it to say goodbye and return before the shutdown timeout cuts
   * it; `signal`, by contrast, aborts only when the call is over.
   */
  get shutdownSignal(): AbortSignal {
    return this.#call.shutdownSignal
  }

  get peer(): PeerInfo {
    return this.#call.peer
  }

  /**
   * Bytes of this stream's chunks or this session's messages queued and not yet handed to the
   * socket (0 for a plain request), like WebSocket's `bufferedAmount`. A send fails with
   * RESOURCE_EXHAUSTED once this would pass the server's `maxBufferedBytes`; a broadcaster
   * checks it to skip a slow member instead of awaiting it and stalling the room.
   */
  get bufferedAmount(): number {
    return this.#call.bufferedAmount
  }

  /**
   * Response metadata: entries set here (lowercase keys, string values, 8 KiB in all) go to the
   * client with the reply, the stream's end or the session's end, whichever ends our half, so
   * set them before that. Only srpc clients that negotiated `response-metadata` get them; a v1
   * client gets the usual frames. A bad entry is a handler bug: the call fails with INTERNAL.
   */
  get responseMetadata(): Metadata {
    this.#call.responseMetadata ??= Object.create(null) as Metadata
    return this.#call.responseMetadata
  }

  /** Answers a request. Only once; a session cannot reply. A wrong type: see `sendMessage`. */
  reply(data: Uint8Array | string): Promise<void> {
    return this.#call.reply(data)
  }

  /** Turns this request into a server stream. */
  stream(): ServerStream {
    return this.#call.stream()
  }

  /**
   * Sends one session message to the client. A value that is not a string or Uint8Array
   * (`undefined` sends an empty one) rejects with INVALID_ARGUMENT and fails the call: the
   * client gets INTERNAL, the server emits `error`.
   */
  sendMessage(data: Uint8Array | string): Promise<void> {
    return this.#call.sendMessage(data)
  }

  /**
   * This session behind the Session interface the client's ClientSession implements too
   * (`send`, `receive`, `messages()`, `close`, `bufferedAmount`, `signal`). FAILED_PRECONDITION
   * for a request.
   */
  session(): Session {
    return this.#call.session()
  }

  /** The next message from the client, or `undefined` once the client closed its side. */
  receiveMessage(): Promise<Buffer | undefined> {
    return this.#call.receiveMessage()
  }

  /** A queued client message, or `undefined` if none has arrived yet. */
  tryReceiveMessage(): Buffer | undefined {
    return this.#call.tryReceiveMessage()
  }

  /** The client's messages as an async iterable, ending when the client closes its side. */
  messages(): AsyncIterable<Buffer> {
    return this.#call.messages()
  }
}

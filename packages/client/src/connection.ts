import {
  ALL_FEATURES,
  callError,
  type ExtensionSettings,
  errorFields,
  type Frame,
  type FrameConnection,
  type Logger,
  nextConnectionId,
  PeerConnection,
  type PeerRole,
  publishConnectionClose,
  publishConnectionOpen,
  type Transport,
} from '@srpc/core'
import {
  Code,
  decodeErrorValue,
  encodeMetadata,
  encodeTimeoutBlock,
  Flags,
  type FrameId,
  type Metadata,
  protocolError,
  RpcError,
  splitMetadata,
  TIMEOUT_KEY,
} from '@srpc/protocol'
import { type ClientSession, SessionCall, type SessionOptions } from './client-session'
import { dial } from './connector'
import { DEFAULT_SESSION_CLOSE_TIMEOUT, type ResolvedPoolOptions } from './options'
import type { PendingCall } from './pending-call'
import type { Resender } from './resend'
import { StreamingCall } from './streaming-call'
import { abortedError, UnaryCall } from './unary-call'

export type ConnectionState = 'connecting' | 'ready' | 'draining' | 'closed'

export interface CallOptions {
  /** Milliseconds until the call fails with DEADLINE_EXCEEDED (the server is told too). */
  timeout?: number
  /** Aborting it cancels the call with CANCELLED. */
  signal?: AbortSignal
  /** Key/value pairs for the server (`ctx.metadata`); needs an srpc server. */
  metadata?: Metadata
  /**
   * Called with the server's response metadata (`ctx.responseMetadata`) when it arrives with the
   * reply, the stream's end or the session's end; not called when the server sent none.
   */
  onResponseMetadata?: (metadata: Metadata) => void
  /**
   * On a new connection, wait (at most `helloTimeout`) for the server's answer to our HELLO
   * before sending, so that even the first call gets the extensions: error details, response
   * metadata. Implied by `metadata` and `onResponseMetadata`; `@srpc/contract` clients set it.
   * Only calls opened before the answer pay for it (one round trip).
   */
  waitForExtensions?: boolean
}

/** The call needs the negotiated extensions: it waits for the HELLO answer on a new connection. */
function wantsExtensions(options: CallOptions): boolean {
  return !!options.metadata || options.onResponseMetadata !== undefined || options.waitForExtensions === true
}

/** What the pool passes down: a timeout it set itself is enforced here but not sent to the server. */
export interface PoolCallOptions extends CallOptions {
  implicitTimeout?: boolean
}

export interface ConnectionEvents {
  onClose(connection: ClientConnection, error: RpcError | undefined): void
  onGoaway(connection: ClientConnection): void
  /** A call ended on a connection that was at the server's stream limit: it has room again. */
  onRelease?(connection: ClientConnection): void
}

/** Where one connection attempt goes (the pool's options name the first server by default). */
export interface ConnectTarget {
  host: string
  port: number
  /** TLS server name; defaults to `host` unless it is an IP. */
  servername?: string
  /** Aborting it ends the attempt at once with CANCELLED. */
  signal?: AbortSignal
}

/**
 * The client's role on one connection to a server (over TLS, or whatever transport the connector
 * gives): it allocates ids, opens calls, streams and sessions, and handles the server's answers
 * and GOAWAY. The connection itself (frames, calls by id, HELLO, control frames, keepalive) is
 * core's PeerConnection, which the calls use as their host.
 */
export class ClientConnection implements PeerRole<PendingCall> {
  /** Process-wide id, in logs and on the diagnostics channels. */
  readonly connectionId = nextConnectionId()
  #transportPeer: Transport['peer']
  #logger: Logger
  #address: string
  #peer: PeerConnection<PendingCall>
  #events: ConnectionEvents
  #nextId = 1
  /** Last id the server promised to serve after it said GOAWAY; later ids were not processed. */
  #goawayLastId: FrameId | undefined
  /** The error of the last failAll and its refused copy (calls past the GOAWAY's last id share it). */
  #refused: { error: RpcError; refused: RpcError } | undefined
  /** The server answered a call: the pool counts the connection as a success (resets its backoff). */
  #answered = false
  #wentAway = false

  /**
   * Asks the pool's connector for a transport (TCP + TLS by default) within `connectTimeout`,
   * then announces our capabilities on it. Failures are RpcErrors: the connector's own, or
   * UNAVAILABLE ("cannot connect to host:port: …") for anything else it threw.
   */
  static connect(
    options: ResolvedPoolOptions,
    events: ConnectionEvents,
    target: ConnectTarget = options,
  ): Promise<ClientConnection> {
    const { host, port } = target
    const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
    return dial(options, target).then(
      (transport) => new ClientConnection(transport, options, events, address),
    )
  }

  /** `address` (host:port) names the server in errors, e.g. when it turns out not to speak srpc. */
  constructor(transport: Transport, options: ResolvedPoolOptions, events: ConnectionEvents, address: string) {
    this.#events = events
    this.#transportPeer = transport.peer
    this.#logger = options.logger
    this.#address = address
    publishConnectionOpen('client', this.connectionId, transport.peer)
    this.#logger.debug({ connectionId: this.connectionId, peer: address }, 'connection opened')
    this.#peer = new PeerConnection(transport, this, {
      side: 'client',
      settings: settingsOf(options),
      streamHighWaterMark: options.streamHighWaterMark,
      maxBufferedBytes: options.maxBufferedBytes,
      keepalive: options.keepalive,
      helloTimeout: options.helloTimeout,
      maxFrameSize: options.maxFrameSize,
      peerName: `the server at ${address}`,
    })
  }

  get frames(): FrameConnection {
    return this.#peer.frames
  }

  get state(): ConnectionState {
    const state = this.#peer.state
    return state === 'open' ? 'ready' : state === 'closing' ? 'draining' : 'closed'
  }

  /** Resolves once the server answered our HELLO, helloTimeout passed (a v1 server), or the connection closed. */
  get negotiated(): Promise<void> {
    return this.#peer.negotiated
  }

  /**
   * The server closed this connection saying UNAVAILABLE (it is shutting down, or draining in a
   * rolling restart, and refused us): a sign to go elsewhere, not that the address is broken.
   */
  get wentAway(): boolean {
    return this.#wentAway
  }

  /** The server spoke on this connection (answered our HELLO or a call), so it is more than a bare handshake. */
  get answered(): boolean {
    return this.#answered || this.#peer.extended
  }

  /** Calls, streams and sessions in flight. */
  get inFlight(): number {
    return this.#peer.inFlight
  }

  /** Extensions the server agreed to; empty for a plain v1 server (or before it answered). */
  get features(): ReadonlySet<string> {
    return this.#peer.extensions.features
  }

  get available(): boolean {
    // 'open' lasts until the socket's close event; frames stops taking writes earlier (a FIN).
    return this.#peer.state === 'open' && this.#peer.frames.state === 'open'
  }

  /** The server's limit on calls in flight on this connection, once it told us. */
  get maxConcurrentStreams(): number {
    return this.#peer.extensions.peerMaxConcurrentStreams ?? Number.POSITIVE_INFINITY
  }

  /** Ready, and below the server's limit on calls in flight. */
  get hasCapacity(): boolean {
    return this.available && this.#peer.inFlight < this.maxConcurrentStreams
  }

  /**
   * A unary call. `resender`, when given, gets the chance to send the call again elsewhere if it
   * fails as refused (no server processed it); `resends` counts how often that happened already.
   */
  call(
    route: string,
    payload: Buffer,
    options: CallOptions,
    resender?: Resender,
    resends = 0,
  ): Promise<Buffer> {
    if (wantsExtensions(options) && !this.#peer.extensions.has('metadata')) {
      return this.#callWhenNegotiated(route, payload, options, resender, resends)
    }
    return this.#call(route, payload, options, resender, resends)
  }

  /** Apart from call(): its closure would make every call allocate the context it captures. */
  #callWhenNegotiated(
    route: string,
    payload: Buffer,
    options: CallOptions,
    resender: Resender | undefined,
    resends: number,
  ): Promise<Buffer> {
    return this.#peer.negotiated.then(() => this.#call(route, payload, options, resender, resends))
  }

  #call(
    route: string,
    payload: Buffer,
    options: CallOptions,
    resender: Resender | undefined,
    resends: number,
  ): Promise<Buffer> {
    if (options.signal?.aborted) return Promise.reject(abortedError(options.signal))
    const call = new UnaryCall(this.#peer, this.#nextId++, route, payload, options, resender, resends)
    this.#peer.register(call)
    this.#sendOpen(Flags.REQUEST, route, payload, options, call)
    return call.promise
  }

  async openStream(route: string, payload: Buffer, options: CallOptions): Promise<StreamingCall> {
    await this.#ready(options)
    const call = new StreamingCall(this.#peer, this.#nextId++, true, options, this.#peer.extensions)
    this.#peer.register(call)
    this.#sendOpen(Flags.REQUEST | Flags.STREAM, route, payload, options, call)
    return call
  }

  async openSession(route: string, options: CallOptions & SessionOptions): Promise<ClientSession> {
    await this.#ready(options)
    const ext = this.#peer.extensions
    const call = new SessionCall(
      this.#peer,
      this.#nextId++,
      route,
      options,
      DEFAULT_SESSION_CLOSE_TIMEOUT,
      ext,
    )
    this.#peer.register(call)
    this.#sendOpen(Flags.STREAM, route, EMPTY, options, call)
    return call.session
  }

  /** Metadata needs the negotiation's outcome; an aborted signal fails before an id is spent. */
  async #ready(options: CallOptions): Promise<void> {
    if (wantsExtensions(options) && !this.#peer.extensions.has('metadata')) await this.#peer.negotiated
    if (options.signal?.aborted) throw abortedError(options.signal)
  }

  /** Round trip of a PING on this connection, in ms. Needs an srpc server. */
  ping(timeoutMs: number): Promise<number> {
    return this.#peer.ping(timeoutMs)
  }

  /** Stops taking new calls and closes once the calls in flight are done. */
  drain(): void {
    this.#peer.close()
  }

  /** Fails every call with `error` and closes the socket now. */
  destroy(error: RpcError): void {
    this.#peer.destroy(error)
  }

  #sendOpen(flags: number, route: string, payload: Buffer, options: CallOptions, call: PendingCall): void {
    if (!this.#open) return this.#notSent(call, notSentError())
    const ext = this.#peer.extensions
    const sendTimeout = options.timeout !== undefined && !(options as PoolCallOptions).implicitTimeout
    let block: Uint8Array | undefined
    // Most calls carry neither metadata nor a timeout to send: they skip the extension lookup.
    if ((options.metadata || sendTimeout) && ext.has('metadata')) {
      if (options.metadata === undefined) {
        block = encodeTimeoutBlock(options.timeout!)
      } else {
        const metadata: Metadata = { ...options.metadata }
        if (sendTimeout) metadata[TIMEOUT_KEY] = String(Math.ceil(options.timeout!))
        try {
          block = encodeMetadata(metadata)
        } catch (err) {
          return this.#notSent(call, err as RpcError)
        }
      }
      flags |= Flags.METADATA
    } else if (options.metadata && Object.keys(options.metadata).length > 0) {
      return this.#notSent(
        call,
        new RpcError(Code.FAILED_PRECONDITION, 'metadata needs an srpc server; this one speaks plain v1'),
      )
    }
    const compressed = ext.compressMaybeAsync(payload)
    if (compressed instanceof Promise)
      return this.#sendDeflated(flags, route, payload, block, call, compressed)
    this.#write(flags, route, payload, compressed, block, call)
  }

  /**
   * A large payload deflating on zlib's pool: the call is in flight meanwhile (a close waits for
   * it, a lost connection fails it), but the server has not heard of it. Ended before the
   * deflate is done (cancelled, deadline, connection gone), it is never sent: no frame at all.
   */
  #sendDeflated(
    flags: number,
    route: string,
    payload: Buffer,
    block: Uint8Array | undefined,
    call: PendingCall,
    deflating: Promise<Buffer | undefined>,
  ): void {
    const peer = this.#peer
    peer.deferOpening(call.id)
    deflating
      .then((compressed) => {
        if (!peer.takeDeferred(call.id)) return
        if (!this.#open) return this.#notSent(call, notSentError())
        this.#write(flags, route, payload, compressed, block, call)
      })
      .catch((err: unknown) => this.#notSent(call, RpcError.from(err)))
  }

  /** The opening frame: compressed when that paid, the metadata block (never compressed) before the payload. */
  #write(
    flags: number,
    route: string,
    payload: Buffer,
    compressed: Buffer | undefined,
    block: Uint8Array | undefined,
    call: PendingCall,
  ): void {
    try {
      if (compressed) this.#peer.frames.sendFrame(flags | Flags.COMPRESSED, call.id, route, compressed, block)
      else this.#peer.frames.sendFrame(flags, call.id, route, payload, block)
    } catch (err) {
      // Larger than the server accepts: this call fails, the connection carries on.
      this.#notSent(call, err as RpcError)
    }
  }

  /** Frames can still go out on this connection. */
  get #open(): boolean {
    const frames = this.#peer.frames
    return frames.state === 'open' && frames.transport.state !== 'closed'
  }

  #notSent(call: PendingCall, error: RpcError): void {
    this.#peer.unregister(call.id)
    call.fail(error)
  }

  // --- PeerRole: what the server sends ---
  onFrame(frame: Frame, call: PendingCall | undefined): void {
    const flags = frame.flags
    const id = frame.id
    if (id === 0) {
      if (flags & Flags.ERROR) {
        // The server is closing the connection and says why.
        const error = decodeErrorValue(frame.value)
        if (error.code === Code.UNAVAILABLE) this.#wentAway = true
        this.destroy(error)
        return
      }
      throw protocolError('frame for id 0 that is not a control or error frame')
    }
    if (flags & Flags.REQUEST || (flags & Flags.METADATA && !this.#responseMetadataAllowed(flags))) {
      throw protocolError(`unexpected flags 0x${flags.toString(16)} from a server`)
    }
    if (call === undefined) return this.#peer.orphan(id, 'answer for id')
    this.#answered = true
    let metadata: Metadata | undefined
    if (flags & Flags.METADATA) {
      // The block comes first and is never compressed; a malformed one fails the connection.
      ;({ metadata, payload: frame.value } = splitMetadata(frame.value))
    }
    if (flags & Flags.COMPRESSED) {
      try {
        frame.value = this.#peer.decodePayload(flags, frame.value)
      } catch (err) {
        const error = callError(err)
        this.#peer.cancel(id, error)
        call.fail(error)
        return
      }
    }
    call.onFrame(frame, metadata)
  }

  /** Response metadata: agreed, and only on a call's last frame (a reply, a stream's or session's end). */
  #responseMetadataAllowed(flags: number): boolean {
    return (
      this.#peer.extensions.has('response-metadata') &&
      (flags & (Flags.RESPONSE | Flags.STREAM_END)) !== 0 &&
      (flags & Flags.ERROR) === 0
    )
  }

  /** A server does not cancel the client's calls: it answers them with an error. */
  onCancel(): void {}

  onGoaway(lastId: FrameId): void {
    this.#goawayLastId = lastId
    this.drain()
    this.#events.onGoaway(this)
  }

  /** A call left: tell the pool there is room under the server's limit again. */
  onReleased(inFlight: number): void {
    if (inFlight === this.maxConcurrentStreams - 1) this.#events.onRelease?.(this)
  }

  /**
   * Calls past the GOAWAY's last id never reached a handler, and calls whose request was still
   * deflating were never sent: safe for the pool to resend.
   */
  failCall(call: PendingCall, error: RpcError): void {
    const lastId = this.#goawayLastId
    if ((lastId !== undefined && call.id > lastId) || this.#peer.isDeferred(call.id)) {
      if (this.#refused?.error !== error) {
        this.#refused = {
          error,
          refused: new RpcError(error.code, error.message, { cause: error, refused: true }),
        }
      }
      error = this.#refused.refused
    }
    call.fail(error)
  }

  /** A peer that broke the protocol or refused our certificate is reported as such; anything else is UNAVAILABLE. */
  lostError(error: RpcError | undefined): RpcError {
    return error?.code === Code.UNAVAILABLE ||
      error?.code === Code.PROTOCOL_ERROR ||
      error?.code === Code.UNAUTHENTICATED
      ? error
      : new RpcError(Code.UNAVAILABLE, error ? `connection lost: ${error.message}` : 'connection closed', {
          cause: error,
        })
  }

  onClosed(error: RpcError | undefined): void {
    publishConnectionClose('client', this.connectionId, this.#transportPeer, error)
    const fields = { connectionId: this.connectionId, peer: this.#address, ...errorFields(error) }
    if (error?.code === Code.PROTOCOL_ERROR) this.#logger.warn(fields, 'connection closed: protocol error')
    else if (error !== undefined) this.#logger.info(fields, 'connection closed with an error')
    else this.#logger.debug(fields, 'connection closed')
    this.#events.onClose(this, error)
  }
}

const EMPTY = Buffer.alloc(0)

/** The connection died before a call could be written: no server saw it, safe to resend. */
function notSentError(): RpcError {
  return new RpcError(Code.UNAVAILABLE, 'connection closed before the call was sent', { refused: true })
}

function settingsOf(options: ResolvedPoolOptions): ExtensionSettings {
  return {
    features: ALL_FEATURES,
    compression: options.compression,
    initialWindow: options.initialWindow,
    maxWindow: options.maxWindow,
    maxFrameSize: options.maxFrameSize,
  }
}

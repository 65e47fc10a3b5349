import { randomBytes } from 'node:crypto'
import {
  ALL_FEATURES,
  announce,
  asBuffer,
  deadlines,
  type ExtensionSettings,
  Extensions,
  type Frame,
  FrameConnection,
  type Transport,
} from '@srpc/core'
import {
  type Capabilities,
  Code,
  ControlKind,
  decodeControl,
  decodeErrorValue,
  encodeControl,
  encodeMetadata,
  encodeTimeoutBlock,
  Flags,
  type FrameId,
  formatMs,
  type Metadata,
  RpcError,
  TIMEOUT_KEY,
} from '@srpc/protocol'
import type { CallHost, PendingCall } from './call-host'
import { ClientSession, type SessionOptions } from './client-session'
import { dial } from './connector'
import { DEFAULT_SESSION_CLOSE_TIMEOUT, type ResolvedPoolOptions } from './options'
import { StreamingCall } from './streaming-call'
import { abortedError, type Resender, UnaryCall } from './unary-call'

export type ConnectionState = 'connecting' | 'ready' | 'draining' | 'closed'

export interface CallOptions {
  /** Milliseconds until the call fails with DEADLINE_EXCEEDED (the server is told too). */
  timeout?: number
  /** Aborting it cancels the call with CANCELLED. */
  signal?: AbortSignal
  /** Key/value pairs for the server (`ctx.metadata`); needs an srpc server. */
  metadata?: Metadata
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

/** One connection to a server (over TLS, or whatever transport the connector gives), multiplexing calls, streams and sessions by id. */
export class ClientConnection implements CallHost {
  readonly streamHighWaterMark: number
  readonly maxBufferedBytes: number
  readonly frames: FrameConnection
  #events: ConnectionEvents
  #calls = new Map<FrameId, PendingCall>()
  #nextId = 1
  #state: ConnectionState = 'ready'
  /** Extensions in force: NONE until the server answered our HELLO (then we send HELLO_ACK). */
  #ext: Extensions = Extensions.NONE
  #options: ResolvedPoolOptions
  #negotiated: Promise<void>
  #onNegotiated!: () => void
  /** Last id the server promised to serve after it said GOAWAY; later ids were not processed. */
  #goawayLastId: FrameId | undefined
  #pings = new Map<string, (rtt: number) => void>()
  /** The server answered a call: the pool counts the connection as a success (resets its backoff). */
  #answered = false

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
    this.#options = options
    this.streamHighWaterMark = options.streamHighWaterMark
    this.maxBufferedBytes = options.maxBufferedBytes
    this.frames = new FrameConnection(
      transport,
      { onFrame: (frame) => this.#onFrame(frame), onClose: (error) => this.#onClose(error) },
      { maxFrameSize: options.maxFrameSize, peerName: `the server at ${address}` },
    )
    this.#negotiated = new Promise((resolve) => {
      this.#onNegotiated = resolve
    })
    // A plain v1 server never answers: after helloTimeout we stop waiting and speak v1.
    const helloTimer = deadlines.schedule(options.helloTimeout, () => this.#onNegotiated())
    this.#negotiated.then(() => deadlines.cancel(helloTimer))
    this.frames.sendEncoded(
      encodeControl(0, { kind: ControlKind.HELLO, capabilities: announce(settingsOf(options)) }),
    )
  }

  get state(): ConnectionState {
    return this.#state
  }

  /** Resolves once the server answered our HELLO, helloTimeout passed (a v1 server), or the connection closed. */
  get negotiated(): Promise<void> {
    return this.#negotiated
  }

  /** The server spoke on this connection (answered our HELLO or a call), so it is more than a bare handshake. */
  get answered(): boolean {
    return this.#answered || this.#ext !== Extensions.NONE
  }

  /** Calls, streams and sessions in flight. */
  get inFlight(): number {
    return this.#calls.size
  }

  /** Extensions the server agreed to; empty for a plain v1 server (or before it answered). */
  get features(): ReadonlySet<string> {
    return this.#ext.features
  }

  get available(): boolean {
    // 'ready' lasts until the socket's close event; frames stops taking writes earlier (a FIN).
    return this.#state === 'ready' && this.frames.state === 'open'
  }

  /** The server's limit on calls in flight on this connection, once it told us. */
  get maxConcurrentStreams(): number {
    return this.#ext.peerMaxConcurrentStreams ?? Number.POSITIVE_INFINITY
  }

  /** Ready, and below the server's limit on calls in flight. */
  get hasCapacity(): boolean {
    return this.available && this.#calls.size < this.maxConcurrentStreams
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
    if (options.metadata && !this.#ext.has('metadata')) {
      return this.#negotiated.then(() => this.#call(route, payload, options, resender, resends))
    }
    return this.#call(route, payload, options, resender, resends)
  }

  #call(
    route: string,
    payload: Buffer,
    options: CallOptions,
    resender: Resender | undefined,
    resends: number,
  ): Promise<Buffer> {
    if (options.signal?.aborted) return Promise.reject(abortedError(options.signal))
    const id = this.#nextId++
    const call = new UnaryCall(this, id, route, payload, options, resender, resends)
    this.#calls.set(id, call)
    this.#sendOpen(Flags.REQUEST, id, route, payload, options, call)
    return call.promise
  }

  async openStream(route: string, payload: Buffer, options: CallOptions): Promise<StreamingCall> {
    if (options.metadata && !this.#ext.has('metadata')) await this.#negotiated
    if (options.signal?.aborted) throw abortedError(options.signal)
    const id = this.#nextId++
    const call = new StreamingCall(this, id, true, options, this.#ext)
    this.#calls.set(id, call)
    this.#sendOpen(Flags.REQUEST | Flags.STREAM, id, route, payload, options, call)
    return call
  }

  async openSession(route: string, options: CallOptions & SessionOptions): Promise<ClientSession> {
    if (options.metadata && !this.#ext.has('metadata')) await this.#negotiated
    if (options.signal?.aborted) throw abortedError(options.signal)
    const id = this.#nextId++
    const session = new ClientSession(this, id, route, options, DEFAULT_SESSION_CLOSE_TIMEOUT, this.#ext)
    this.#calls.set(id, session)
    this.#sendOpen(Flags.STREAM, id, route, EMPTY, options, session)
    return session
  }

  /** Round trip of a PING on this connection, in ms. Needs an srpc server. */
  async ping(timeoutMs: number): Promise<number> {
    await this.#negotiated
    if (!this.#ext.has('ping'))
      throw new RpcError(Code.UNIMPLEMENTED, 'server does not answer pings (plain v1)')
    const payload = randomBytes(8)
    const key = payload.toString('hex')
    const started = performance.now()
    return new Promise<number>((resolve, reject) => {
      const entry = deadlines.schedule(timeoutMs, () => {
        this.#pings.delete(key)
        reject(new RpcError(Code.DEADLINE_EXCEEDED, `no pong within ${formatMs(timeoutMs)}`))
      })
      this.#pings.set(key, () => {
        deadlines.cancel(entry)
        resolve(performance.now() - started)
      })
      this.frames.sendEncoded(encodeControl(0, { kind: ControlKind.PING, payload }))
    })
  }

  /** Stops taking new calls and closes once the calls in flight are done. */
  drain(): void {
    if (this.#state !== 'ready') return
    this.#state = 'draining'
    if (this.#calls.size === 0) this.frames.close()
  }

  /** Fails every call with `error` and closes the socket now. */
  destroy(error: RpcError): void {
    this.#state = 'closed'
    this.#failAll(error)
    this.frames.destroy(error)
  }

  // --- CallHost ---
  send(flags: number, id: FrameId, type: string, value: Buffer): boolean {
    return this.frames.sendFrame(flags, id, type, value)
  }

  get writable(): boolean {
    return this.frames.writable
  }

  whenWritable(): Promise<void> {
    return this.frames.whenWritable()
  }

  grant(id: FrameId, bytes: number): void {
    this.frames.sendEncoded(encodeControl(id, { kind: ControlKind.WINDOW_UPDATE, bytes }))
  }

  cancel(id: FrameId, error: RpcError): void {
    if (!this.#calls.delete(id)) return
    if (this.#ext.has('cancel')) {
      this.frames.sendEncoded(encodeControl(id, { kind: ControlKind.CANCEL, code: error.code }))
    }
    this.#released()
  }

  forget(id: FrameId): void {
    if (this.#calls.delete(id)) this.#released()
  }

  pauseReading(): void {
    this.frames.pause()
  }

  resumeReading(): void {
    this.frames.resume()
  }

  #sendOpen(
    flags: number,
    id: number,
    route: string,
    payload: Buffer,
    options: CallOptions,
    call: PendingCall,
  ): void {
    if (this.frames.state !== 'open' || this.frames.transport.state === 'closed') {
      // The connection died before this call could be written: no server saw it, safe to resend.
      this.#calls.delete(id)
      call.fail(
        new RpcError(Code.UNAVAILABLE, 'connection closed before the call was sent', { refused: true }),
      )
      return
    }
    let value = payload
    const compressed = this.#ext.compress(payload)
    if (compressed) {
      value = compressed
      flags |= Flags.COMPRESSED
    }
    const sendTimeout = options.timeout !== undefined && !(options as PoolCallOptions).implicitTimeout
    let block: Uint8Array | undefined
    if (this.#ext.has('metadata') && (options.metadata || sendTimeout)) {
      if (options.metadata === undefined) {
        block = encodeTimeoutBlock(options.timeout!)
      } else {
        const metadata: Metadata = { ...options.metadata }
        if (sendTimeout) metadata[TIMEOUT_KEY] = String(Math.ceil(options.timeout!))
        try {
          block = encodeMetadata(metadata)
        } catch (err) {
          this.#calls.delete(id)
          call.fail(err as RpcError)
          return
        }
      }
      flags |= Flags.METADATA
    } else if (options.metadata && Object.keys(options.metadata).length > 0) {
      this.#calls.delete(id)
      call.fail(
        new RpcError(Code.FAILED_PRECONDITION, 'metadata needs an srpc server; this one speaks plain v1'),
      )
      return
    }
    try {
      this.frames.sendFrame(flags, id, route, value, block)
    } catch (err) {
      // Larger than the server accepts: this call fails, the connection carries on.
      this.#calls.delete(id)
      call.fail(err as RpcError)
    }
  }

  #onFrame(frame: Frame): void {
    const flags = frame.flags
    if (flags & Flags.CONTROL) return this.#onControl(frame)
    const id = frame.id
    if (id === 0) {
      if (flags & Flags.ERROR) {
        // The server is closing the connection and says why.
        this.destroy(decodeErrorValue(frame.value))
        return
      }
      throw protocolError('frame for id 0 that is not a control or error frame')
    }
    if (flags & (Flags.REQUEST | Flags.METADATA)) {
      throw protocolError(`unexpected flags 0x${flags.toString(16)} from a server`)
    }
    const call = this.#calls.get(id)
    if (call === undefined) {
      // A late answer for a call that timed out or was cancelled: drop it. An id we never used is a lie.
      if (typeof id === 'number' && id < this.#nextId) return
      throw protocolError(`answer for id ${id}, which was never used`)
    }
    this.#answered = true
    if (flags & Flags.COMPRESSED) {
      try {
        frame.value = this.#ext.decodePayload(flags, frame.value, this.#options.maxFrameSize)
      } catch (err) {
        if ((err as RpcError).code === Code.PROTOCOL_ERROR) throw err
        this.cancel(id, err as RpcError)
        call.fail(err as RpcError)
        return
      }
    }
    call.onFrame(frame)
  }

  #onControl(frame: Frame): void {
    if (frame.flags !== Flags.CONTROL) throw protocolError('control flag combined with other flags')
    const message = decodeControl(frame)
    if (message === undefined) return
    switch (message.kind) {
      case ControlKind.HELLO:
        return this.#onHello(message.capabilities)
      case ControlKind.PING:
        this.frames.sendEncoded(encodeControl(0, { kind: ControlKind.PONG, payload: message.payload }))
        return
      case ControlKind.PONG: {
        const key = asBuffer(message.payload).toString('hex')
        const waiter = this.#pings.get(key)
        this.#pings.delete(key)
        waiter?.(0)
        return
      }
      case ControlKind.GOAWAY:
        this.#goawayLastId = message.lastId
        this.drain()
        this.#events.onGoaway(this)
        return
      case ControlKind.WINDOW_UPDATE: {
        const call = this.#calls.get(frame.id)
        if (call instanceof StreamingCall) call.grant(message.bytes)
        return
      }
      default:
        return
    }
  }

  /** The server's answer: agree, confirm with HELLO_ACK, and use the extensions for every id from now on. */
  #onHello(capabilities: Capabilities): void {
    if (this.#ext !== Extensions.NONE) throw protocolError('second HELLO from the server')
    this.#ext = Extensions.negotiate(settingsOf(this.#options), capabilities)
    if (capabilities.maxFrameSize) this.frames.maxOutgoingFrameSize = capabilities.maxFrameSize
    this.frames.sendEncoded(encodeControl(0, { kind: ControlKind.HELLO_ACK }))
    const keepalive = this.#options.keepalive
    if (keepalive && this.#ext.has('ping')) this.frames.startKeepalive(keepalive.interval, keepalive.timeout)
    this.#onNegotiated()
  }

  /** A call left: finish a drain, or tell the pool there is room under the server's limit again. */
  #released(): void {
    const size = this.#calls.size
    if (this.#state === 'draining' && size === 0) this.frames.close()
    else if (size === this.maxConcurrentStreams - 1) this.#events.onRelease?.(this)
  }

  #onClose(error: RpcError | undefined): void {
    this.#state = 'closed'
    // A peer that broke the protocol or refused our certificate is reported as such; anything else is UNAVAILABLE.
    this.#failAll(
      error?.code === Code.UNAVAILABLE ||
        error?.code === Code.PROTOCOL_ERROR ||
        error?.code === Code.UNAUTHENTICATED
        ? error
        : new RpcError(Code.UNAVAILABLE, error ? `connection lost: ${error.message}` : 'connection closed', {
            cause: error,
          }),
    )
    this.#onNegotiated()
    this.#events.onClose(this, error)
  }

  #failAll(error: RpcError): void {
    const calls = [...this.#calls.values()]
    this.#calls.clear()
    const lastId = this.#goawayLastId
    // Calls past the GOAWAY's last id never reached a handler: safe for the pool to resend.
    const refused =
      lastId === undefined
        ? undefined
        : new RpcError(error.code, error.message, { cause: error, refused: true })
    for (const call of calls) call.fail(lastId !== undefined && call.id > lastId ? refused! : error)
  }
}

const EMPTY = Buffer.alloc(0)

function settingsOf(options: ResolvedPoolOptions): ExtensionSettings {
  return {
    features: ALL_FEATURES,
    compression: options.compression,
    initialWindow: options.initialWindow,
    maxWindow: options.maxWindow,
    maxFrameSize: options.maxFrameSize,
  }
}

function protocolError(message: string): RpcError {
  return new RpcError(Code.PROTOCOL_ERROR, message)
}

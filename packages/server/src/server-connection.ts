import {
  answer,
  type ExtensionSettings,
  Extensions,
  type Frame,
  FrameConnection,
  type PeerInfo,
  type Transport,
  type TransportPeer,
} from '@srpc/core'
import {
  type Capabilities,
  Code,
  ControlKind,
  decodeControl,
  encodeControl,
  encodeErrorValue,
  Flags,
  type FrameId,
  type Metadata,
  RpcError,
  splitMetadata,
  splitTimeoutOnly,
  TIMEOUT_KEY,
} from '@srpc/protocol'
import type { WorkerPool } from './concurrency-limiter'
import type { Handler } from './mux'
import type { ResolvedServerOptions } from './options'
import { type CallHost, type CallKind, ServerCall } from './server-call'

/** What a connection needs from its server. */
export interface ConnectionHost {
  readonly options: ResolvedServerOptions
  readonly extensionSettings: ExtensionSettings
  readonly pool: WorkerPool
  readonly draining: boolean
  /** Set once a graceful shutdown began: the reason calls' shutdownSignal carries. */
  readonly shutdownReason: RpcError | undefined
  /** The handler for a route, middleware included; unknown routes get the fallback. */
  lookup(route: string): Handler
  /** Starts a call: through the interceptors, then the worker pool (requests) and the handler. */
  run(call: ServerCall): void
  /** Reserves a session slot; false when maxSessions are open. */
  openSession(): boolean
  closeSession(): void
  handlerFailed(error: unknown, call: ServerCall): void
  connectionClosed(connection: ServerConnection, error: RpcError | undefined): void
}

const EMPTY_METADATA: Metadata = Object.freeze(Object.create(null))

/** One client connection on the server: parses its frames into calls and routes them. */
export class ServerConnection implements CallHost {
  readonly frames: FrameConnection
  readonly peer: PeerInfo
  readonly streamHighWaterMark: number
  readonly maxBufferedBytes: number
  #host: ConnectionHost
  #calls = new Map<FrameId, ServerCall>()
  /** Extensions in force: NONE until the client confirms the negotiation with HELLO_ACK. */
  #ext: Extensions = Extensions.NONE
  /** Agreed at the client's HELLO, in force from its HELLO_ACK on (ids opened after it). */
  #agreed: Extensions | undefined
  /** Highest id seen, to tell a late frame for a finished call from a frame for an id never opened. */
  #highestId: FrameId = 0
  /** Set once a GOAWAY went out: the last id this connection still serves. */
  #goawayLastId: FrameId | undefined
  #idleTimer: NodeJS.Timeout | undefined
  /** When the last call finished (performance.now()). */
  #idleSince = performance.now()

  constructor(transport: Transport, host: ConnectionHost) {
    this.#host = host
    this.streamHighWaterMark = host.options.streamHighWaterMark
    this.maxBufferedBytes = host.options.maxBufferedBytes
    this.peer = describePeer(transport.peer)
    this.frames = new FrameConnection(
      transport,
      {
        onFrame: (frame) => this.#onFrame(frame),
        onClose: (error) => this.#onClose(error),
      },
      {
        maxFrameSize: host.options.maxFrameSize,
        maxTypeLength: host.options.maxRouteLength,
        pauseReadingWhileBackedUp: true,
      },
    )
    if (host.options.idleTimeout > 0) this.#armIdleCheck(host.options.idleTimeout)
  }

  #armIdleCheck(delay: number): void {
    this.#idleTimer = setTimeout(() => this.#checkIdle(), delay)
    this.#idleTimer.unref()
  }

  /** Closes a connection that carried no call for idleTimeout ms (one timer per connection, no per-call work). */
  #checkIdle(): void {
    const idleTimeout = this.#host.options.idleTimeout
    if (this.#calls.size > 0) return this.#armIdleCheck(idleTimeout)
    const idleFor = performance.now() - this.#idleSince
    if (idleFor < idleTimeout) return this.#armIdleCheck(idleTimeout - idleFor)
    this.#idleTimer = undefined
    this.drain()
  }

  get shutdownReason(): RpcError | undefined {
    return this.#host.shutdownReason
  }

  get activeCalls(): number {
    return this.#calls.size
  }

  get extended(): boolean {
    return this.#agreed !== undefined
  }

  // --- CallHost ---
  send(flags: number, id: FrameId, value: Buffer): boolean {
    return this.frames.sendFrame(flags, id, '', value)
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

  pauseReading(): void {
    this.frames.pause()
  }

  resumeReading(): void {
    this.frames.resume()
  }

  callFinished(call: ServerCall): void {
    if (this.#calls.get(call.id) === call) this.#calls.delete(call.id)
    if (this.#calls.size === 0) this.#idleSince = performance.now()
    if (call.kind === 'session') this.#host.closeSession()
    if (this.#host.draining && this.#calls.size === 0 && this.#goawayLastId === undefined) this.frames.close()
  }

  handlerFailed(call: ServerCall, error: unknown): void {
    this.#host.handlerFailed(error, call)
  }

  /**
   * Graceful: an srpc client is told we are going away (GOAWAY with the last id we serve) and
   * closes the connection itself once its calls are done, so that no request crossing the
   * GOAWAY is lost; a plain v1 client is closed as soon as its calls are done.
   */
  drain(): void {
    if (this.#agreed?.has('goaway')) {
      if (this.#goawayLastId !== undefined) return
      this.#goawayLastId = this.#highestId
      this.frames.sendEncoded(
        encodeControl(0, {
          kind: ControlKind.GOAWAY,
          lastId: this.#goawayLastId,
          code: Code.UNAVAILABLE,
          message: 'server shutting down',
        }),
      )
      return
    }
    if (this.#calls.size === 0) this.frames.close()
  }

  /** The server began a graceful shutdown: drain, and abort the shutdownSignal of every call that read it. */
  shutdown(reason: RpcError): void {
    this.drain()
    for (const call of this.#calls.values()) call.shuttingDown(reason)
  }

  /**
   * The shutdown's grace period is over: every call still open fails with `reason` (an ERROR
   * frame, so the client learns why instead of seeing the connection drop), then the connection
   * closes after those frames are flushed.
   */
  cut(reason: RpcError): void {
    for (const call of [...this.#calls.values()]) {
      call.fail(reason)
      call.abort(reason)
    }
    this.frames.close()
  }

  /** Hard stop: every call is aborted and the transport destroyed. */
  destroy(reason: RpcError): void {
    for (const call of [...this.#calls.values()]) call.abort(reason)
    this.frames.destroy(reason)
  }

  #onFrame(frame: Frame): void {
    const flags = frame.flags
    if (flags & Flags.CONTROL) return this.#onControl(frame)
    if (flags & Flags.RESPONSE) throw protocolError(`unexpected flags 0x${flags.toString(16)} from a client`)
    if (flags & Flags.METADATA && !this.#ext.has('metadata')) {
      throw protocolError('metadata flag used but not negotiated')
    }
    const id = frame.id
    const highestBefore = this.#highestId
    if (id > highestBefore) this.#highestId = id
    if (flags & Flags.REQUEST) {
      if (flags & (Flags.STREAM_END | Flags.ERROR))
        throw protocolError(`invalid request flags 0x${flags.toString(16)}`)
      return this.#open(frame, 'request')
    }
    if (flags & Flags.ERROR) return this.#cancel(id, Code.CANCELLED)
    if (flags & (Flags.STREAM | Flags.STREAM_END)) {
      const call = this.#calls.get(id)
      if (call === undefined) {
        if (frame.type.length > 0 && !(flags & Flags.STREAM_END)) return this.#open(frame, 'session')
        // A late message for a session that already finished: discard. An id never used is a lie.
        if (frame.type.length === 0 && id <= highestBefore) return
        throw protocolError(`stream frame for unknown session ${id}`)
      }
      if (call.kind !== 'session') throw protocolError(`stream frame for request ${id}`)
      if (flags & Flags.METADATA)
        throw protocolError('metadata on a session message (only the open may carry it)')
      if (frame.value.length > 0 || !(flags & Flags.STREAM_END)) {
        let message: Buffer
        try {
          message = this.#ext.decodePayload(flags, frame.value, this.#host.options.maxFrameSize)
        } catch (err) {
          if ((err as RpcError).code === Code.PROTOCOL_ERROR) throw err
          call.fail(err as RpcError)
          call.abort(err as RpcError)
          return
        }
        call.deliver(message)
      }
      if (flags & Flags.STREAM_END) call.endInput()
      return
    }
    throw protocolError(`frame with flags 0x${flags.toString(16)} has no meaning`)
  }

  #open(frame: Frame, kind: CallKind): void {
    const { id, type: route } = frame
    if (this.#calls.has(id)) throw protocolError(`id ${id} is already in use by a call in flight`)
    let payload = frame.value
    let metadata = EMPTY_METADATA
    let timeoutMs: number | undefined
    // The common case, a deadline and nothing else, skips the general parser.
    const timeoutOnly = frame.flags & Flags.METADATA ? splitTimeoutOnly(payload) : undefined
    if (timeoutOnly !== undefined) {
      timeoutMs = timeoutOnly.timeoutMs
      payload = timeoutOnly.payload
    } else if (frame.flags & Flags.METADATA) {
      try {
        ;({ metadata, payload } = splitMetadata(payload, this.#host.options.maxMetadataSize))
      } catch (err) {
        const error = err as RpcError
        if (error.code === Code.PROTOCOL_ERROR) throw error
        return this.#refuse(id, error)
      }
      const timeout = metadata[TIMEOUT_KEY]
      if (timeout !== undefined) {
        timeoutMs = /^\d{1,12}$/.test(timeout) ? Number(timeout) : Number.NaN
        if (Number.isNaN(timeoutMs)) {
          return this.#refuse(id, new RpcError(Code.INVALID_ARGUMENT, `invalid ${TIMEOUT_KEY} ${timeout}`))
        }
      }
    }
    // The metadata block is never compressed; the payload after it may be.
    try {
      payload = this.#ext.decodePayload(frame.flags, payload, this.#host.options.maxFrameSize)
    } catch (err) {
      if ((err as RpcError).code === Code.PROTOCOL_ERROR) throw err
      return this.#refuse(id, err as RpcError)
    }
    // After a GOAWAY, ids past its last id are never served (the client resends them elsewhere).
    if (this.#host.draining || (this.#goawayLastId !== undefined && id > this.#goawayLastId)) {
      return this.#refuse(id, new RpcError(Code.UNAVAILABLE, 'server is shutting down', { refused: true }))
    }
    if (this.#calls.size >= this.#host.options.maxConcurrentStreams) {
      return this.#refuse(
        id,
        new RpcError(
          Code.RESOURCE_EXHAUSTED,
          `more than ${this.#host.options.maxConcurrentStreams} concurrent calls on one connection`,
          { refused: true },
        ),
      )
    }
    const handler = this.#host.lookup(route)
    if (kind === 'session') {
      if (!this.#host.openSession()) {
        return this.#refuse(id, new RpcError(Code.RESOURCE_EXHAUSTED, 'too many open sessions'))
      }
      const call = new ServerCall(
        this,
        id,
        route,
        kind,
        EMPTY_BUFFER,
        metadata,
        timeoutMs,
        handler,
        this.#ext,
      )
      this.#calls.set(id, call)
      if (payload.length > 0) call.deliver(payload)
      this.#host.run(call)
      return
    }
    const call = new ServerCall(this, id, route, kind, payload, metadata, timeoutMs, handler, this.#ext)
    this.#calls.set(id, call)
    this.#host.run(call)
  }

  #refuse(id: FrameId, error: RpcError): void {
    this.frames.sendFrame(Flags.ERROR, id, '', encodeErrorValue(error))
  }

  #cancel(id: FrameId, code: Code): void {
    const call = this.#calls.get(id)
    // Cancelling a call that already finished is normal (the reply crossed the cancel).
    call?.abort(new RpcError(code, 'cancelled by the client'))
  }

  #onControl(frame: Frame): void {
    if (frame.flags !== Flags.CONTROL) throw protocolError('control flag combined with other flags')
    const message = decodeControl(frame)
    if (message === undefined) return // a kind from a newer peer: ignored
    switch (message.kind) {
      case ControlKind.HELLO:
        return this.#onHello(message.capabilities)
      case ControlKind.PING:
        this.frames.sendEncoded(encodeControl(0, { kind: ControlKind.PONG, payload: message.payload }))
        return
      case ControlKind.PONG:
        return
      case ControlKind.CANCEL:
        return this.#cancel(frame.id, message.code)
      case ControlKind.GOAWAY:
        // The client is leaving: nothing to do, it closes when its calls are done.
        return
      case ControlKind.WINDOW_UPDATE:
        this.#calls.get(frame.id)?.grant(message.bytes)
        return
      case ControlKind.HELLO_ACK:
        return this.#onHelloAck()
    }
  }

  #onHello(offer: Capabilities): void {
    if (this.#agreed) throw protocolError('second HELLO on one connection')
    const settings = this.#host.extensionSettings
    this.#agreed = Extensions.negotiate(settings, offer)
    if (offer.maxFrameSize) this.frames.maxOutgoingFrameSize = offer.maxFrameSize
    this.frames.sendEncoded(
      encodeControl(0, { kind: ControlKind.HELLO, capabilities: answer(settings, offer) }),
    )
  }

  /** From here on the client uses what we agreed: every id it opens after this frame. */
  #onHelloAck(): void {
    if (!this.#agreed || this.#ext !== Extensions.NONE) throw protocolError('HELLO_ACK without a HELLO')
    this.#ext = this.#agreed
    const keepalive = this.#host.options.keepalive
    if (keepalive && this.#ext.has('ping')) this.frames.startKeepalive(keepalive.interval, keepalive.timeout)
  }

  #onClose(error: RpcError | undefined): void {
    clearTimeout(this.#idleTimer)
    const reason = new RpcError(Code.UNAVAILABLE, 'connection closed', { cause: error })
    for (const call of [...this.#calls.values()]) call.abort(reason)
    this.#calls.clear()
    this.#host.connectionClosed(this, error)
  }
}

const EMPTY_BUFFER = Buffer.alloc(0)

function protocolError(message: string): RpcError {
  return new RpcError(Code.PROTOCOL_ERROR, message)
}

function describePeer(peer: TransportPeer): PeerInfo {
  return {
    transport: peer.transport,
    address: peer.address,
    port: peer.port,
    authorized: peer.authorized === true,
    certificateSubject: peer.certificateSubject,
  }
}

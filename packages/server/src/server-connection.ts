import {
  callError,
  type ExtensionSettings,
  type Frame,
  type FrameConnection,
  nextConnectionId,
  PeerConnection,
  type PeerInfo,
  type PeerRole,
  type Transport,
  type TransportPeer,
} from '@srpc/core'
import {
  Code,
  ControlKind,
  encodeControl,
  encodeErrorValue,
  Flags,
  type FrameId,
  type Metadata,
  protocolError,
  RpcError,
  splitMetadata,
  splitTimeoutOnly,
  TIMEOUT_KEY,
} from '@srpc/protocol'
import type { WorkerPool } from './concurrency-limiter'
import type { Handler } from './mux'
import type { ResolvedServerOptions } from './options'
import { openedAs } from './route-kind'
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
  openSession(connection: ServerConnection, route: string): boolean
  closeSession(): void
  handlerFailed(error: unknown, call: ServerCall): void
  /** Shed work that no log would show otherwise (calls past maxConcurrentStreams). */
  shed(connection: ServerConnection, route: string, error: RpcError): void
  connectionClosed(connection: ServerConnection, error: RpcError | undefined): void
}

const EMPTY_METADATA: Metadata = Object.freeze(Object.create(null))

/**
 * The server's role on one client connection: it answers HELLO, opens calls from REQUEST and
 * session frames and routes them through its host, drains with GOAWAY, closes when idle and cuts
 * calls at the end of a shutdown. The connection itself (frames, calls by id, negotiation,
 * control frames, keepalive) is core's PeerConnection.
 */
export class ServerConnection implements CallHost, PeerRole<ServerCall> {
  readonly peer: PeerInfo
  readonly connectionId = nextConnectionId()
  readonly streamHighWaterMark: number
  readonly maxBufferedBytes: number
  #conn: PeerConnection<ServerCall>
  /** The connection's frames: replies are written straight to them, as cheaply as before the split. */
  #frames: FrameConnection
  #host: ConnectionHost
  /** Set once a GOAWAY went out: the last id this connection still serves. */
  #goawayLastId: FrameId | undefined
  /**
   * Since when the connection is known to be idle (performance.now()): its opening, then the
   * sweep's time whenever it sees calls in flight or finished since its previous look. Counting
   * finished calls costs the call path one increment where reading the clock cost a clock read
   * and a microtask per stretch of work, and keeps the bound: a connection closes between
   * idleTimeout and one sweep interval after it (the sweep's `now` is at most one interval after
   * the last call, and it closes a connection after a whole idleTimeout of sweeps seeing none).
   */
  #idleSince = performance.now()
  /** Calls that finished on it, and how many had when the sweep last looked. */
  #finished = 0
  #finishedSeen = 0
  /** The server's idle sweep drained it: once is enough. */
  #idleDrained = false

  constructor(transport: Transport, host: ConnectionHost) {
    this.#host = host
    const options = host.options
    this.streamHighWaterMark = options.streamHighWaterMark
    this.maxBufferedBytes = options.maxBufferedBytes
    this.peer = describePeer(transport.peer)
    this.#conn = new PeerConnection(transport, this, {
      side: 'server',
      settings: host.extensionSettings,
      streamHighWaterMark: options.streamHighWaterMark,
      maxBufferedBytes: options.maxBufferedBytes,
      keepalive: options.keepalive,
      maxFrameSize: options.maxFrameSize,
      maxTypeLength: options.maxRouteLength,
      pauseReadingWhileBackedUp: true,
    })
    this.#frames = this.#conn.frames
  }

  get frames(): FrameConnection {
    return this.#frames
  }

  /**
   * Drains a connection that carried no call for `idleTimeout` ms. The server's IdleSweep calls it
   * for every connection from one timer: no timer per connection, no per-call work.
   */
  closeIfIdle(now: number, idleTimeout: number): void {
    if (this.#idleDrained) return
    if (this.#conn.inFlight > 0 || this.#finished !== this.#finishedSeen) {
      this.#finishedSeen = this.#finished
      this.#idleSince = now
      return
    }
    if (now - this.#idleSince < idleTimeout) return
    this.#idleDrained = true
    this.drain()
  }

  get shutdownReason(): RpcError | undefined {
    return this.#host.shutdownReason
  }

  get activeCalls(): number {
    return this.#conn.inFlight
  }

  get extended(): boolean {
    return this.#conn.extended
  }

  // --- CallHost: the connection's CallHost, and what only server calls ask ---
  send(flags: number, id: FrameId, value: Uint8Array, prefix?: Uint8Array): boolean {
    return this.#frames.sendFrame(flags, id, '', value, prefix)
  }

  get writable(): boolean {
    return this.#conn.writable
  }

  whenWritable(): Promise<void> {
    return this.#conn.whenWritable()
  }

  grant(id: FrameId, bytes: number): void {
    this.#conn.grant(id, bytes)
  }

  cancel(id: FrameId, error: RpcError): void {
    this.#conn.cancel(id, error)
  }

  forget(id: FrameId): void {
    this.#conn.forget(id)
  }

  pauseReading(): void {
    this.#conn.pauseReading()
  }

  resumeReading(): void {
    this.#conn.resumeReading()
  }

  callFinished(call: ServerCall): void {
    if (this.#conn.calls.get(call.id) === call) this.#conn.forget(call.id)
    if (call.kind === 'session') this.#host.closeSession()
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
    if (this.#conn.agreed?.has('goaway')) {
      if (this.#goawayLastId !== undefined) return
      this.#goawayLastId = this.#conn.highestId
      this.#frames.sendEncoded(
        encodeControl(0, {
          kind: ControlKind.GOAWAY,
          lastId: this.#goawayLastId,
          code: Code.UNAVAILABLE,
          message: 'server shutting down',
        }),
      )
      return
    }
    this.#conn.close()
  }

  /** The server began a graceful shutdown: drain, and abort the shutdownSignal of every call that read it. */
  shutdown(reason: RpcError): void {
    this.drain()
    for (const call of this.#conn.calls.values()) call.shuttingDown(reason)
  }

  /**
   * The shutdown's grace period is over: every call still open fails with `reason` (an ERROR
   * frame, so the client learns why instead of seeing the connection drop), then the connection
   * closes after those frames are flushed.
   */
  cut(reason: RpcError): void {
    for (const call of [...this.#conn.calls.values()]) {
      call.fail(reason)
      call.abort(reason)
    }
    this.#frames.close()
  }

  /** Hard stop: every call is aborted and the transport destroyed. */
  destroy(reason: RpcError): void {
    this.#conn.destroy(reason)
  }

  // --- PeerRole: what the client sends ---
  onFrame(frame: Frame, call: ServerCall | undefined): void {
    const flags = frame.flags
    if (flags & Flags.RESPONSE) throw protocolError(`unexpected flags 0x${flags.toString(16)} from a client`)
    if (flags & Flags.METADATA && !this.#conn.extensions.has('metadata')) {
      throw protocolError('metadata flag used but not negotiated')
    }
    const id = frame.id
    if (flags & Flags.REQUEST) {
      if (flags & (Flags.STREAM_END | Flags.ERROR))
        throw protocolError(`invalid request flags 0x${flags.toString(16)}`)
      this.#conn.noteId(id)
      return this.#open(frame, 'request', call)
    }
    if (flags & Flags.ERROR) {
      this.#conn.noteId(id)
      if (call !== undefined) this.onCancel(call, Code.CANCELLED)
      return
    }
    if (flags & (Flags.STREAM | Flags.STREAM_END)) {
      if (call === undefined) {
        if (frame.type.length > 0 && !(flags & Flags.STREAM_END)) {
          this.#conn.noteId(id)
          return this.#open(frame, 'session', undefined)
        }
        // A late message for a session that already finished is dropped; an id never opened is a lie.
        if (frame.type.length === 0) return this.#conn.orphan(id, 'stream frame for unknown session')
        throw protocolError(`stream frame for unknown session ${id}`)
      }
      if (call.kind !== 'session') throw protocolError(`stream frame for request ${id}`)
      if (flags & Flags.METADATA)
        throw protocolError('metadata on a session message (only the open may carry it)')
      if (frame.value.length > 0 || !(flags & Flags.STREAM_END)) {
        let message: Buffer
        try {
          message = this.#conn.decodePayload(flags, frame.value)
        } catch (err) {
          const error = callError(err)
          call.fail(error)
          call.abort(error)
          return
        }
        call.deliver(message)
      }
      if (flags & Flags.STREAM_END) call.endInput()
      return
    }
    throw protocolError(`frame with flags 0x${flags.toString(16)} has no meaning`)
  }

  onCancel(call: ServerCall, code: Code): void {
    call.abort(new RpcError(code, 'cancelled by the client'))
  }

  /** The client is leaving: nothing to do, it closes when its calls are done. */
  onGoaway(): void {}

  onReleased(): void {
    this.#finished++
  }

  failCall(call: ServerCall, error: RpcError): void {
    call.abort(error)
  }

  lostError(error: RpcError | undefined): RpcError {
    return new RpcError(Code.UNAVAILABLE, 'connection closed', { cause: error })
  }

  onClosed(error: RpcError | undefined): void {
    this.#host.connectionClosed(this, error)
  }

  #open(frame: Frame, kind: CallKind, inFlight: ServerCall | undefined): void {
    const { id, type: route } = frame
    if (inFlight !== undefined) throw protocolError(`id ${id} is already in use by a call in flight`)
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
        return this.#refuse(id, callError(err))
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
      payload = this.#conn.decodePayload(frame.flags, payload)
    } catch (err) {
      return this.#refuse(id, callError(err))
    }
    // After a GOAWAY, ids past its last id are never served (the client resends them elsewhere).
    if (this.#host.draining || (this.#goawayLastId !== undefined && id > this.#goawayLastId)) {
      return this.#refuse(id, new RpcError(Code.UNAVAILABLE, 'server is shutting down', { refused: true }))
    }
    const maxConcurrentStreams = this.#host.options.maxConcurrentStreams
    if (this.#conn.inFlight >= maxConcurrentStreams) {
      const error = new RpcError(
        Code.RESOURCE_EXHAUSTED,
        `more than ${maxConcurrentStreams} concurrent calls on one connection`,
        { refused: true },
      )
      this.#host.shed(this, route, error)
      return this.#refuse(id, error)
    }
    const handler = this.#host.lookup(route)
    const ext = this.#conn.extensions
    const opened = openedAs(kind, (frame.flags & Flags.STREAM) !== 0, this.#conn.agreed !== undefined)
    if (kind === 'session') {
      if (!this.#host.openSession(this, route)) {
        return this.#refuse(id, new RpcError(Code.RESOURCE_EXHAUSTED, 'too many open sessions'))
      }
      const call = new ServerCall(this, id, route, kind, EMPTY_BUFFER, metadata, timeoutMs, handler, ext)
      call.openedAs = opened
      this.#conn.register(call)
      if (payload.length > 0) call.deliver(payload)
      this.#host.run(call)
      return
    }
    const call = new ServerCall(this, id, route, kind, payload, metadata, timeoutMs, handler, ext)
    call.openedAs = opened
    this.#conn.register(call)
    this.#host.run(call)
  }

  #refuse(id: FrameId, error: RpcError): void {
    this.#frames.sendFrame(Flags.ERROR, id, '', encodeErrorValue(error))
  }
}

const EMPTY_BUFFER = Buffer.alloc(0)

function describePeer(peer: TransportPeer): PeerInfo {
  return {
    transport: peer.transport,
    address: peer.address,
    port: peer.port,
    authorized: peer.authorized === true,
    certificateSubject: peer.certificateSubject,
    ...(peer.headers === undefined ? {} : { headers: peer.headers }),
  }
}

import type { DeadlineScheduler } from '@srpc/core/portable'
import {
  type Capabilities,
  Code,
  ControlKind,
  decodeControl,
  decodeErrorValue,
  EXTENSION_VERSION,
  encodeControl,
  encodeErrorValue,
  encodeFrame,
  encodeMetadata,
  Flags,
  type Frame,
  FrameDecoder,
  type FrameId,
  HEADER_SIZE,
  type Metadata,
  normalizeId,
  protocolError,
  RpcError,
  TIMEOUT_KEY,
  typeByteLength,
  writeHeader,
} from '@srpc/protocol'
import type { ResolvedWebClientOptions } from './options'
import type { WebSocketLink } from './websocket-link'

/**
 * The features this client offers. No `compression`: a browser has no synchronous deflate.
 * `details` (error details) and `response-metadata` are the names @srpc/contract's extensions
 * use; a server that does not know them leaves them out of its answer and nothing changes.
 */
const FEATURES = ['cancel', 'ping', 'goaway', 'metadata', 'flow', 'details', 'response-metadata']
/** Frames written in one event-loop turn leave as one binary message, up to this many bytes. */
const MAX_BATCH = 64 * 1024
/** Calls in flight on one connection before the server announced its limit: the srpc server's default. */
const DEFAULT_MAX_CONCURRENT_STREAMS = 1024
/** The frame limit of a server that announced none (docs/protocol.md, section 8). */
const V1_MAX_FRAME_SIZE = 16 * 1024 * 1024

/** A call as its connection sees it: frames in, and a way to fail it when the connection goes. */
export interface ConnectionCall {
  readonly id: FrameId
  onFrame(frame: Frame): void
  /** The connection failed or closed under the call. */
  fail(error: RpcError): void
  /** The server granted `bytes` more credit for our half (WINDOW_UPDATE). */
  grant(bytes: number): void
}

/** What the connection reports to its client. */
export interface ConnectionEvents {
  onGoaway(connection: WebConnection): void
  onClose(connection: WebConnection, error: RpcError | undefined): void
}

export type ConnectionState = 'open' | 'draining' | 'closed'

/**
 * One srpc connection over one WebSocket, on @srpc/protocol alone: HELLO negotiation (calls
 * before the server's answer are plain v1), ids, frame batching, PING answers and the keepalive
 * watchdog, GOAWAY, CANCEL, and routing of every frame to its call. Flow control lives in the
 * calls; this only knows whether `flow` was agreed.
 */
export class WebConnection {
  readonly options: ResolvedWebClientOptions
  #link: WebSocketLink
  #events: ConnectionEvents
  #decoder: FrameDecoder
  #calls = new Map<FrameId, ConnectionCall>()
  #nextId = 1
  #state: ConnectionState = 'open'
  #error: RpcError | undefined
  /** Set once the server's HELLO arrived and our HELLO_ACK left: later ids use the extensions. */
  #features: Set<string> | undefined
  #peer: Capabilities | undefined
  #helloWaiters: Array<() => void> = []
  #goawayLastId: FrameId | undefined
  /** Frames written in this turn, encoded back to back; sent as one message (a copy) at the flush. */
  #batch = new Uint8Array(MAX_BATCH)
  #batchBytes = 0
  #flushScheduled = false
  #heard = false
  #keepaliveTimer: ReturnType<typeof setTimeout> | undefined
  #pongTimer: ReturnType<typeof setTimeout> | undefined

  /** The client's deadlines (one timer for all its calls). */
  readonly deadlines: DeadlineScheduler

  constructor(
    link: WebSocketLink,
    options: ResolvedWebClientOptions,
    events: ConnectionEvents,
    deadlines: DeadlineScheduler,
  ) {
    this.#link = link
    this.options = options
    this.deadlines = deadlines
    this.#events = events
    this.#decoder = new FrameDecoder({
      maxFrameSize: options.maxFrameSize,
      maxTypeLength: 0,
      peerName: `the server at ${link.url}`,
    })
    link.start({ onData: (bytes) => this.#onData(bytes), onClose: (error) => this.#onClose(error) })
    const hello: Capabilities = {
      version: EXTENSION_VERSION,
      features: FEATURES,
      initialWindow: options.initialWindow,
      maxFrameSize: options.maxFrameSize,
    }
    this.write(encodeControl(0, { kind: ControlKind.HELLO, capabilities: hello }))
  }

  get state(): ConnectionState {
    return this.#state
  }

  /** Open and not draining: new calls may start here. */
  get usable(): boolean {
    return this.#state === 'open'
  }

  get inFlight(): number {
    return this.#calls.size
  }

  /** The server answered our HELLO: calls opened from now on use the agreed extensions. */
  get extended(): boolean {
    return this.#features !== undefined
  }

  has(feature: string): boolean {
    return this.#features?.has(feature) === true
  }

  /** The server's receive window per stream direction (flow), from its HELLO. */
  get peerWindow(): number {
    return this.#peer?.initialWindow ?? 0
  }

  /** The server's limit on calls in flight; srpc's default (1024) until it says, or for a v1 server. */
  get maxConcurrentStreams(): number {
    return this.#peer?.maxConcurrentStreams ?? DEFAULT_MAX_CONCURRENT_STREAMS
  }

  get backedUp(): boolean {
    return this.#link.bufferedAmount > this.options.highWaterMark
  }

  /**
   * Resolves once the server's HELLO is in (at once if it already is), or after `timeout` ms
   * without it: a plain v1 server never answers, and its calls go on without extensions.
   */
  negotiated(timeout: number): Promise<void> {
    if (this.#features !== undefined || this.#state === 'closed') return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeout)
      function done() {
        clearTimeout(timer)
        resolve()
      }
      this.#helloWaiters.push(done)
    })
  }

  /** The id the next call opened on this connection takes (ids are never reused). */
  nextId(): number {
    return this.#nextId++
  }

  /** Routes the frames of `call`'s id to it until `forget`. */
  register(call: ConnectionCall): void {
    this.#calls.set(call.id, call)
  }

  /** The call's frames stop here: it ended, or gave up (CANCEL was sent if it could be). */
  forget(id: FrameId): void {
    this.#calls.delete(id)
    if (this.#state === 'draining' && this.#calls.size === 0) this.close()
  }

  /**
   * Writes the opening frame of a call: the route as type, metadata (with the deadline) when the
   * connection agreed to it. RESOURCE_EXHAUSTED when it would pass the server's frame limit;
   * FAILED_PRECONDITION for metadata a plain v1 server could not read.
   */
  open(
    flags: number,
    id: FrameId,
    route: string,
    payload: Uint8Array,
    metadata: Metadata | undefined,
    timeout: number | undefined,
  ): void {
    if (this.has('metadata') && (metadata !== undefined || timeout !== undefined)) {
      const entries: Metadata = { ...metadata }
      if (timeout !== undefined) entries[TIMEOUT_KEY] = String(Math.ceil(timeout))
      this.writeFrame(flags | Flags.METADATA, id, route, payload, encodeMetadata(entries))
      return
    }
    if (metadata !== undefined && Object.keys(metadata).length > 0) {
      throw new RpcError(
        Code.FAILED_PRECONDITION,
        'the server did not agree to metadata (a plain v1 server?)',
      )
    }
    this.writeFrame(flags, id, route, payload)
  }

  /** Throws RESOURCE_EXHAUSTED for a frame of `size` bytes the server would refuse. */
  #checkSize(size: number): void {
    const limit = this.#peer?.maxFrameSize ?? V1_MAX_FRAME_SIZE
    if (size > limit) {
      throw new RpcError(
        Code.RESOURCE_EXHAUSTED,
        `frame of ${size} bytes is larger than the server's limit of ${limit}`,
      )
    }
  }

  /** Encodes a frame for later (a message waiting for credit), refusing one the server would not take. */
  frame(flags: number, id: FrameId, type: string, value: Uint8Array): Uint8Array {
    this.#checkSize(HEADER_SIZE + typeByteLength(type) + value.length)
    return encodeFrame(flags, id, type, value)
  }

  /** Encodes a frame straight into this turn's batch (`prefix`, if any, goes before the value). */
  writeFrame(flags: number, id: FrameId, type: string, value: Uint8Array, prefix?: Uint8Array): void {
    const typeLength = typeByteLength(type)
    const valueLength = (prefix?.length ?? 0) + value.length
    const size = HEADER_SIZE + typeLength + valueLength
    this.#checkSize(size)
    if (this.#state === 'closed') return
    if (size > this.#batchLimit()) {
      const frame = new Uint8Array(size)
      const at = writeHeader(frame, 0, flags, id, type, typeLength, valueLength)
      if (prefix) frame.set(prefix, at)
      frame.set(value, at + (prefix?.length ?? 0))
      this.write(frame)
      return
    }
    const offset = this.#reserve(size)
    const batch = this.#batch
    // writeHeader returns the bytes it wrote, not a position.
    const at = offset + writeHeader(batch, offset, flags, id, type, typeLength, valueLength)
    if (prefix) batch.set(prefix, at)
    batch.set(value, at + (prefix?.length ?? 0))
  }

  /** Queues an encoded frame; what is queued in one turn leaves as one message. */
  write(frame: Uint8Array): void {
    if (this.#state === 'closed') return
    if (frame.length > this.#batchLimit()) {
      // Larger than a batch: alone, after what is queued, in order.
      this.#flush()
      this.#link.send(frame)
      return
    }
    this.#batch.set(frame, this.#reserve(frame.length))
  }

  #batchLimit(): number {
    return Math.min(MAX_BATCH, this.#peer?.maxFrameSize ?? MAX_BATCH)
  }

  /** Room for `size` more bytes in the batch (flushing it first when full); returns where they go. */
  #reserve(size: number): number {
    if (this.#batchBytes + size > this.#batchLimit()) this.#flush()
    const offset = this.#batchBytes
    this.#batchBytes += size
    if (!this.#flushScheduled) {
      this.#flushScheduled = true
      queueMicrotask(this.#flush)
    }
    return offset
  }

  /** Tells the server we gave up on a call, when it agreed to CANCEL (else it only forgets it). */
  cancel(id: FrameId, code: Code, extended: boolean): void {
    if (extended && this.has('cancel')) this.write(encodeControl(id, { kind: ControlKind.CANCEL, code }))
    this.forget(id)
  }

  /** Graceful: no new calls; closes the WebSocket once the calls in flight are done. */
  drain(): void {
    if (this.#state !== 'open') return
    this.#state = 'draining'
    if (this.#calls.size === 0) this.close()
  }

  /** Closes the WebSocket after what is queued; calls still open fail with UNAVAILABLE. */
  close(error?: RpcError): void {
    if (this.#state === 'closed') return
    this.#flush()
    this.#link.close(error)
  }

  #flush = (): void => {
    this.#flushScheduled = false
    const bytes = this.#batchBytes
    if (bytes === 0) return
    this.#batchBytes = 0
    // A copy: the batch buffer is reused, and a WebSocket may hold what it was given.
    this.#link.send(this.#batch.slice(0, bytes))
  }

  #onData(bytes: Uint8Array): void {
    this.#heard = true
    try {
      this.#decoder.push(bytes, this.#onFrame)
    } catch (err) {
      const error = RpcError.from(err, Code.INTERNAL)
      // Like the Node client: tell the server why, then close.
      if (error.code === Code.PROTOCOL_ERROR)
        this.write(encodeFrame(Flags.ERROR, 0, '', encodeErrorValue(error)))
      this.close(error)
    }
  }

  #onFrame = (frame: Frame): void => {
    const { flags } = frame
    if (flags & Flags.CONTROL) {
      if (flags !== Flags.CONTROL) throw protocolError('CONTROL combined with other flags')
      this.#onControl(frame)
      return
    }
    // METADATA (response metadata) is checked by the call: only on its last frame, only where agreed.
    if (flags & (Flags.COMPRESSED | Flags.REQUEST)) {
      throw protocolError(`the server sent flags 0x${flags.toString(16)}, which it may not`)
    }
    const id = normalizeId(frame.id)
    if (id === 0) {
      if (flags & Flags.ERROR) {
        this.close(decodeErrorValue(frame.value))
        return
      }
      throw protocolError('a data frame on id 0')
    }
    const call = this.#calls.get(id)
    if (call !== undefined) {
      call.onFrame(frame)
      return
    }
    // An id that ended (we cancelled it, or it failed locally) may still get late frames.
    if (typeof id === 'number' && id < this.#nextId) return
    if (flags & Flags.ERROR) return
    throw protocolError(`a frame for id ${String(id)}, which was never opened`)
  }

  #onControl(frame: Frame): void {
    const message = decodeControl(frame)
    if (message === undefined) return
    switch (message.kind) {
      case ControlKind.HELLO:
        if (this.#features !== undefined) throw protocolError('a second HELLO from the server')
        this.#peer = message.capabilities
        this.#features = new Set(message.capabilities.features.filter((f) => FEATURES.includes(f)))
        // `flow` holds only with a window to count against.
        if (message.capabilities.initialWindow === undefined) this.#features.delete('flow')
        this.write(encodeControl(0, { kind: ControlKind.HELLO_ACK }))
        if (this.has('ping')) this.#startKeepalive()
        for (const done of this.#helloWaiters.splice(0)) done()
        return
      case ControlKind.PING:
        this.write(encodeControl(0, { kind: ControlKind.PONG, payload: message.payload }))
        return
      case ControlKind.PONG:
        return
      case ControlKind.GOAWAY:
        this.#goawayLastId = message.lastId
        if (this.#state === 'open') {
          this.drain()
          this.#events.onGoaway(this)
        }
        return
      case ControlKind.WINDOW_UPDATE:
        this.#calls.get(normalizeId(frame.id))?.grant(message.bytes)
        return
      default:
        // HELLO_ACK and CANCEL come only from clients: ignored, as docs/protocol.md says.
        return
    }
  }

  /** Sender and watchdog in one timer: every interval, ping if nothing was heard; close if no answer. */
  #startKeepalive(): void {
    const keepalive = this.options.keepalive
    if (keepalive === false) return
    const check = () => {
      if (this.#state === 'closed') return
      if (this.#heard) {
        this.#heard = false
        this.#keepaliveTimer = setTimeout(check, keepalive.interval)
        return
      }
      const payload = new Uint8Array(8)
      crypto.getRandomValues(payload)
      this.write(encodeControl(0, { kind: ControlKind.PING, payload }))
      this.#pongTimer = setTimeout(() => {
        if (this.#heard) return check()
        this.close(
          new RpcError(Code.UNAVAILABLE, `no answer to a keepalive ping within ${keepalive.timeout} ms`),
        )
      }, keepalive.timeout)
    }
    this.#heard = false
    this.#keepaliveTimer = setTimeout(check, keepalive.interval)
  }

  #onClose(error: RpcError | undefined): void {
    if (this.#state === 'closed') return
    this.#state = 'closed'
    this.#error = error
    clearTimeout(this.#keepaliveTimer)
    clearTimeout(this.#pongTimer)
    this.#batchBytes = 0
    for (const done of this.#helloWaiters.splice(0)) done()
    const lastId = this.#goawayLastId
    const calls = [...this.#calls.values()]
    this.#calls.clear()
    for (const call of calls) {
      // Past a GOAWAY's last id, the server never processed it: safe to send again.
      const refused = lastId !== undefined && call.id > lastId
      call.fail(
        new RpcError(Code.UNAVAILABLE, error ? `connection lost: ${error.message}` : 'connection closed', {
          cause: error,
          refused,
        }),
      )
    }
    this.#events.onClose(this, error)
  }

  get error(): RpcError | undefined {
    return this.#error
  }
}

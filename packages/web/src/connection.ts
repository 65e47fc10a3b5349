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
} from '@srpc/protocol'
import type { ResolvedWebClientOptions } from './options'
import type { WebSocketLink } from './websocket-link'

/** The features this client offers. No `compression`: a browser has no synchronous deflate. */
const FEATURES = ['cancel', 'ping', 'goaway', 'metadata', 'flow']
/** Frames written in one event-loop turn leave as one binary message, up to this many bytes. */
const MAX_BATCH = 64 * 1024
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
  #batch: Uint8Array[] = []
  #batchBytes = 0
  #flushScheduled = false
  #heard = false
  #keepaliveTimer: ReturnType<typeof setTimeout> | undefined
  #pongTimer: ReturnType<typeof setTimeout> | undefined

  constructor(link: WebSocketLink, options: ResolvedWebClientOptions, events: ConnectionEvents) {
    this.#link = link
    this.options = options
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

  get maxConcurrentStreams(): number {
    return this.#peer?.maxConcurrentStreams ?? Number.POSITIVE_INFINITY
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

  /** Takes the next id for `call`; the caller then sends its opening frame with `open()`. */
  register(call: (id: FrameId) => ConnectionCall): ConnectionCall {
    const created = call(this.#nextId++)
    this.#calls.set(created.id, created)
    return created
  }

  /** The call's frames stop here: it ended, or gave up (CANCEL was sent if it could be). */
  forget(id: FrameId): void {
    this.#calls.delete(id)
    if (this.#state === 'draining' && this.#calls.size === 0) this.close()
  }

  /**
   * Encodes the opening frame of a call: the route as type, metadata (with the deadline) when
   * the connection agreed to it. RESOURCE_EXHAUSTED when it would pass the server's frame limit.
   */
  openingFrame(
    flags: number,
    id: FrameId,
    route: string,
    payload: Uint8Array,
    metadata: Metadata | undefined,
    timeout: number | undefined,
  ): Uint8Array {
    let value = payload
    if (this.has('metadata') && (metadata !== undefined || timeout !== undefined)) {
      const entries: Metadata = { ...metadata }
      if (timeout !== undefined) entries[TIMEOUT_KEY] = String(Math.ceil(timeout))
      const block = encodeMetadata(entries)
      value = new Uint8Array(block.length + payload.length)
      value.set(block)
      value.set(payload, block.length)
      flags |= Flags.METADATA
    } else if (metadata !== undefined && Object.keys(metadata).length > 0) {
      throw new RpcError(
        Code.FAILED_PRECONDITION,
        'the server did not agree to metadata (a plain v1 server?)',
      )
    }
    return this.frame(flags, id, route, value)
  }

  /** Encodes a frame, refusing one the server would take for a protocol violation. */
  frame(flags: number, id: FrameId, type: string, value: Uint8Array): Uint8Array {
    const size = HEADER_SIZE + typeByteLength(type) + value.length
    const limit = this.#peer?.maxFrameSize ?? V1_MAX_FRAME_SIZE
    if (size > limit) {
      throw new RpcError(
        Code.RESOURCE_EXHAUSTED,
        `frame of ${size} bytes is larger than the server's limit of ${limit}`,
      )
    }
    return encodeFrame(flags, id, type, value)
  }

  /** Queues an encoded frame; what is queued in one turn leaves as one message. */
  write(frame: Uint8Array): void {
    if (this.#state === 'closed') return
    const limit = Math.min(MAX_BATCH, this.#peer?.maxFrameSize ?? MAX_BATCH)
    if (this.#batchBytes + frame.length > limit) this.#flush()
    this.#batch.push(frame)
    this.#batchBytes += frame.length
    if (!this.#flushScheduled) {
      this.#flushScheduled = true
      queueMicrotask(this.#flush)
    }
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
    const batch = this.#batch
    if (batch.length === 0) return
    this.#batch = []
    const bytes = this.#batchBytes
    this.#batchBytes = 0
    if (batch.length === 1) {
      this.#link.send(batch[0])
      return
    }
    const message = new Uint8Array(bytes)
    let offset = 0
    for (const frame of batch) {
      message.set(frame, offset)
      offset += frame.length
    }
    this.#link.send(message)
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
    if (flags & (Flags.METADATA | Flags.COMPRESSED | Flags.REQUEST)) {
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
    this.#batch = []
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

import { randomBytes } from 'node:crypto'
import {
  type Capabilities,
  Code,
  ControlKind,
  DEFAULT_MAX_FRAME_SIZE,
  decodeControl,
  encodeControl,
  Flags,
  type FrameId,
  formatMs,
  protocolError,
  RpcError,
} from '@srpc/protocol'
import { asBuffer, type Frame } from './buffer'
import type { CallHost, PeerCall } from './call-host'
import { CallTable } from './call-table'
import { ASYNC_INFLATE_MIN, decompressAsync } from './compression'
import { type Deadline, deadlines } from './deadline-scheduler'
import { agreementFor, announce, answer, type ExtensionSettings, Extensions } from './extensions'
import { FrameConnection, type FrameConnectionOptions } from './frame-connection'
import type { Transport } from './transport'

/** The client speaks first (HELLO, then HELLO_ACK on the answer); the server answers. */
export type PeerSide = 'client' | 'server'

/** 'closing': close() was called and waits for the calls in flight; 'closed': the transport is gone or going. */
export type PeerConnectionState = 'open' | 'closing' | 'closed'

/** What one end does that the other does not: frames that open or answer calls, GOAWAY, and how calls end. */
export interface PeerRole<C extends PeerCall> {
  /**
   * A frame that is not a control frame; `call` is the call in flight on its id, if any. For an id
   * without one, `PeerConnection.orphan()` tells a late frame from a lie. Throw to fail the connection.
   * The frame object is the decoder's, refilled for the next frame: keep its value, never the object.
   */
  onFrame(frame: Frame, call: C | undefined): void
  /** The peer sent CANCEL for a call in flight. */
  onCancel(call: C, code: Code): void
  /** The peer said GOAWAY: it still serves ids up to `lastId`. */
  onGoaway(lastId: FrameId): void
  /** A call left (forget or cancel); `inFlight` are still open. Not called once close() finishes the drain. */
  onReleased(inFlight: number): void
  /** The connection failed or was destroyed: end `call` now with `error`. */
  failCall(call: C, error: RpcError): void
  /** What the calls still in flight end with when the connection closes because of `error`. */
  lostError(error: RpcError | undefined): RpcError
  /** Once, after the connection closed and every call in flight was ended. */
  onClosed(error: RpcError | undefined): void
}

export interface PeerConnectionOptions extends FrameConnectionOptions {
  side: PeerSide
  /** What this end offers (client) or accepts (server) in the HELLO exchange. */
  settings: ExtensionSettings
  streamHighWaterMark: number
  maxBufferedBytes: number
  /** Started once the extensions are in force, if the peer answers pings. */
  keepalive?: { interval: number; timeout: number } | false
  /** Client: after this long without the server's HELLO it is taken as a plain v1 server, ms. */
  helloTimeout?: number
}

const RESOLVED = Promise.resolve()

/**
 * One srpc connection, either end: the frames over a transport, the calls in flight by id, the
 * HELLO negotiation and the extensions it agreed, the control frames (PING, PONG, CANCEL, GOAWAY,
 * WINDOW_UPDATE), keepalive, and the two lifecycle verbs. What differs between client and server
 * is its role; calls use it as their CallHost.
 */
export class PeerConnection<C extends PeerCall = PeerCall> implements CallHost {
  readonly frames: FrameConnection
  readonly side: PeerSide
  readonly streamHighWaterMark: number
  readonly maxBufferedBytes: number
  /** Largest frame we accept, and so the largest payload a compressed one may inflate to. */
  readonly maxFrameSize: number
  #role: PeerRole<C>
  #settings: ExtensionSettings
  #keepalive: { interval: number; timeout: number } | false
  #calls = new CallTable<C>()
  /** Highest id opened: a frame for a higher id without a call names an id never opened. */
  #highestId: FrameId = 0
  #state: PeerConnectionState = 'open'
  /** Agreed at HELLO; in force from then on (client) or from the client's HELLO_ACK (server). */
  #agreed: Extensions | undefined
  #ext: Extensions = Extensions.NONE
  #negotiated: { promise: Promise<void>; resolve: () => void } | undefined
  #negotiationOver = false
  #helloTimer: Deadline | undefined
  /** Pings waiting for their pong, by payload; created by the first ping (most connections never send one). */
  #pings: Map<string, () => void> | undefined
  /**
   * While a large COMPRESSED frame inflates on zlib's pool: the frames that arrived after it,
   * delivered in order once it is (reading is paused meanwhile, so this holds at most what was
   * already read). Undefined when nothing inflates.
   */
  #held: Frame[] | undefined
  /** The payload inflated ahead for the frame being delivered: decodePayload hands it out once. */
  #inflated: { value: Buffer; result: Buffer | undefined; error: RpcError | undefined } | undefined
  /**
   * Ids of calls registered whose opening frame waits for its payload to deflate off the event
   * loop (see deferOpening); created by the first such call, most connections never have one.
   */
  #deferred: Set<FrameId> | undefined

  constructor(transport: Transport, role: PeerRole<C>, options: PeerConnectionOptions) {
    this.#role = role
    this.side = options.side
    this.#settings = options.settings
    this.#keepalive = options.keepalive ?? false
    this.streamHighWaterMark = options.streamHighWaterMark
    this.maxBufferedBytes = options.maxBufferedBytes
    this.maxFrameSize = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE
    this.frames = new FrameConnection(
      transport,
      { onFrame: (frame) => this.#onFrame(frame), onClose: (error) => this.#onClose(error) },
      // Every frame is handled before the next is decoded: one frame object serves them all.
      { ...options, reuseFrame: true },
    )
    if (options.side === 'client') {
      // A plain v1 server never answers: after helloTimeout we stop waiting and speak v1.
      if (options.helloTimeout !== undefined) {
        this.#helloTimer = deadlines.schedule(options.helloTimeout, () => this.#negotiationDone())
      }
      this.frames.sendEncoded(
        encodeControl(0, { kind: ControlKind.HELLO, capabilities: announce(options.settings) }),
      )
    }
  }

  get state(): PeerConnectionState {
    return this.#state
  }

  /** Extensions in force: NONE until negotiated (and for good with a plain v1 peer). */
  get extensions(): Extensions {
    return this.#ext
  }

  /** The peer spoke srpc: a HELLO was exchanged (on the server, possibly not yet confirmed). */
  get extended(): boolean {
    return this.#agreed !== undefined
  }

  /** What the HELLO exchange agreed, before it is in force; undefined with a plain v1 peer. */
  get agreed(): Extensions | undefined {
    return this.#agreed
  }

  /** Resolves once the extensions are in force, the client's helloTimeout passed, or the connection closed. */
  get negotiated(): Promise<void> {
    if (this.#negotiationOver) return RESOLVED
    if (this.#negotiated === undefined) {
      let resolve!: () => void
      const promise = new Promise<void>((res) => {
        resolve = res
      })
      this.#negotiated = { promise, resolve }
    }
    return this.#negotiated.promise
  }

  get inFlight(): number {
    return this.#calls.size
  }

  get highestId(): FrameId {
    return this.#highestId
  }

  /** The calls in flight, by id (read only: register, forget and cancel change it). */
  get calls(): ReadonlyMap<FrameId, C> {
    return this.#calls
  }

  /** Starts routing frames for `call.id` to the call. */
  register(call: C): void {
    this.#calls.set(call.id, call)
    if (call.id > this.#highestId) this.#highestId = call.id
  }

  /** Removes a call whose open never went out: nothing was released, so nobody is told. */
  unregister(id: FrameId): void {
    this.#calls.delete(id)
  }

  /**
   * The registered call `id` opens later (its payload deflates off the event loop): until
   * `takeDeferred(id)`, the peer has not heard of it, so cancelling it sends no CANCEL.
   */
  deferOpening(id: FrameId): void {
    this.#deferred ??= new Set()
    this.#deferred.add(id)
  }

  /**
   * The deferred opening of `id` may go now: true while its call is still in flight; false when
   * it ended meanwhile (cancelled, deadline, failed with the connection), and then nothing of it
   * may be sent. Either way `id` is no longer deferred.
   */
  takeDeferred(id: FrameId): boolean {
    const deferred = this.#deferred?.delete(id) === true
    return deferred && this.#calls.has(id)
  }

  /** The opening of `id` is deferred and has not gone out: the peer never saw the call. */
  isDeferred(id: FrameId): boolean {
    return this.#deferred?.has(id) === true
  }

  /** The peer named `id` in a frame that opens (or would open) a call, served or refused. */
  noteId(id: FrameId): void {
    if (id > this.#highestId) this.#highestId = id
  }

  /**
   * A frame for `id`, which has no call in flight: dropped if the id was opened before (a late
   * frame for a call that finished, timed out or was cancelled); PROTOCOL_ERROR if it never was.
   */
  orphan(id: FrameId, what: string): void {
    if (id <= this.#highestId) return
    throw protocolError(`${what} ${id}, an id never opened`)
  }

  /** A payload as the extensions in force encode it (compressed or not), decoded. Throws RpcError. */
  decodePayload(flags: number, value: Buffer): Buffer {
    const ahead = this.#inflated
    if (ahead !== undefined && sameBytes(ahead.value, value)) {
      this.#inflated = undefined
      if (ahead.error !== undefined) throw ahead.error
      return ahead.result!
    }
    return this.#ext.decodePayload(flags, value, this.maxFrameSize)
  }

  // --- CallHost ---
  send(flags: number, id: FrameId, value: Uint8Array, prefix?: Uint8Array): boolean {
    return this.frames.sendFrame(flags, id, '', value, prefix)
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
    // A call whose opening frame never went out: the peer has nothing to stop.
    if (this.#deferred?.delete(id) === true) return this.#released()
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

  /** Round trip of a PING, in ms. UNIMPLEMENTED for a peer that did not negotiate pings. */
  async ping(timeoutMs: number): Promise<number> {
    await this.negotiated
    if (!this.#ext.has('ping'))
      throw new RpcError(Code.UNIMPLEMENTED, 'peer does not answer pings (plain v1)')
    const payload = randomBytes(8)
    const key = payload.toString('hex')
    const started = performance.now()
    return new Promise<number>((resolve, reject) => {
      const entry = deadlines.schedule(timeoutMs, () => {
        this.#pings?.delete(key)
        reject(new RpcError(Code.DEADLINE_EXCEEDED, `no pong within ${formatMs(timeoutMs)}`))
      })
      this.#pings ??= new Map()
      this.#pings.set(key, () => {
        deadlines.cancel(entry)
        resolve(performance.now() - started)
      })
      this.frames.sendEncoded(encodeControl(0, { kind: ControlKind.PING, payload }))
    })
  }

  /** Graceful: takes nothing new from here on (the role refuses it) and closes once the calls in flight are done. */
  close(): Promise<void> {
    if (this.#state === 'open') {
      this.#state = 'closing'
      if (this.#calls.size === 0) this.frames.close()
    }
    return this.frames.closed
  }

  /** Now: every call in flight fails with `error` and the transport is dropped. */
  destroy(error: RpcError): Promise<void> {
    this.#state = 'closed'
    this.#failAll(error)
    this.frames.destroy(error)
    return this.frames.closed
  }

  #released(): void {
    const size = this.#calls.size
    if (this.#state === 'closing' && size === 0) this.frames.close()
    else this.#role.onReleased(size)
  }

  #onFrame(frame: Frame): void {
    if (this.#held !== undefined) {
      this.#held.push({ flags: frame.flags, id: frame.id, type: frame.type, value: frame.value })
      return
    }
    if (frame.flags & Flags.CONTROL) return this.#onControl(frame)
    if (frame.flags & Flags.COMPRESSED && frame.value.length >= ASYNC_INFLATE_MIN) {
      const compressed = compressedPart(frame)
      const codec = this.#ext.codec
      // Anything odd (no codec agreed, a malformed block) takes the sync path, which reports it.
      if (compressed !== undefined && codec !== undefined) return this.#inflateAhead(frame, codec, compressed)
    }
    this.#role.onFrame(frame, this.#calls.get(frame.id))
  }

  /**
   * Inflates a large COMPRESSED value on zlib's pool so the event loop stays free, then delivers
   * its frame, then the frames that came after it, in the order they came (one inflate at a
   * time per connection; reading is paused meanwhile). The role decodes the payload as usual:
   * decodePayload hands it the inflated bytes, or the error (RESOURCE_EXHAUSTED, DATA_LOSS).
   */
  #inflateAhead(frame: Frame, codec: string, compressed: Buffer): void {
    const copy: Frame = { flags: frame.flags, id: frame.id, type: frame.type, value: frame.value }
    this.#held = []
    this.frames.pause()
    const deliver = (result: Buffer | undefined, error: RpcError | undefined) => {
      const held = this.#held!
      this.#held = undefined
      if (this.#state === 'closed') return
      try {
        this.#inflated = { value: compressed, result, error }
        this.#role.onFrame(copy, this.#calls.get(copy.id))
        this.#inflated = undefined
        for (let i = 0; i < held.length; i++) {
          this.#onFrame(held[i]!)
          // Another large one began inflating: the rest wait behind it, still in order.
          if (this.#held !== undefined) {
            ;(this.#held as Frame[]).push(...held.slice(i + 1))
            return
          }
        }
      } catch (err) {
        this.#inflated = undefined
        this.frames.failConnection(RpcError.from(err, Code.INTERNAL))
        return
      } finally {
        this.frames.resume()
      }
    }
    decompressAsync(codec, compressed, this.maxFrameSize).then(
      (result) => deliver(result, undefined),
      (err: unknown) => deliver(undefined, RpcError.from(err)),
    )
  }

  #onControl(frame: Frame): void {
    if (frame.flags !== Flags.CONTROL) throw protocolError('control flag combined with other flags')
    if (frame.value[0] === ControlKind.HELLO) return this.#onHello(frame)
    const message = decodeControl(frame)
    if (message === undefined) return // a kind from a newer peer: ignored
    switch (message.kind) {
      case ControlKind.HELLO_ACK:
        return this.#onHelloAck()
      case ControlKind.PING:
        this.frames.sendEncoded(encodeControl(0, { kind: ControlKind.PONG, payload: message.payload }))
        return
      case ControlKind.PONG: {
        if (this.#pings === undefined || this.#pings.size === 0) return
        const key = asBuffer(message.payload).toString('hex')
        const waiter = this.#pings.get(key)
        this.#pings.delete(key)
        waiter?.()
        return
      }
      case ControlKind.CANCEL: {
        // Cancelling a call that already finished is normal (the answer crossed the cancel).
        const call = this.#calls.get(frame.id)
        if (call !== undefined) this.#role.onCancel(call, message.code)
        return
      }
      case ControlKind.GOAWAY:
        return this.#role.onGoaway(message.lastId)
      case ControlKind.WINDOW_UPDATE:
        this.#calls.get(frame.id)?.grant(message.bytes)
        return
    }
  }

  /**
   * On the client, the server's answer: agreed, confirmed with HELLO_ACK and in force for every id
   * from now on. On the server, the client's offer: answered, in force from the client's HELLO_ACK.
   */
  #onHello(frame: Frame): void {
    if (this.#agreed) throw protocolError('second HELLO on one connection')
    // Settled once per distinct HELLO (and checked then): every client of one build sends the same.
    const agreement = agreementFor(this.#settings, frame.value, () => helloCapabilities(frame))
    this.#agreed = Extensions.from(this.#settings, agreement)
    const capabilities = agreement.peer
    if (capabilities.maxFrameSize) this.frames.maxOutgoingFrameSize = capabilities.maxFrameSize
    if (this.side === 'client') {
      this.frames.sendEncoded(encodeControl(0, { kind: ControlKind.HELLO_ACK }))
      this.#inForce()
    } else {
      agreement.answerFrame ??= encodeControl(0, {
        kind: ControlKind.HELLO,
        capabilities: answer(this.#settings, capabilities),
      })
      this.frames.sendEncoded(agreement.answerFrame)
    }
  }

  #onHelloAck(): void {
    if (this.side === 'client') return // only a client confirms; a server saying it is harmless
    if (!this.#agreed || this.#ext !== Extensions.NONE) throw protocolError('HELLO_ACK without a HELLO')
    this.#inForce()
  }

  #inForce(): void {
    this.#ext = this.#agreed!
    const keepalive = this.#keepalive
    if (keepalive && this.#ext.has('ping')) this.frames.startKeepalive(keepalive.interval, keepalive.timeout)
    this.#negotiationDone()
  }

  #negotiationDone(): void {
    if (this.#negotiationOver) return
    this.#negotiationOver = true
    deadlines.cancel(this.#helloTimer)
    this.#helloTimer = undefined
    this.#negotiated?.resolve()
  }

  #onClose(error: RpcError | undefined): void {
    this.#state = 'closed'
    this.#failAll(this.#role.lostError(error))
    this.#negotiationDone()
    this.#role.onClosed(error)
  }

  #failAll(error: RpcError): void {
    if (this.#calls.size === 0) return
    const calls = [...this.#calls.values()]
    this.#calls.clear()
    for (const call of calls) this.#role.failCall(call, error)
  }
}

/** The COMPRESSED part of a frame's value: after the metadata block if there is one; undefined if malformed. */
function compressedPart(frame: Frame): Buffer | undefined {
  const value = frame.value
  if (!(frame.flags & Flags.METADATA)) return value
  if (value.length < 4) return undefined
  const end = 4 + value.readUInt32BE(0)
  return end <= value.length ? value.subarray(end) : undefined
}

/** The same bytes in memory (the role's view of the payload may be a new Buffer over them). */
function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.buffer === b.buffer && a.byteOffset === b.byteOffset && a.length === b.length
}

/**
 * For a payload that could not be decoded: a PROTOCOL_ERROR is rethrown (it fails the connection);
 * any other error is returned, for the one call it fails.
 */
export function callError(err: unknown): RpcError {
  if ((err as RpcError).code === Code.PROTOCOL_ERROR) throw err
  return err as RpcError
}

/** The capabilities of a HELLO control frame (PROTOCOL_ERROR when it is malformed). */
function helloCapabilities(frame: Frame): Capabilities {
  const message = decodeControl(frame)
  if (message?.kind !== ControlKind.HELLO) throw protocolError('malformed HELLO')
  return message.capabilities
}

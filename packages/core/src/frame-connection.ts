import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import {
  Code,
  ControlKind,
  DEFAULT_MAX_FRAME_SIZE,
  encodeControl,
  encodeErrorValue,
  Flags,
  FrameDecoder,
  type FrameDecoderOptions,
  type FrameId,
  formatMs,
  HEADER_SIZE,
  RpcError,
  typeByteLength,
  writeHeader,
} from '@srpc/protocol'
import { allocBuffer, type Frame } from './buffer'
import { fromPlatformError } from './platform-error'
import type { Transport } from './transport'

/**
 * Largest and smallest size of the buffers frames are encoded into. A frame that does not fit in
 * a full-size slab is written as its header (in the slab) followed by its value, uncopied.
 */
const SLAB_SIZE = 64 * 1024
const MIN_SLAB_SIZE = 1024

/** The slab size shrinks only after this many turns that needed less, or after this long idle. */
const SHRINK_AFTER_TURNS = 32
const SHRINK_AFTER_IDLE_MS = 1000
/**
 * Written slabs kept for reuse. Writes made in one event-loop turn are confirmed in a later one,
 * so a connection writing more than a slab per turn needs a few in rotation.
 */
const MAX_SPARES = 2
/**
 * Smaller slabs are not kept: Node carves them out of its shared 8 KiB pool, so they cost next to
 * nothing to allocate, and keeping one per idle connection would hold a share of that pool each.
 */
const MIN_SPARE_SIZE = 4 * 1024

/** A buffer frames are encoded into, and how many of its regions the transport has not finished writing. */
interface Slab {
  readonly buf: Buffer
  held: number
}
const NO_SLAB: Slab = { buf: Buffer.alloc(0), held: 0 }
/** Pending output at which the batch is written at once instead of at the end of the turn. */
const FLUSH_NOW_BYTES = 1024 * 1024
/** How long a connection closed after a protocol error waits for its last frame to flush. */
const CLOSE_GRACE_MS = 1000

export interface FrameConnectionHandlers {
  /** Called for every decoded frame, in order. Exceptions are treated as protocol errors. */
  onFrame(frame: Frame): void
  /**
   * Called once when the connection is done: its transport closed, or a connection error was sent
   * (the transport may linger a moment to flush it). `error` is undefined for an orderly close.
   */
  onClose(error: RpcError | undefined): void
}

export type FrameConnectionState = 'open' | 'closing' | 'closed'

export interface FrameConnectionOptions extends Omit<FrameDecoderOptions, 'alloc'> {
  /**
   * Stop reading while our writes are backed up. A server sets this: a client that sends
   * requests but never reads the replies then stops being read, instead of making the server
   * buffer replies without bound. (A client must not: two peers doing it can deadlock.)
   */
  pauseReadingWhileBackedUp?: boolean
}

/**
 * The framing layer shared by client and server: decodes frames from a transport and writes
 * frames to it. Writes made in one event-loop turn leave in one batch (one syscall, one TLS
 * record where they fit); `writable`/`whenWritable()` expose the transport's backpressure, and
 * `pause()`/`resume()` stop reading when the application falls behind.
 */
export class FrameConnection {
  readonly transport: Transport
  #handlers: FrameConnectionHandlers
  #decoder: FrameDecoder<Buffer>
  #state: FrameConnectionState = 'open'
  /**
   * Frames are encoded straight into a slab: no buffer per frame, and a turn's frames leave as
   * one buffer in one write (over TLS a write of several buffers is copied into one by Node,
   * so copying a value into the slab costs nothing a batch would not cost anyway). A region of
   * the slab, once handed to the transport, is never written again; the next frames go after it,
   * or into another slab. A slab whose regions have all been written (the transport's write
   * callbacks say so) is kept as a spare and used again, so a busy connection allocates
   * nothing to write: a few slabs take turns.
   */
  #slab: Slab = NO_SLAB
  /** Slabs of the current size that the transport is done with, at most MAX_SPARES. */
  #spares: Slab[] = []
  /** The slab of every region handed to the transport and not yet written, in write order. */
  #written: Slab[] = []
  #onWritten = (err?: Error | null) => this.#released(err)
  #writeFailed = false
  /**
   * Size of the slabs: twice what a turn writes, between 1 KiB and 64 KiB. It grows at once and
   * shrinks only after SHRINK_AFTER_TURNS smaller turns in a row or a turn after a second of
   * silence, so a busy connection keeps recycling slabs of one size while an idle one holds
   * one small slab and no spares (10,000 idle connections with 64 KiB each held 640 MiB). A
   * connection that falls silent gives its large slabs back at its next write: with keepalive
   * on, the ping or pong after one interval (30 s on the client, 60 s on the server) at the latest.
   */
  #slabHint = MIN_SLAB_SIZE
  #smallerTurns = 0
  #lastFlushAt = 0
  #slabStart = 0
  #slabEnd = 0
  /** Regions and large values waiting for this turn's write, in order. */
  #pending: Buffer[] = []
  /** The slab of each entry of #pending (undefined for a large value). */
  #pendingSlabs: (Slab | undefined)[] = []
  #pendingBytes = 0
  #flushScheduled = false
  #backedUp = false
  #drain: { promise: Promise<void>; resolve: () => void; reject: (err: RpcError) => void } | null = null
  #pauses = 0
  #closeError: RpcError | undefined
  #pauseWhileBackedUp: boolean
  /** Prefix of a transport error's message: names the peer when the options do. */
  #failedContext: string
  /** Set by every chunk received; the keepalive checks and clears it. */
  #heard = true
  #keepalive: { interval: number; timeout: number; timer: NodeJS.Timeout | undefined } | undefined
  #flush = () => {
    this.#flushScheduled = false
    this.#flushBatch()
  }
  #transportClosed = false
  #whenClosed: { promise: Promise<void>; resolve: () => void } | undefined

  constructor(transport: Transport, handlers: FrameConnectionHandlers, options: FrameConnectionOptions = {}) {
    this.transport = transport
    this.#handlers = handlers
    this.#decoder = new FrameDecoder({ ...options, alloc: allocBuffer })
    this.#pauseWhileBackedUp = options.pauseReadingWhileBackedUp === true
    this.#failedContext =
      options.peerName === undefined ? 'connection failed' : `connection to ${options.peerName} failed`
    transport.start({
      onData: (chunk) => this.#onData(chunk as Buffer),
      onDrain: () => this.#onDrain(),
      onEnd: () => this.#onEnd(),
      onClose: (err) => this.#onTransportClose(err),
    })
  }

  /** Resolves once the transport itself has closed (after `onClose`, which may come earlier). */
  get closed(): Promise<void> {
    if (this.#transportClosed) return Promise.resolve()
    if (this.#whenClosed === undefined) {
      let resolve!: () => void
      const promise = new Promise<void>((res) => {
        resolve = res
      })
      this.#whenClosed = { promise, resolve }
    }
    return this.#whenClosed.promise
  }

  get state(): FrameConnectionState {
    return this.#state
  }

  /** False while the transport is backed up; wait with `whenWritable()` before writing more. */
  get writable(): boolean {
    return !this.#backedUp && this.#state === 'open'
  }

  get bufferedBytes(): number {
    return this.#decoder.bufferedBytes
  }

  /** Resolves when the transport can take more data; rejects with UNAVAILABLE if it closes first. */
  whenWritable(): Promise<void> {
    if (this.#state !== 'open') return Promise.reject(this.#closedError())
    if (!this.#backedUp) return Promise.resolve()
    if (!this.#drain) {
      let resolve!: () => void
      let reject!: (err: RpcError) => void
      const promise = new Promise<void>((res, rej) => {
        resolve = res
        reject = rej
      })
      // The connection may close with nobody waiting: never leave that as an unhandled rejection.
      promise.catch(() => {})
      this.#drain = { promise, resolve, reject }
    }
    return this.#drain.promise
  }

  /**
   * Largest frame the peer accepts (its HELLO says; the v1 default otherwise). A bigger frame
   * would make the peer close the whole connection, so sendFrame refuses it for this call alone.
   */
  maxOutgoingFrameSize = DEFAULT_MAX_FRAME_SIZE

  /**
   * Queues one frame. Returns false when the transport is backed up (the frame is still queued).
   * Throws RESOURCE_EXHAUSTED, sending nothing, for a frame larger than the peer accepts.
   */
  sendFrame(flags: number, id: FrameId, type: string, value: Uint8Array, prefix?: Uint8Array): boolean {
    if (this.#state !== 'open') return false
    const prefixLength = prefix === undefined ? 0 : prefix.length
    const valueLength = prefixLength + value.byteLength
    if (HEADER_SIZE + valueLength + type.length * 3 > this.maxOutgoingFrameSize) {
      const size = HEADER_SIZE + valueLength + Buffer.byteLength(type)
      if (size > this.maxOutgoingFrameSize) {
        throw new RpcError(
          Code.RESOURCE_EXHAUSTED,
          `message of ${size} bytes is larger than the peer accepts (${this.maxOutgoingFrameSize})`,
        )
      }
    }
    // The prefix (a metadata block) is part of the value on the wire, written in front of it.
    const typeLength = typeByteLength(type)
    const headerLength = HEADER_SIZE + typeLength + prefixLength
    const size = headerLength + value.byteLength
    if (size > SLAB_SIZE) {
      // Too large for a slab: the value goes to the transport as it is, after its header.
      this.#reserve(headerLength)
      const slab = this.#slab.buf
      this.#slabEnd += writeHeader(slab, this.#slabEnd, flags, id, type, typeLength, valueLength)
      if (prefix !== undefined) {
        slab.set(prefix, this.#slabEnd)
        this.#slabEnd += prefixLength
      }
      this.#closeRegion()
      this.#pending.push(value as Buffer)
      this.#pendingSlabs.push(undefined)
    } else {
      this.#reserve(size)
      const slab = this.#slab.buf
      const at = this.#slabEnd + writeHeader(slab, this.#slabEnd, flags, id, type, typeLength, valueLength)
      if (prefix !== undefined) slab.set(prefix, at)
      slab.set(value, at + prefixLength)
      this.#slabEnd = at + prefixLength + value.byteLength
    }
    this.#added(size)
    return !this.#backedUp
  }

  /** Queues bytes that are already an encoded frame. */
  sendEncoded(frame: Uint8Array): boolean {
    if (this.#state !== 'open') return false
    this.#reserve(frame.length)
    this.#slab.buf.set(frame, this.#slabEnd)
    this.#slabEnd += frame.length
    this.#added(frame.length)
    return !this.#backedUp
  }

  /** Stops reading from the transport until every pause is matched by a resume. */
  pause(): void {
    if (this.#pauses++ === 0) this.transport.pause()
  }

  resume(): void {
    if (this.#pauses > 0 && --this.#pauses === 0 && this.#state !== 'closed') this.transport.resume()
  }

  /**
   * Pings the peer when nothing arrived for `interval` ms, and destroys the connection with
   * UNAVAILABLE when nothing (pong or anything else) arrives within `timeout` ms after that.
   * Only for peers that negotiated pings. Calling it again restarts it with the new values.
   */
  startKeepalive(interval: number, timeout: number): void {
    this.stopKeepalive()
    if (this.#state === 'closed') return
    this.#keepalive = { interval, timeout, timer: undefined }
    this.#heard = false
    this.#armKeepalive(interval, () => this.#keepaliveIdleCheck())
  }

  stopKeepalive(): void {
    if (this.#keepalive?.timer) clearTimeout(this.#keepalive.timer)
    this.#keepalive = undefined
  }

  #armKeepalive(delay: number, check: () => void): void {
    const keepalive = this.#keepalive!
    keepalive.timer = setTimeout(check, delay)
    keepalive.timer.unref()
  }

  #keepaliveIdleCheck(): void {
    const keepalive = this.#keepalive
    if (!keepalive || this.#state !== 'open') return
    if (this.#heard) {
      this.#heard = false
      this.#armKeepalive(keepalive.interval, () => this.#keepaliveIdleCheck())
      return
    }
    this.sendEncoded(encodeControl(0, { kind: ControlKind.PING, payload: randomBytes(8) }))
    this.#armKeepalive(keepalive.timeout, () => {
      if (!this.#keepalive) return
      if (this.#heard) {
        this.#heard = false
        this.#armKeepalive(keepalive.interval, () => this.#keepaliveIdleCheck())
        return
      }
      this.destroy(
        new RpcError(Code.UNAVAILABLE, `no answer to a keepalive ping within ${formatMs(keepalive.timeout)}`),
      )
    })
  }

  /** Flushes what is queued and ends the transport (a FIN); `onClose` follows when it is gone. */
  close(): void {
    if (this.#state !== 'open') return
    this.#state = 'closing'
    this.#flushBatch()
    this.transport.close()
    setTimeout(() => this.transport.destroy(), CLOSE_GRACE_MS).unref()
  }

  /** Drops the transport now. */
  destroy(error?: RpcError): void {
    if (this.#state === 'closed') return
    if (error && !this.#closeError) this.#closeError = error
    this.#pending = []
    this.#pendingSlabs = []
    this.#pendingBytes = 0
    this.transport.destroy()
  }

  /** Sends an ERROR frame for the whole connection (id 0), then closes it. */
  failConnection(error: RpcError): void {
    if (!this.#closeError) this.#closeError = error
    if (this.#state === 'open') this.sendFrame(Flags.ERROR, 0, '', encodeErrorValue(error))
    this.close()
    // Everything on the connection fails now; the transport only lingers to flush the error frame.
    this.#markClosed()
  }

  /**
   * Makes room for `size` contiguous bytes at the slab's end. When the slab is full, what is
   * queued is written now (one write per slab) and frames go on in a spare or a new slab.
   */
  #reserve(size: number): void {
    if (this.#slabEnd + size <= this.#slab.buf.length) return
    if (this.#pending.length > 0 || this.#slabEnd > this.#slabStart) this.#flushBatch()
    const slab = this.#slab
    if (slab.held === 0 && slab.buf.length === this.#slabHint && size <= slab.buf.length) {
      // Everything written from it has left: start again at its beginning.
      this.#slabStart = 0
      this.#slabEnd = 0
      return
    }
    if (!this.#switchSlab(size))
      this.#slab = { buf: Buffer.allocUnsafe(Math.max(this.#slabHint, size)), held: 0 }
  }

  /**
   * Stops encoding into the current slab (it becomes a spare once the transport is done with it) and
   * goes on in a spare that holds `size` bytes, if there is one; false leaves no current slab.
   */
  #switchSlab(size: number): boolean {
    this.#retireSlab()
    const spare = this.#spares.pop()
    if (spare === undefined || size > spare.buf.length) return false
    this.#slab = spare
    return true
  }

  /** Adjusts the slab size to this turn's output (see #slabHint); drops spares of another size. */
  #sizeSlabs(): void {
    const now = performance.now()
    const idle = now - this.#lastFlushAt > SHRINK_AFTER_IDLE_MS
    this.#lastFlushAt = now
    const needed = Math.min(
      SLAB_SIZE,
      Math.max(MIN_SLAB_SIZE, 2 ** Math.ceil(Math.log2(2 * this.#pendingBytes))),
    )
    if (needed >= this.#slabHint) {
      this.#slabHint = needed
      this.#smallerTurns = 0
    } else if (idle || ++this.#smallerTurns >= SHRINK_AFTER_TURNS) {
      this.#slabHint = needed
      this.#smallerTurns = 0
    }
    if (this.#spares.length > 0 && this.#spares[0].buf.length !== this.#slabHint) this.#spares = []
  }

  /** Stops encoding into the current slab; it becomes a spare once the transport is done with it. */
  #retireSlab(): void {
    const slab = this.#slab
    this.#slab = NO_SLAB
    this.#slabStart = 0
    this.#slabEnd = 0
    if (slab.held === 0) this.#recycle(slab)
  }

  /** Keeps a slab nobody references any more as a spare, if it has the current size. */
  #recycle(slab: Slab): void {
    if (
      slab.buf.length === this.#slabHint &&
      slab.buf.length >= MIN_SPARE_SIZE &&
      this.#spares.length < MAX_SPARES &&
      this.#state === 'open' &&
      !this.#writeFailed
    ) {
      this.#spares.push(slab)
    }
  }

  /**
   * A write finished: the oldest region handed to the transport is no longer referenced
   * (transports call write callbacks in write order). After a failed write nothing is recycled any more.
   */
  #released(err: Error | null | undefined): void {
    if (err) {
      this.#writeFailed = true
      this.#spares = []
      return
    }
    const slab = this.#written.shift()
    if (slab !== undefined && --slab.held === 0 && slab !== this.#slab) this.#recycle(slab)
  }

  /** Moves the slab bytes written since the last region into the pending list. */
  #closeRegion(): void {
    if (this.#slabEnd === this.#slabStart) return
    this.#pending.push(this.#slab.buf.subarray(this.#slabStart, this.#slabEnd))
    this.#pendingSlabs.push(this.#slab)
    this.#slab.held++
    this.#slabStart = this.#slabEnd
  }

  #write(buf: Buffer, slab: Slab | undefined): boolean {
    if (slab === undefined) return this.transport.write(buf)
    this.#written.push(slab)
    return this.transport.write(buf, this.#onWritten)
  }

  #added(bytes: number): void {
    this.#pendingBytes += bytes
    // A big batch goes out now, so that transport.write() reports backpressure to the sender
    // before it queues more (a loop awaiting resolved promises never lets nextTick run).
    if (this.#pendingBytes >= FLUSH_NOW_BYTES) {
      this.#flushBatch()
      return
    }
    if (!this.#flushScheduled) {
      this.#flushScheduled = true
      process.nextTick(this.#flush)
    }
  }

  #flushBatch(): void {
    this.#closeRegion()
    const batch = this.#pending
    const slabs = this.#pendingSlabs
    if (batch.length === 0 || this.transport.state === 'closed') return
    this.#sizeSlabs()
    const slabSize = this.#slab.buf.length
    if (slabSize - this.#slabEnd < MIN_SLAB_SIZE || slabSize !== this.#slabHint) {
      // Nearly full, or not the size the traffic needs now: the next frames go into a spare, or
      // into a new slab (a spare taken now leaves room for this one when its write is done).
      this.#switchSlab(0)
    }
    this.#pending = []
    this.#pendingSlabs = []
    this.#pendingBytes = 0
    let ok: boolean
    if (batch.length === 1) {
      ok = this.#write(batch[0], slabs[0])
    } else {
      this.transport.cork()
      ok = true
      for (let i = 0; i < batch.length; i++) ok = this.#write(batch[i], slabs[i])
      this.transport.uncork()
    }
    if (!ok && !this.#backedUp) {
      this.#backedUp = true
      if (this.#pauseWhileBackedUp) this.pause()
    }
  }

  #onData(chunk: Buffer): void {
    if (this.#state === 'closed') return
    this.#heard = true
    try {
      this.#decoder.push(chunk, this.#handlers.onFrame)
    } catch (err) {
      this.failConnection(RpcError.from(err, Code.INTERNAL))
      this.transport.pause()
    }
  }

  #onDrain(): void {
    if (this.#backedUp && this.#pauseWhileBackedUp) this.resume()
    this.#backedUp = false
    const drain = this.#drain
    this.#drain = null
    drain?.resolve()
  }

  #onEnd(): void {
    // The peer finished sending. A frame cut short by EOF is a protocol error.
    try {
      this.#decoder.end()
    } catch (err) {
      if (!this.#closeError && RpcError.is(err)) this.#closeError = err
    }
    if (this.#state === 'open') this.close()
  }

  #onTransportClose(err: Error | undefined): void {
    if (err !== undefined && !this.#closeError) this.#closeError = fromPlatformError(err, this.#failedContext)
    this.#transportClosed = true
    this.#markClosed()
    this.#whenClosed?.resolve()
  }

  #markClosed(): void {
    if (this.#state === 'closed') return
    this.#state = 'closed'
    this.stopKeepalive()
    this.#pending = []
    this.#pendingSlabs = []
    this.#spares = []
    const drain = this.#drain
    this.#drain = null
    drain?.reject(this.#closedError())
    this.#handlers.onClose(this.#closeError)
  }

  #closedError(): RpcError {
    return new RpcError(Code.UNAVAILABLE, 'connection closed', { cause: this.#closeError })
  }
}

import {
  Code,
  encodeErrorValue,
  Flags,
  FrameDecoder,
  type FrameDecoderOptions,
  type FrameId,
  RpcError,
} from '@srpc/protocol'
import { allocBuffer, type Frame } from './buffer'
import { FrameWriter } from './frame-writer'
import { Keepalive } from './keepalive'
import { fromPlatformError } from './platform-error'
import type { Transport } from './transport'

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
 * record where they fit: the FrameWriter's job); `writable`/`whenWritable()` expose the
 * transport's backpressure, `pause()`/`resume()` stop reading when the application falls
 * behind, and a Keepalive, once started, hears every chunk read.
 */
export class FrameConnection {
  readonly transport: Transport
  #handlers: FrameConnectionHandlers
  #decoder: FrameDecoder<Buffer>
  #state: FrameConnectionState = 'open'
  /** Encodes and batches the writes; this class checks the state first and keeps the backpressure. */
  #writer: FrameWriter
  #backedUp = false
  #drain: { promise: Promise<void>; resolve: () => void; reject: (err: RpcError) => void } | null = null
  #pauses = 0
  #closeError: RpcError | undefined
  #pauseWhileBackedUp: boolean
  /** Prefix of a transport error's message: names the peer when the options do. */
  #failedContext: string
  #keepalive = new Keepalive(this)
  #transportClosed = false
  #whenClosed: { promise: Promise<void>; resolve: () => void } | undefined

  constructor(transport: Transport, handlers: FrameConnectionHandlers, options: FrameConnectionOptions = {}) {
    this.transport = transport
    this.#handlers = handlers
    this.#decoder = new FrameDecoder({ ...options, alloc: allocBuffer })
    this.#writer = new FrameWriter(transport, () => this.#onBackedUp())
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
  get maxOutgoingFrameSize(): number {
    return this.#writer.maxFrameSize
  }

  set maxOutgoingFrameSize(size: number) {
    this.#writer.maxFrameSize = size
  }

  /**
   * Queues one frame. Returns false when the transport is backed up (the frame is still queued).
   * Throws RESOURCE_EXHAUSTED, sending nothing, for a frame larger than the peer accepts.
   */
  sendFrame(flags: number, id: FrameId, type: string, value: Uint8Array, prefix?: Uint8Array): boolean {
    if (this.#state !== 'open') return false
    this.#writer.frame(flags, id, type, value, prefix)
    return !this.#backedUp
  }

  /** Queues bytes that are already an encoded frame. */
  sendEncoded(frame: Uint8Array): boolean {
    if (this.#state !== 'open') return false
    this.#writer.encoded(frame)
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
    if (this.#state === 'open') this.#keepalive.start(interval, timeout)
  }

  stopKeepalive(): void {
    this.#keepalive.stop()
  }

  /** Flushes what is queued and ends the transport (a FIN); `onClose` follows when it is gone. */
  close(): void {
    if (this.#state !== 'open') return
    this.#state = 'closing'
    // No more pings: the grace timer below bounds how long the transport may linger.
    this.#keepalive.stop()
    this.#writer.close()
    this.transport.close()
    setTimeout(() => this.transport.destroy(), CLOSE_GRACE_MS).unref()
  }

  /** Drops the transport now. */
  destroy(error?: RpcError): void {
    if (this.#state === 'closed') return
    if (error && !this.#closeError) this.#closeError = error
    this.#writer.discard()
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

  #onBackedUp(): void {
    if (this.#backedUp) return
    this.#backedUp = true
    if (this.#pauseWhileBackedUp) this.pause()
  }

  #onData(chunk: Buffer): void {
    if (this.#state === 'closed') return
    this.#keepalive.heard()
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
    // The peer finished sending. A frame cut short by EOF is a lost link, not a broken peer: a
    // process killed in the middle of a write, or a TCP reset that arrived behind data (Node reads
    // the data, then reports EOF). UNAVAILABLE, so the caller may retry; the decoder's error is
    // the cause.
    try {
      this.#decoder.end()
    } catch (err) {
      if (!this.#closeError && RpcError.is(err)) {
        this.#closeError = new RpcError(Code.UNAVAILABLE, `${this.#failedContext}: ${err.message}`, {
          cause: err,
        })
      }
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
    this.#keepalive.stop()
    this.#writer.destroy()
    const drain = this.#drain
    this.#drain = null
    drain?.reject(this.#closedError())
    this.#handlers.onClose(this.#closeError)
  }

  #closedError(): RpcError {
    return new RpcError(Code.UNAVAILABLE, 'connection closed', { cause: this.#closeError })
  }
}

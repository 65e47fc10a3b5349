import type { Deadline } from '@srpc/core/portable'
import {
  Code,
  ControlKind,
  decodeErrorValue,
  encodeControl,
  Flags,
  type Frame,
  type FrameId,
  formatMs,
  type Metadata,
  messageCost,
  payloadBytes,
  protocolError,
  ReceiveWindow,
  RpcError,
  SendWindow,
  splitMetadata,
} from '@srpc/protocol'
import type { ConnectionCall, WebConnection } from './connection'
import { BACKPRESSURE_POLL_MS } from './options'

/** The error of a call whose AbortSignal fired. */
export function abortedError(signal: AbortSignal): RpcError {
  return new RpcError(Code.CANCELLED, 'call cancelled by its signal', { cause: signal.reason })
}

const EMPTY = new Uint8Array(0)

/**
 * What every call shares: its id on one connection, whether that id was opened with the
 * extensions, and its deadline and signal. `abort` gives up locally and tells the server
 * (CANCEL); `fail` is for a connection that is already gone.
 */
abstract class Call implements ConnectionCall, Deadline {
  readonly id: FrameId
  protected readonly conn: WebConnection
  /** The id was opened after the server's HELLO: metadata, CANCEL and flow control apply to it. */
  protected readonly extended: boolean
  /** Deadline bookkeeping for the client's DeadlineScheduler (no timer of its own). */
  at = 0
  index = -1
  #timeout = 0
  #signal: AbortSignal | undefined
  #onAbort: (() => void) | undefined
  protected done = false

  constructor(conn: WebConnection, id: FrameId) {
    this.conn = conn
    this.id = id
    this.extended = conn.extended
  }

  /** Starts the deadline and listens to the signal; both end in `abort`. Call after the opening frame. */
  start(timeout: number | undefined, signal: AbortSignal | undefined): void {
    if (timeout !== undefined && timeout > 0) {
      this.#timeout = timeout
      this.conn.deadlines.add(this, timeout)
    }
    if (signal !== undefined) {
      this.#signal = signal
      this.#onAbort = () => this.abort(abortedError(signal))
      signal.addEventListener('abort', this.#onAbort, { once: true })
    }
  }

  /** What the server set in `ctx.responseMetadata`, from the call's last frame (`response-metadata`). */
  responseMetadata: Metadata | undefined

  /**
   * Takes the response metadata block off `value` when `flags` carry METADATA; `allowed` says
   * whether this frame may carry it. Anything else is a protocol error (docs/protocol.md 7.12).
   */
  protected withoutMetadata(flags: number, value: Uint8Array, allowed: boolean): Uint8Array {
    if (!(flags & Flags.METADATA)) return value
    if (!allowed || !this.extended || !this.conn.has('response-metadata')) {
      throw protocolError(`flags 0x${flags.toString(16)}: metadata where none was agreed`)
    }
    const { metadata, payload } = splitMetadata(value, Number.MAX_SAFE_INTEGER)
    this.responseMetadata = metadata
    return payload
  }

  fire(): void {
    this.abort(new RpcError(Code.DEADLINE_EXCEEDED, `deadline of ${formatMs(this.#timeout)} exceeded`))
  }

  /** Gives up on the call: the server is told (CANCEL, where agreed) and late frames are dropped. */
  abort(error: RpcError): void {
    if (this.done) return
    this.conn.cancel(this.id, error.code, this.extended)
    this.finish(error, true)
  }

  /** `abort` by the name core's CallStream uses (a WebStream cancels its call with it). */
  cancel(error: RpcError): void {
    this.abort(error)
  }

  fail(error: RpcError): void {
    if (this.done) return
    this.finish(error, false)
  }

  grant(_bytes: number): void {}

  /** The call is over for this side: stop the timer and the signal, leave the connection. */
  protected settle(): void {
    this.done = true
    if (this.index >= 0) this.conn.deadlines.cancel(this)
    if (this.#onAbort !== undefined) this.#signal?.removeEventListener('abort', this.#onAbort)
    this.conn.forget(this.id)
  }

  /** Ends the call with `error` (`dropQueued`: a local cancel discards what arrived). */
  protected abstract finish(error: RpcError, dropQueued: boolean): void
  abstract onFrame(frame: Frame): void
}

/** Hands response metadata to the caller's callback; what the callback throws fails the call. */
function deliverMetadata(
  callback: ((metadata: Metadata) => void) | undefined,
  metadata: Metadata | undefined,
): RpcError | undefined {
  if (callback === undefined || metadata === undefined) return undefined
  try {
    callback(metadata)
    return undefined
  } catch (err) {
    return RpcError.from(err)
  }
}

/** A request-response call: one REQUEST, one RESPONSE or ERROR. */
export class UnaryCall extends Call {
  readonly promise: Promise<Uint8Array>
  #resolve!: (value: Uint8Array) => void
  #reject!: (error: RpcError) => void

  #onResponseMetadata: ((metadata: Metadata) => void) | undefined

  constructor(conn: WebConnection, id: FrameId, onResponseMetadata?: (metadata: Metadata) => void) {
    super(conn, id)
    this.#onResponseMetadata = onResponseMetadata
    this.promise = new Promise((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
  }

  onFrame(frame: Frame): void {
    const { flags } = frame
    if (flags & Flags.ERROR) return this.finish(decodeErrorValue(frame.value), false)
    if (flags & (Flags.STREAM | Flags.STREAM_END)) {
      this.abort(new RpcError(Code.FAILED_PRECONDITION, 'the route answered with a stream; use callStream'))
      return
    }
    if (!(flags & Flags.RESPONSE)) throw protocolError(`flags 0x${flags.toString(16)} on a reply`)
    const value = this.withoutMetadata(flags, frame.value, true)
    this.settle()
    const failed = deliverMetadata(this.#onResponseMetadata, this.responseMetadata)
    if (failed) this.#reject(failed)
    else this.#resolve(value)
  }

  protected finish(error: RpcError, _dropQueued: boolean): void {
    this.settle()
    this.#reject(error)
  }
}

interface Waiter {
  resolve(value: Uint8Array | undefined): void
  reject(error: RpcError): void
}

/**
 * The server's half of a server stream or a session: messages queue until the application
 * takes them, and credit goes back (WINDOW_UPDATE) as it does, so a page that stops reading
 * stops the server's sender and nothing else. Without `flow` (a plain v1 server) the queue is
 * bounded by the client's `initialWindow` in bytes: past it the call fails RESOURCE_EXHAUSTED.
 */
export class ReceivingCall extends Call {
  readonly route: string
  /** Called with the response metadata when the server's end marker carries it. */
  onResponseMetadata: ((metadata: Metadata) => void) | undefined
  #queue: Uint8Array[] = []
  #queuedBytes = 0
  #window: ReceiveWindow | undefined
  #waiter: Waiter | undefined
  /** The server ended its half. */
  #remoteEnded = false
  #error: RpcError | undefined
  readonly #ended = new AbortController()

  constructor(conn: WebConnection, id: FrameId, route: string) {
    super(conn, id)
    this.route = route
    if (this.extended && conn.has('flow')) {
      this.#window = new ReceiveWindow(conn.options.initialWindow, conn.options.maxWindow)
    }
  }

  /** Aborted once the call is over, whatever the outcome. */
  get signal(): AbortSignal {
    return this.#ended.signal
  }

  get error(): RpcError | undefined {
    return this.#error
  }

  get remoteEnded(): boolean {
    return this.#remoteEnded
  }

  onFrame(frame: Frame): void {
    const { flags } = frame
    if (flags & Flags.ERROR) return this.finish(decodeErrorValue(frame.value), false)
    let value = frame.value
    if (flags & Flags.METADATA) {
      // Only the end marker may carry it; the block alone, charged as a message of its length.
      const allowed = (flags & Flags.STREAM_END) !== 0 && (flags & Flags.STREAM) !== 0
      if (allowed && this.#window !== undefined) this.#window.receive(messageCost(value.length))
      value = this.withoutMetadata(flags, value, allowed)
      if (value.length > 0)
        throw protocolError('a payload after the response metadata block of an end marker')
      const failed = deliverMetadata(this.onResponseMetadata, this.responseMetadata)
      if (failed) return this.abort(failed)
    }
    if (!(flags & (Flags.STREAM | Flags.STREAM_END | Flags.RESPONSE))) {
      throw protocolError(`flags 0x${flags.toString(16)} on a stream`)
    }
    if (this.#remoteEnded) throw protocolError(`a frame after the end of stream ${String(this.id)}`)
    const end = (flags & Flags.STREAM_END) !== 0 || !(flags & Flags.STREAM)
    // A bare end marker carries no message and costs no credit; a plain reply is one message.
    const isMessage = !(flags & Flags.STREAM_END) || value.length > 0 || !(flags & Flags.STREAM)
    if (isMessage) {
      const counted = (flags & Flags.STREAM) !== 0
      if (this.#window !== undefined) {
        if (counted) this.#window.receive(messageCost(value.length))
      } else if (
        this.#queuedBytes + value.length > this.conn.options.initialWindow &&
        this.#queue.length > 0
      ) {
        this.abort(
          new RpcError(
            Code.RESOURCE_EXHAUSTED,
            'stream queue full: the page reads slower than the server sends',
          ),
        )
        return
      }
      this.#queue.push(value)
      this.#queuedBytes += value.length
    }
    if (end) {
      this.#remoteEnded = true
      this.remoteEnd()
    }
    this.#wake()
  }

  /** The server ended its half: a stream is over, a session waits for ours too. */
  protected remoteEnd(): void {
    this.settle()
    this.endedCleanly()
  }

  /** The call is over without an error: its signal aborts with no reason of ours. */
  protected endedCleanly(): void {
    this.#ended.abort()
  }

  /** The next message, or undefined once the server's half ended; rejects with the call's error. */
  receive(): Promise<Uint8Array | undefined> {
    const message = this.tryReceive()
    if (message !== undefined) return Promise.resolve(message)
    if (this.#error !== undefined) return Promise.reject(this.#error)
    if (this.#remoteEnded) return Promise.resolve(undefined)
    if (this.#waiter !== undefined) {
      return Promise.reject(new RpcError(Code.FAILED_PRECONDITION, 'receive() is already waiting'))
    }
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject }
    })
  }

  /** A message if one is queued, else undefined (never waits). */
  tryReceive(): Uint8Array | undefined {
    if (this.#queue.length === 0) return undefined
    const message = this.#queue.shift()!
    this.#queuedBytes -= message.length
    if (this.#window !== undefined && !this.#remoteEnded && !this.done) {
      const grant = this.#window.consume(messageCost(message.length), this.#queue.length === 0)
      if (grant > 0)
        this.conn.write(encodeControl(this.id, { kind: ControlKind.WINDOW_UPDATE, bytes: grant }))
    }
    return message
  }

  protected finish(error: RpcError, dropQueued: boolean): void {
    if (this.#error !== undefined) return
    this.#error = error
    if (dropQueued) {
      this.#queue = []
      this.#queuedBytes = 0
    }
    this.settle()
    this.dropSends(error)
    this.#ended.abort(error)
    this.#wake()
  }

  /** Fails sends still waiting (sessions). */
  protected dropSends(_error: RpcError): void {}

  #wake(): void {
    const waiter = this.#waiter
    if (waiter === undefined) return
    if (this.#queue.length > 0) {
      this.#waiter = undefined
      waiter.resolve(this.tryReceive())
    } else if (this.#error !== undefined) {
      this.#waiter = undefined
      waiter.reject(this.#error)
    } else if (this.#remoteEnded) {
      this.#waiter = undefined
      waiter.resolve(undefined)
    }
  }
}

interface PendingSend {
  frame: Uint8Array
  cost: number
  resolve(): void
  reject(error: RpcError): void
}

/**
 * A bidirectional session: the server's half as in ReceivingCall, ours through a credit window
 * (`flow`) and a send queue bounded by `maxBufferedBytes` (a send past it fails with
 * RESOURCE_EXHAUSTED and is not sent; the end marker is never refused). Sends also wait while
 * the WebSocket holds more than `highWaterMark` bytes.
 */
export class SessionCall extends ReceivingCall {
  #sendWindow: SendWindow | undefined
  #pending: PendingSend[] = []
  #pendingBytes = 0
  #localEnded = false
  #pollScheduled = false
  #closing: Promise<void> | undefined

  /** How long close() waits for the server to end its half before cancelling, ms. */
  readonly #closeTimeout: number

  constructor(conn: WebConnection, id: FrameId, route: string, closeTimeout: number) {
    super(conn, id, route)
    this.#closeTimeout = closeTimeout
    if (this.extended && conn.has('flow')) this.#sendWindow = new SendWindow(conn.peerWindow)
  }

  get bufferedAmount(): number {
    return this.#pendingBytes
  }

  /** Both halves ended, or the session failed. */
  get ended(): boolean {
    return this.signal.aborted
  }

  get localEnded(): boolean {
    return this.#localEnded
  }

  override grant(bytes: number): void {
    this.#sendWindow?.grant(bytes)
    this.#pump()
  }

  send(data: Uint8Array | string): Promise<void> {
    if (this.error !== undefined) return Promise.reject(this.error)
    if (this.#localEnded)
      return Promise.reject(new RpcError(Code.FAILED_PRECONDITION, 'session already closed'))
    let frame: Uint8Array
    let cost: number
    try {
      const bytes = payloadBytes(data, 'message')
      frame = this.conn.frame(Flags.STREAM, this.id, '', bytes)
      cost = messageCost(bytes.length)
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#enqueue(frame, cost, false)
  }

  /** Ends our half (STREAM_END, in line after what waits) and waits up to closeTimeout for the server's. */
  close(): Promise<void> {
    this.#closing ??= this.#close(this.#closeTimeout)
    return this.#closing
  }

  async #close(timeout: number): Promise<void> {
    if (this.error !== undefined) return
    if (!this.#localEnded) {
      this.#localEnded = true
      const end = this.conn.frame(Flags.STREAM | Flags.STREAM_END, this.id, '', EMPTY)
      try {
        await this.#enqueue(end, messageCost(0), true)
      } catch {
        return
      }
    }
    if (this.remoteEnded || this.error !== undefined) return this.#bothEnded()
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.abort(
          new RpcError(Code.CANCELLED, `the server did not end the session within ${formatMs(timeout)}`),
        )
        resolve()
      }, timeout)
      this.signal.addEventListener(
        'abort',
        () => {
          clearTimeout(timer)
          resolve()
        },
        { once: true },
      )
    })
  }

  #enqueue(frame: Uint8Array, cost: number, end: boolean): Promise<void> {
    if (this.#pending.length === 0 && this.#mayGo(cost)) {
      this.conn.write(frame)
      if (end) this.#sentEnd()
      return Promise.resolve()
    }
    const max = this.conn.options.maxBufferedBytes
    if (!end && this.#pending.length > 0 && this.#pendingBytes + cost > max) {
      return Promise.reject(
        new RpcError(
          Code.RESOURCE_EXHAUSTED,
          `session send queue holds ${this.#pendingBytes} bytes; the limit is ${max} (maxBufferedBytes)`,
        ),
      )
    }
    return new Promise((resolve, reject) => {
      this.#pending.push({
        frame,
        cost,
        resolve: end
          ? () => {
              this.#sentEnd()
              resolve()
            }
          : resolve,
        reject,
      })
      this.#pendingBytes += cost
      this.#pollIfBackedUp()
    })
  }

  #mayGo(cost: number): boolean {
    if (this.conn.backedUp) return false
    return this.#sendWindow === undefined || this.#sendWindow.take(cost)
  }

  #pump = (): void => {
    this.#pollScheduled = false
    while (this.#pending.length > 0 && this.error === undefined) {
      const next = this.#pending[0]
      if (!this.#mayGo(next.cost)) break
      this.#pending.shift()
      this.#pendingBytes -= next.cost
      this.conn.write(next.frame)
      next.resolve()
    }
    this.#pollIfBackedUp()
  }

  /** Browsers have no drain event: while the WebSocket is backed up, look again shortly. */
  #pollIfBackedUp(): void {
    if (this.#pollScheduled || this.#pending.length === 0 || !this.conn.backedUp) return
    this.#pollScheduled = true
    setTimeout(this.#pump, BACKPRESSURE_POLL_MS)
  }

  #sentEnd(): void {
    if (this.remoteEnded) this.#bothEnded()
  }

  protected override remoteEnd(): void {
    if (this.#localEnded && this.#pending.length === 0) this.#bothEnded()
  }

  #bothEnded(): void {
    if (this.done) return
    this.settle()
    this.endedCleanly()
  }

  protected override dropSends(error: RpcError): void {
    const pending = this.#pending
    this.#pending = []
    this.#pendingBytes = 0
    for (const send of pending) send.reject(error)
  }
}

import {
  asBuffer,
  type Deadline,
  deadlines,
  type Extensions,
  type PeerInfo,
  payloadBytes,
  rejected,
  type Session,
  StreamReceiver,
  StreamSender,
} from '@srpc/core'
import { Code, encodeErrorValue, Flags, type FrameId, type Metadata, RpcError } from '@srpc/protocol'
import type { Job } from './concurrency-limiter'
import { Context, type ServerStream } from './context'
import type { Handler, HandlerResult } from './mux'
import { ServerSession } from './server-session'

export type CallKind = 'request' | 'session'

/** What a call needs from its connection. */
export interface CallHost {
  readonly peer: PeerInfo
  readonly streamHighWaterMark: number
  /** Bytes one stream or session may queue for sending (maxBufferedBytes). */
  readonly maxBufferedBytes: number
  /** Set once the server began a graceful shutdown. */
  readonly shutdownReason: RpcError | undefined
  send(flags: number, id: FrameId, value: Buffer): boolean
  /** False while the socket is backed up or closed. */
  readonly writable: boolean
  whenWritable(): Promise<void>
  /** Returns `bytes` of credit to the client for stream `id` (WINDOW_UPDATE). */
  grant(id: FrameId, bytes: number): void
  pauseReading(): void
  resumeReading(): void
  callFinished(call: ServerCall): void
  handlerFailed(call: ServerCall, error: unknown): void
}

const RESOLVED = Promise.resolve()
const EMPTY = Buffer.alloc(0)

/**
 * A server-stream chunk is framed as v1 peers frame it: RESPONSE|STREAM (0x06), the last one
 * with STREAM_END (0x0e). To a v1 client, STREAM without RESPONSE is a session message, not a
 * chunk of its call. Session messages stay STREAM (0x04) and STREAM|STREAM_END (0x0c).
 */
const CHUNK = Flags.RESPONSE | Flags.STREAM
const LAST_CHUNK = CHUNK | Flags.STREAM_END
const MESSAGE = Flags.STREAM
const LAST_MESSAGE = Flags.STREAM | Flags.STREAM_END

/**
 * The server's state for one call, stream or session. The connection feeds it frames; the
 * handler drives it through its Context. It sends at most one terminal frame (reply, last
 * chunk, error), and after cancellation it sends nothing at all.
 */
export class ServerCall implements Job {
  readonly id: FrameId
  readonly route: string
  readonly kind: CallKind
  readonly payload: Buffer
  readonly metadata: Metadata
  readonly deadline: number | undefined
  readonly deadlineEpoch: number | undefined
  readonly ctx: Context
  #host: CallHost
  #handler: Handler
  #controller: AbortController | undefined
  /** Behind ctx.shutdownSignal; created on first read, like #controller. */
  #shutdown: AbortController | undefined
  #abortReason: RpcError | undefined
  /** Our half is over: reply, last chunk or error sent, or the call was aborted. */
  #outputDone = false
  #streaming = false
  #handlerRunning = false
  #finished = false
  #release: (() => void) | undefined
  #deadlineEntry: Deadline | undefined
  #input: StreamReceiver | undefined
  #ext: Extensions
  /** The sending half of a stream or session: ordered, compressed, credit-aware. */
  #sender: StreamSender | undefined
  #session: ServerSession | undefined
  /** The error the call ended with (sent, or why it was aborted); undefined while it goes well. */
  #status: RpcError | undefined
  /** The reply sent, kept for interceptors (a reference, no copy). */
  replyValue: Buffer | undefined
  /** Request payload, then each session message: counted for interceptors. */
  messagesReceived: number
  /** Called once when the call is finished (interceptors wait for it). */
  onFinished: (() => void) | undefined

  constructor(
    host: CallHost,
    id: FrameId,
    route: string,
    kind: CallKind,
    payload: Buffer,
    metadata: Metadata,
    timeoutMs: number | undefined,
    handler: Handler,
    ext: Extensions,
  ) {
    this.#host = host
    this.#ext = ext
    this.id = id
    this.route = route
    this.kind = kind
    this.payload = payload
    this.metadata = metadata
    this.#handler = handler
    this.messagesReceived = kind === 'request' ? 1 : 0
    if (timeoutMs !== undefined) {
      this.deadline = performance.now() + timeoutMs
      this.deadlineEpoch = Date.now() + timeoutMs
      this.#deadlineEntry = deadlines.schedule(timeoutMs, () =>
        this.#expire(new RpcError(Code.DEADLINE_EXCEEDED, 'deadline exceeded')),
      )
    }
    if (kind === 'session') {
      this.#input = new StreamReceiver(ext, {
        highWaterMark: host.streamHighWaterMark,
        pauseReading: () => host.pauseReading(),
        resumeReading: () => host.resumeReading(),
        grant: (bytes) => host.grant(id, bytes),
      })
      this.#sender = this.#newSender()
    }
    this.ctx = new Context(this)
  }

  get peer(): PeerInfo {
    return this.#host.peer
  }

  get status(): RpcError | undefined {
    return this.#status
  }

  get streaming(): boolean {
    return this.#streaming
  }

  get finished(): boolean {
    return this.#finished
  }

  /** The reply, chunks or session messages handed to the connection. */
  get messagesSent(): number {
    return this.#sender ? this.#sender.messagesWritten : this.replyValue ? 1 : 0
  }

  /** Bytes of stream chunks or session messages queued and not yet handed to the socket. */
  get bufferedAmount(): number {
    return this.#sender?.bufferedAmount ?? 0
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController()
      if (this.#abortReason) this.#controller.abort(this.#abortReason)
    }
    return this.#controller.signal
  }

  /**
   * Created on first read: a call that never looks allocates nothing, and the server tells only
   * the calls that did (see shuttingDown). A call that starts after the shutdown began gets a
   * signal that is already aborted.
   */
  get shutdownSignal(): AbortSignal {
    if (!this.#shutdown) {
      this.#shutdown = new AbortController()
      const reason = this.#host.shutdownReason
      if (reason) this.#shutdown.abort(reason)
    }
    return this.#shutdown.signal
  }

  /** The server began a graceful shutdown. */
  shuttingDown(reason: RpcError): void {
    this.#shutdown?.abort(reason)
  }

  /** Job: skip queued calls nobody waits for. */
  get abandoned(): boolean {
    return this.#abortReason !== undefined
  }

  /** Job: runs the handler in a worker slot. */
  start(release: () => void): void {
    this.#release = release
    this.runHandler()
  }

  /** Job: could not run (deadline passed while queued). */
  reject(error: RpcError): void {
    this.fail(error)
    this.#finish()
  }

  /** An interceptor answered without running the handler: its value is the reply (unary only). */
  answer(value: Buffer): void {
    this.#handlerReturned(value)
  }

  runHandler(): void {
    this.#handlerRunning = true
    let result: ReturnType<Handler>
    try {
      result = this.#handler(this.ctx)
      if (
        result !== null &&
        typeof result === 'object' &&
        typeof (result as Promise<unknown>).then === 'function'
      ) {
        // Promise.resolve returns a native promise as it is, and tames a foreign thenable: it
        // settles once, and a then() that throws becomes a rejection instead of escaping.
        Promise.resolve(result as Promise<HandlerResult>).then(
          (value) => this.#handlerReturned(value as HandlerResult),
          (err) => this.#handlerThrew(err),
        )
        return
      }
    } catch (err) {
      this.#handlerThrew(err)
      return
    }
    this.#handlerReturned(result as HandlerResult)
  }

  reply(data: Uint8Array | string): Promise<void> {
    let payload: Buffer
    try {
      payload = payloadBytes(data, 'reply')
    } catch (err) {
      return this.#wrongType(err)
    }
    return this.#reply(payload)
  }

  #reply(payload: Buffer): Promise<void> {
    if (this.kind !== 'request') return misuse('reply() is for requests; a session uses sendMessage()')
    if (this.#streaming) return misuse('reply() after stream() was used')
    if (this.#outputDone) return this.#afterDone('reply() called twice')
    this.#outputDone = true
    const compressed = this.#ext.compress(payload)
    try {
      const written = compressed
        ? this.#host.send(Flags.RESPONSE | Flags.COMPRESSED, this.id, compressed)
        : this.#host.send(Flags.RESPONSE, this.id, payload)
      this.replyValue = payload
      return written ? RESOLVED : this.#host.whenWritable()
    } catch (err) {
      // Too large for the client: the call fails with that error instead of the connection.
      this.#outputDone = false
      this.fail(RpcError.from(err))
      return rejected(err)
    }
  }

  stream(): ServerStream {
    if (this.kind !== 'request') throw new RpcError(Code.FAILED_PRECONDITION, 'stream() is for requests')
    if (!this.#streaming) {
      this.#streaming = true
      this.#sender = this.#newSender()
    }
    return { writeChunk: (data, isLast = false) => this.#writeChunk(data, isLast) }
  }

  sendMessage(data: Uint8Array | string): Promise<void> {
    let bytes: Buffer
    try {
      bytes = payloadBytes(data, 'message')
    } catch (err) {
      return this.#wrongType(err)
    }
    if (this.kind !== 'session')
      return misuse('sendMessage() is for sessions; a request uses reply() or stream()')
    if (this.#outputDone) return this.#afterDone('the session is closed')
    return this.#sender!.send(MESSAGE, bytes)
  }

  /** The session as the one Session interface both ends share (`ctx.session()`). */
  session(): Session {
    if (this.kind !== 'session') throw new RpcError(Code.FAILED_PRECONDITION, 'session() is for sessions')
    this.#session ??= new ServerSession(this)
    return this.#session
  }

  /** Ends our half of a session now (the handler may go on reading); the end marker follows queued messages. */
  closeOutput(): Promise<void> {
    if (this.kind !== 'session') return misuse('close() is for sessions')
    if (this.#outputDone) return this.#abortReason ? rejected(this.#abortReason) : RESOLVED
    this.#outputDone = true
    return this.#sender!.send(LAST_MESSAGE, EMPTY)
  }

  receiveMessage(): Promise<Buffer | undefined> {
    if (!this.#input) return misuse('receiveMessage() is for sessions')
    return this.#input.queue.next()
  }

  tryReceiveMessage(): Buffer | undefined {
    if (!this.#input) throw new RpcError(Code.FAILED_PRECONDITION, 'tryReceiveMessage() is for sessions')
    return this.#input.queue.tryNext()
  }

  messages(): AsyncIterable<Buffer> {
    if (!this.#input) throw new RpcError(Code.FAILED_PRECONDITION, 'messages() is for sessions')
    return this.#input.queue
  }

  /** A client message arrived for this session. Throws PROTOCOL_ERROR if it broke flow control. */
  deliver(message: Buffer): void {
    this.messagesReceived++
    this.#input!.deliver(message)
  }

  /** The client granted more credit (WINDOW_UPDATE). */
  grant(bytes: number): void {
    this.#sender?.grant(bytes)
  }

  /** The client closed its half of the session. */
  endInput(): void {
    this.#input?.queue.end()
  }

  /** Sends an error frame unless our half is already over. */
  fail(error: RpcError): void {
    if (this.#outputDone) return
    this.#outputDone = true
    this.#status = error
    try {
      this.#host.send(Flags.ERROR, this.id, asBuffer(encodeErrorValue(error)))
    } catch {
      // A message too long for the client's frame limit: the code still reaches it.
      const short = new RpcError(error.code, 'error message too long to send')
      this.#host.send(Flags.ERROR, this.id, asBuffer(encodeErrorValue(short)))
    }
  }

  /** Stops the call: the client cancelled, the connection died, or the server is going away. Sends nothing. */
  abort(reason: RpcError): void {
    if (this.#abortReason) return
    this.#abortReason = reason
    // After a complete answer a late cancel changes nothing; before (or with chunks still queued) it is the outcome.
    if (!this.#outputDone || this.#sender?.waiting) this.#status ??= reason
    this.#outputDone = true
    this.#input?.queue.fail(reason)
    this.#sender?.fail(reason)
    this.#controller?.abort(reason)
    this.#clearDeadline()
    if (!this.#handlerRunning) this.#finish()
  }

  #expire(error: RpcError): void {
    this.#deadlineEntry = undefined
    this.fail(error)
    this.abort(error)
  }

  #writeChunk(data: Uint8Array | string, isLast: boolean): Promise<void> {
    let bytes: Buffer
    try {
      bytes = payloadBytes(data, 'chunk')
    } catch (err) {
      return this.#wrongType(err)
    }
    if (this.#outputDone) return this.#afterDone('the stream has ended')
    if (isLast) this.#outputDone = true
    // An empty last chunk is a bare end marker.
    return this.#sender!.send(isLast ? LAST_CHUNK : CHUNK, bytes)
  }

  #newSender(): StreamSender {
    const host = this.#host
    return new StreamSender(
      this.#ext,
      {
        write: (flags, payload) => host.send(flags, this.id, payload),
        writable: () => host.writable,
        whenWritable: () => host.whenWritable(),
      },
      host.maxBufferedBytes,
    )
  }

  /**
   * The handler gave us something that is not bytes: a bug in it, like a throw. The server's
   * `error` event gets the details; the client gets INTERNAL (the details stay here) unless our
   * half was already over. Then the call ends (its signal aborts), so a handler waiting on it
   * is not left hanging; a call whose half was over keeps the chunks still queued.
   */
  #wrongType(err: unknown): Promise<never> {
    this.#host.handlerFailed(this, err)
    if (!this.#outputDone) {
      this.fail(new RpcError(Code.INTERNAL, 'internal server error'))
      this.abort(err as RpcError)
    }
    return rejected(err)
  }

  #afterDone(what: string): Promise<void> {
    if (this.#abortReason) return rejected(this.#abortReason)
    return misuse(what)
  }

  #handlerReturned(value: HandlerResult): void {
    this.#handlerRunning = false
    // A value that is not bytes is a bug in the handler, whatever kind of call it was for.
    let result: Buffer | undefined
    if (value !== undefined && value !== null) {
      try {
        result = payloadBytes(value, 'handler return value')
      } catch (err) {
        // Our half ends with INTERNAL; the call finishes below.
        this.#wrongType(err)
      }
    }
    if (!this.#outputDone) {
      if (this.kind === 'session' || this.#streaming) {
        this.#outputDone = true
        // A bare end marker: no chunk or message, just the end of our half.
        this.#sender!.send(this.kind === 'session' ? LAST_MESSAGE : LAST_CHUNK, EMPTY).catch(() => {})
      } else if (result !== undefined) {
        this.#reply(result)
      } else {
        this.fail(new RpcError(Code.INTERNAL, 'handler finished without a reply'))
      }
    }
    // Chunks may still wait for credit (the end marker behind them): the call lives until they are out.
    if (this.#sender?.waiting) {
      this.#sender.settled().then(() => this.#finish())
      return
    }
    this.#finish()
  }

  #handlerThrew(err: unknown): void {
    this.#handlerRunning = false
    if (!this.#abortReason) {
      if (err instanceof RpcError) {
        this.fail(err)
      } else {
        this.#host.handlerFailed(this, err)
        this.fail(new RpcError(Code.INTERNAL, 'internal server error'))
      }
    }
    this.#finish()
  }

  #finish(): void {
    if (this.#finished) return
    this.#finished = true
    this.#clearDeadline()
    this.#sender?.fail(this.#abortReason ?? new RpcError(Code.CANCELLED, 'call finished'))
    // A handler may return with client messages still queued: they are dropped with the call.
    this.#input?.queue.fail(new RpcError(Code.CANCELLED, 'session ended'))
    const release = this.#release
    this.#release = undefined
    release?.()
    this.#host.callFinished(this)
    const onFinished = this.onFinished
    this.onFinished = undefined
    onFinished?.()
  }

  #clearDeadline(): void {
    deadlines.cancel(this.#deadlineEntry)
    this.#deadlineEntry = undefined
  }
}

function misuse(message: string): Promise<never> {
  return rejected(new RpcError(Code.FAILED_PRECONDITION, message))
}

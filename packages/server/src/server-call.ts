import {
  asBuffer,
  CallState,
  type Extensions,
  type PeerInfo,
  payloadBytes,
  rejected,
  type Session,
} from '@srpc/core'
import { Code, encodeErrorValue, Flags, type FrameId, type Metadata, RpcError } from '@srpc/protocol'
import type { CallHost, CallKind } from './call-host'
import type { Job } from './concurrency-limiter'
import { type Context, contextFor, type ServerStream } from './context'
import type { Handler, HandlerResult } from './mux'
import { type OpenedAs, openedAs } from './route-kind'
import { SessionCall } from './session-call'
import { StreamWriter } from './stream-writer'
import { replyWithResult, sendReply } from './unary-reply'

export type { CallHost, CallKind }

/**
 * What every call, stream or session shares: identity, the handler's run, the error frame and
 * the finish; its phase, deadline, signal and settling are core's CallState (a request starts
 * `remote-ended`, a session `open`; `failed` means stopped: client cancel, lost connection,
 * deadline, hard stop). The halves that differ by kind are beside it (unary-reply.ts,
 * stream-writer.ts, session-call.ts). It sends at most one terminal frame (reply, last chunk,
 * error), and after cancellation nothing at all.
 */
export class ServerCall extends CallState implements Job {
  readonly id: FrameId
  readonly route: string
  readonly kind: CallKind
  readonly payload: Buffer
  readonly metadata: Metadata
  readonly deadline: number | undefined
  readonly deadlineEpoch: number | undefined
  readonly ctx: Context
  readonly host: CallHost
  readonly ext: Extensions
  /**
   * The reply sent, kept for interceptors (a reference, no copy); set from the moment it is given
   * when it deflates off the event loop first (the call is `answered`), cleared if it never went.
   */
  replyValue: Buffer | undefined
  /** Request payload, then each session message: counted for interceptors. */
  messagesReceived: number
  /** Called once when the call is finished (interceptors wait for it). */
  onFinished: (() => void) | undefined
  /** How the client opened the call (route kinds are checked against it). */
  openedAs: OpenedAs = NOT_OPENED
  /** The response metadata that went out with the last frame (for interceptors). */
  sentMetadata: Metadata | undefined
  /** What the handler set for the response; created when it first asks (`ctx.responseMetadata`). */
  responseMetadata: Metadata | undefined
  #handler: Handler
  /** Behind ctx.shutdownSignal; created on first read, like `signal`. */
  #shutdown: AbortController | undefined
  #handlerRunning = false
  #release: (() => void) | undefined
  /** Our sending half: a session's, or a request's once it became a stream. */
  #writer: StreamWriter | undefined
  /** A session's two halves (undefined for a request). */
  #session: SessionCall | undefined
  #status: RpcError | undefined

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
    super(kind === 'request' ? 'remote-ended' : 'open')
    this.host = host
    this.ext = ext
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
      this.watch(timeoutMs, undefined)
    }
    if (kind === 'session') {
      this.#session = new SessionCall(this)
      this.#writer = this.#session.writer
    }
    this.ctx = contextFor(this)
  }

  get peer(): PeerInfo {
    return this.host.peer
  }

  /** The error the call ended with; undefined while it goes well. */
  get status(): RpcError | undefined {
    return this.#status
  }

  /** The request became a server stream (`ctx.stream()`). */
  get streaming(): boolean {
    return this.kind === 'request' && this.#writer !== undefined
  }

  /** The reply, chunks or session messages handed to the connection. */
  get messagesSent(): number {
    return this.#writer ? this.#writer.messagesWritten : this.replyValue ? 1 : 0
  }

  /** Our half is over, or the reply that ends it is deflating: nothing more may be sent. */
  get answered(): boolean {
    return this.localEnded || this.replyValue !== undefined
  }

  /** Bytes of stream chunks or session messages queued and not yet handed to the socket. */
  get bufferedAmount(): number {
    return this.#writer?.bufferedAmount ?? 0
  }

  /**
   * Created on first read: a call that never looks allocates nothing, and only those that did
   * are told (shuttingDown). A call starting after the shutdown began gets it already aborted.
   */
  get shutdownSignal(): AbortSignal {
    if (!this.#shutdown) {
      this.#shutdown = new AbortController()
      const reason = this.host.shutdownReason
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
    return this.error !== undefined
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
        this.#awaitHandler(result as Promise<HandlerResult>)
        return
      }
    } catch (err) {
      this.#handlerThrew(err)
      return
    }
    this.#handlerReturned(result as HandlerResult)
  }

  /**
   * An async handler: its outcome when it settles. Apart from runHandler, whose every call would
   * otherwise allocate the context these closures keep `this` in, sync handlers included.
   */
  #awaitHandler(result: Promise<HandlerResult>): void {
    // Promise.resolve returns a native promise as it is, and tames a foreign thenable: it
    // settles once, and a then() that throws becomes a rejection instead of escaping.
    Promise.resolve(result).then(
      (value) => this.#handlerReturned(value as HandlerResult),
      (err) => this.#handlerThrew(err),
    )
  }

  // --- what the handler calls, through its Context: checks of the call kind, then the half ---

  reply(data: Uint8Array | string): Promise<void> {
    let payload: Buffer
    try {
      payload = payloadBytes(data, 'reply')
    } catch (err) {
      return this.wrongType(err)
    }
    if (this.kind !== 'request') return misuse('reply() is for requests; a session uses sendMessage()')
    if (this.#writer) return misuse('reply() after stream() was used')
    return sendReply(this, payload)
  }

  stream(): ServerStream {
    if (this.kind !== 'request') throw new RpcError(Code.FAILED_PRECONDITION, 'stream() is for requests')
    this.#writer ??= new StreamWriter(this, 'chunks')
    const writer = this.#writer
    return { writeChunk: (data, isLast = false) => writer.write(data, isLast) }
  }

  sendMessage(data: Uint8Array | string): Promise<void> {
    if (this.#session) return this.#session.send(data)
    // The type is checked first, as for a session: a value that is not bytes is a handler bug.
    try {
      payloadBytes(data, 'message')
    } catch (err) {
      return this.wrongType(err)
    }
    return misuse('sendMessage() is for sessions; a request uses reply() or stream()')
  }

  /** The session as the one Session interface both ends share (`ctx.session()`). */
  session(): Session {
    return this.#sessionFor('session()').view()
  }

  /** Ends our half of a session now (the handler may go on reading); the end marker follows queued messages. */
  closeOutput(): Promise<void> {
    return this.#session ? this.#session.close() : misuse('close() is for sessions')
  }

  receiveMessage(): Promise<Buffer | undefined> {
    return this.#session ? this.#session.receive() : misuse('receiveMessage() is for sessions')
  }

  tryReceiveMessage(): Buffer | undefined {
    return this.#sessionFor('tryReceiveMessage()').tryReceive()
  }

  messages(): AsyncIterable<Buffer> {
    return this.#sessionFor('messages()').messages()
  }

  // --- what the connection calls ---

  /** A client message arrived for this session. Throws PROTOCOL_ERROR if it broke flow control. */
  deliver(message: Buffer): void {
    this.messagesReceived++
    this.#session!.deliver(message)
  }

  /** The client granted more credit (WINDOW_UPDATE). */
  grant(bytes: number): void {
    this.#writer?.grant(bytes)
  }

  /** The client closed its half of the session. */
  endInput(): void {
    this.endRemote()
    this.#session?.endInput()
  }

  /** Sends an error frame unless our half is already over. */
  fail(error: RpcError): void {
    if (!this.endLocal()) return
    // A reply still deflating is dropped: the error frame goes instead.
    this.replyValue = undefined
    this.#status = error
    try {
      this.host.send(Flags.ERROR, this.id, asBuffer(encodeErrorValue(error, this.ext.has('details'))))
    } catch {
      // A message too long for the client's frame limit: the code still reaches it.
      const short = new RpcError(error.code, 'error message too long to send')
      this.host.send(Flags.ERROR, this.id, asBuffer(encodeErrorValue(short)))
    }
  }

  /** Stops the call: the client cancelled, the connection died, or the server is going away. Sends nothing. */
  abort(reason: RpcError): void {
    // After a complete answer a late cancel changes nothing; before (or with chunks still queued) it is the outcome.
    const outcome = !this.localEnded || this.#writer?.waiting === true
    if (!this.failCall(reason)) return
    if (outcome) {
      this.#status ??= reason
      // A reply still deflating never goes.
      this.replyValue = undefined
    }
    if (!this.#handlerRunning) this.#finish()
  }

  /** The reply that deflated off the event loop went out, or was dropped: finishes a call whose handler returned. */
  replied(): void {
    if (!this.#handlerRunning) this.#finish()
  }

  // --- shared with the halves ---

  /**
   * The handler gave us something that is not bytes: a bug in it, like a throw. The server's
   * `error` event gets the details; the client gets INTERNAL (the details stay here) unless our
   * half was already over. Then the call ends (its signal aborts), so a handler waiting on it
   * is not left hanging; a call whose half was over keeps the chunks still queued.
   */
  wrongType(err: unknown): Promise<never> {
    this.host.handlerFailed(this, err)
    if (!this.answered) {
      this.fail(new RpcError(Code.INTERNAL, 'internal server error'))
      this.abort(err as RpcError)
    }
    return rejected(err)
  }

  /** A send after our half was over: the error if the call was stopped, else FAILED_PRECONDITION `what`. */
  afterDone(what: string): Promise<never> {
    return rejected(this.sendRefusal(what) ?? new RpcError(Code.FAILED_PRECONDITION, what))
  }

  /** This session's halves; FAILED_PRECONDITION naming `what` for a request. */
  #sessionFor(what: string): SessionCall {
    if (!this.#session) throw new RpcError(Code.FAILED_PRECONDITION, `${what} is for sessions`)
    return this.#session
  }

  /** The deadline passed: the client is told, the handler's signal aborts. */
  protected override stop(error: RpcError): void {
    this.fail(error)
    this.abort(error)
  }

  protected override deadlineMessage(): string {
    return 'deadline exceeded'
  }

  /** Stopped: the client's messages still queued and ours not yet sent are dropped. */
  protected override dropHalves(reason: RpcError): void {
    this.#session?.failInput(reason)
    this.#writer?.fail(reason)
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
        this.wrongType(err)
      }
    }
    if (!this.answered) {
      // A stream or session ends its half with a bare end marker; a request replies.
      if (this.#writer) this.#writer.end().catch(noop)
      else replyWithResult(this, result)
    }
    // The reply deflates off the event loop: the call finishes once it is written (replied()).
    if (!this.localEnded) return
    // Chunks may still wait for credit (the end marker behind them): the call lives until they are out.
    if (this.#writer?.waiting) {
      this.#writer.settled().then(() => this.#finish())
      return
    }
    this.#finish()
  }

  #handlerThrew(err: unknown): void {
    this.#handlerRunning = false
    if (!this.error) {
      if (err instanceof RpcError) {
        this.fail(err)
      } else {
        this.host.handlerFailed(this, err)
        this.fail(new RpcError(Code.INTERNAL, 'internal server error'))
      }
    }
    this.#finish()
  }

  #finish(): void {
    if (!this.settle()) return
    this.#writer?.fail(this.error ?? new RpcError(Code.CANCELLED, 'call finished'))
    // A handler may return with client messages still queued: they are dropped with the call.
    this.#session?.failInput(new RpcError(Code.CANCELLED, 'session ended'))
    const release = this.#release
    this.#release = undefined
    release?.()
    this.host.callFinished(this)
    const onFinished = this.onFinished
    this.onFinished = undefined
    onFinished?.()
  }
}

const NOT_OPENED: OpenedAs = openedAs('request', false, false)

function misuse(message: string): Promise<never> {
  return rejected(new RpcError(Code.FAILED_PRECONDITION, message))
}

function noop(): void {}

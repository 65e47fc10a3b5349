import { callReceiver, rejected, type Session, type StreamReceiver } from '@srpc/core'
import type { RpcError } from '@srpc/protocol'
import { StreamWriter, type WriterCall } from './stream-writer'

const RESOLVED = Promise.resolve()

/** What a session needs of its call, beyond what its writer needs. */
export interface SessionOwner extends WriterCall {
  readonly error: RpcError | undefined
  readonly signal: AbortSignal
}

/**
 * A session's two halves: the client's messages coming in (flow-controlled, bounded by
 * `streamHighWaterMark`) and ours going out (a StreamWriter of messages, 0x04 and 0x0c).
 */
export class SessionCall {
  readonly writer: StreamWriter
  #call: SessionOwner
  #input: StreamReceiver
  #view: ServerSession | undefined

  constructor(call: SessionOwner) {
    this.#call = call
    this.#input = callReceiver(call.host, call.id, call.ext)
    this.writer = new StreamWriter(call, 'messages')
  }

  /** `ctx.session()`: this session behind the Session interface both ends share. */
  view(): Session {
    this.#view ??= new ServerSession(this, this.#call)
    return this.#view
  }

  send(data: Uint8Array | string): Promise<void> {
    return this.writer.write(data, false)
  }

  /** Ends our half now (the handler may go on reading); the end marker follows queued messages. */
  close(): Promise<void> {
    const call = this.#call
    if (call.localEnded) return call.error ? rejected(call.error) : RESOLVED
    return this.writer.end()
  }

  receive(): Promise<Buffer | undefined> {
    return this.#input.queue.next()
  }

  tryReceive(): Buffer | undefined {
    return this.#input.queue.tryNext()
  }

  messages(): AsyncIterable<Buffer> {
    return this.#input.queue
  }

  /** A client message arrived. Throws PROTOCOL_ERROR if it broke flow control. */
  deliver(message: Buffer): void {
    this.#input.deliver(message)
  }

  /** The client closed its half. */
  endInput(): void {
    this.#input.queue.end()
  }

  /** Drops the client's messages still queued: readers get `reason`. */
  failInput(reason: RpcError): void {
    this.#input.queue.fail(reason)
  }
}

/** The server's half of a session behind the Session interface the client's ClientSession shares. */
class ServerSession implements Session {
  #session: SessionCall
  #call: SessionOwner

  constructor(session: SessionCall, call: SessionOwner) {
    this.#session = session
    this.#call = call
  }

  send(data: Uint8Array | string): Promise<void> {
    return this.#session.send(data)
  }

  receive(): Promise<Buffer | undefined> {
    return this.#session.receive()
  }

  messages(): AsyncIterable<Buffer> {
    return this.#session.messages()
  }

  /** Ends our half now (the client's receive() gets `undefined`); the handler may still read. */
  close(): Promise<void> {
    return this.#session.close()
  }

  get bufferedAmount(): number {
    return this.#session.writer.bufferedAmount
  }

  get signal(): AbortSignal {
    return this.#call.signal
  }
}

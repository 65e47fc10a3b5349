import { Code, type Metadata, RpcError } from '@srpc/protocol'
import type { ReceivingCall } from './calls'

const DONE: IteratorResult<Uint8Array, undefined> = Object.freeze({ done: true, value: undefined })

/** Makes a WebStream (its constructor is private: users get one from `callStream`). */
export let streamOf!: (open: () => Promise<ReceivingCall>) => WebStream

/**
 * A server stream as the page reads it: `for await (const chunk of stream)`. The call opens at
 * the first `next()`, where its errors surface too; `break` (or `return()`) cancels it on the
 * server, whose handler sees `ctx.signal` abort.
 */
export class WebStream implements AsyncIterableIterator<Uint8Array> {
  #open: () => Promise<ReceivingCall>
  #call: ReceivingCall | undefined
  #opening: Promise<ReceivingCall> | undefined
  #finished = false

  static {
    streamOf = (open) => new WebStream(open)
  }

  private constructor(open: () => Promise<ReceivingCall>) {
    this.#open = open
  }

  /** What the server set in `ctx.responseMetadata`, once the stream ended (servers with `response-metadata`). */
  get responseMetadata(): Metadata | undefined {
    return this.#call?.responseMetadata
  }

  [Symbol.asyncIterator](): this {
    return this
  }

  async next(): Promise<IteratorResult<Uint8Array, undefined>> {
    if (this.#finished) return DONE
    const call = this.#call ?? (await this.#start())
    try {
      const chunk = await call.receive()
      if (chunk === undefined) {
        this.#finished = true
        return DONE
      }
      return { done: false, value: chunk }
    } catch (err) {
      this.#finished = true
      throw err
    }
  }

  /** Stops reading and cancels the stream on the server if it still runs. */
  async return(): Promise<IteratorResult<Uint8Array, undefined>> {
    this.#finished = true
    const reason = new RpcError(Code.CANCELLED, 'stream cancelled by the client')
    if (this.#call) this.#call.abort(reason)
    else
      this.#opening?.then(
        (call) => call.abort(reason),
        () => {},
      )
    return DONE
  }

  #start(): Promise<ReceivingCall> {
    this.#opening ??= this.#open().then(
      (call) => {
        this.#call = call
        if (this.#finished) call.abort(new RpcError(Code.CANCELLED, 'stream cancelled by the client'))
        return call
      },
      (err) => {
        this.#finished = true
        throw err
      },
    )
    return this.#opening
  }
}

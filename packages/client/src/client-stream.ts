import { Code, type Metadata, RpcError } from '@srpc/protocol'
import type { StreamingCall } from './streaming-call'

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined }

/** A stream that opens its call with `open` on the first `next()` (the constructor is private: users never make one). */
export let streamOf!: (open: () => Promise<StreamingCall>) => ClientStream

/**
 * What `pool.callStream()` returns: an async iterator over the server's chunks. The request is
 * sent on the first `next()` (as with an async generator); leaving a `for await` early
 * (`break`, `return`, an exception) cancels the stream on the server.
 */
export class ClientStream implements AsyncIterableIterator<Buffer> {
  static {
    streamOf = (open) => new ClientStream(open)
  }

  #open: () => Promise<StreamingCall>
  #call: StreamingCall | undefined
  #opening: Promise<StreamingCall> | undefined
  #finished = false

  private constructor(open: () => Promise<StreamingCall>) {
    this.#open = open
  }

  /**
   * The metadata the server sent with the end of the stream (`ctx.responseMetadata`), once the
   * stream ended; undefined before, or when the server sent none.
   */
  get responseMetadata(): Metadata | undefined {
    return this.#call?.responseMetadata
  }

  [Symbol.asyncIterator](): this {
    return this
  }

  async next(): Promise<IteratorResult<Buffer, undefined>> {
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

  /** Stops iterating and cancels the stream on the server if it is still running. */
  async return(): Promise<IteratorResult<Buffer, undefined>> {
    this.#finished = true
    const reason = new RpcError(Code.CANCELLED, 'stream cancelled by the client')
    if (this.#call) this.#call.cancel(reason)
    else
      this.#opening?.then(
        (call) => call.cancel(reason),
        () => {},
      )
    return DONE
  }

  #start(): Promise<StreamingCall> {
    this.#opening ??= this.#open().then(
      (call) => {
        this.#call = call
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

import { Code, type Metadata, RpcError } from '@srpc/protocol'

/** What a server stream's iterator needs of its call: the next chunk, a way to stop, the trailers. */
export interface StreamSource<T> {
  /** The next chunk, or `undefined` once the server ended the stream; rejects with its error. */
  receive(): Promise<T | undefined>
  /** Ends the call from our side: the server is told to stop, readers fail with `reason`. */
  cancel(reason: RpcError): void
  /** What the server sent with the end of the stream, once it ended. */
  readonly responseMetadata: Metadata | undefined
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined })

/**
 * A server stream as `for await` reads it, for the Node pool and the browser client alike. The
 * call opens at the first `next()` (as with an async generator), where its errors surface too;
 * leaving the loop early (`break`, `return`, an exception) cancels it on the server, also while
 * it is still opening. Subclasses only name it (ClientStream, WebStream).
 */
export class CallStream<T> implements AsyncIterableIterator<T> {
  #open: () => Promise<StreamSource<T>>
  #call: StreamSource<T> | undefined
  #opening: Promise<StreamSource<T>> | undefined
  #finished = false

  protected constructor(open: () => Promise<StreamSource<T>>) {
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

  async next(): Promise<IteratorResult<T, undefined>> {
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
  async return(): Promise<IteratorResult<T, undefined>> {
    this.#finished = true
    // A call still opening is cancelled by #start once it is there.
    this.#call?.cancel(cancelledByClient())
    return DONE
  }

  #start(): Promise<StreamSource<T>> {
    this.#opening ??= this.#open().then(
      (call) => {
        this.#call = call
        if (this.#finished) call.cancel(cancelledByClient())
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

function cancelledByClient(): RpcError {
  return new RpcError(Code.CANCELLED, 'stream cancelled by the client')
}

import type { RpcError } from '@srpc/protocol'

interface Waiter {
  resolve(value: Buffer | undefined): void
  reject(err: RpcError): void
}

export interface MessageQueueOptions {
  /** Queued bytes above which `onOverflow` is called once; `onDrained` follows at half of it. */
  highWaterMark?: number
  /** The queue went over its high-water mark: the producer should stop (pause the socket). */
  onOverflow?: () => void
  /** The queue is back under half its high-water mark, or was closed while over it. */
  onDrained?: () => void
  /** The application took a message: the moment to grant the sender credit. */
  onConsume?: (message: Buffer) => void
}

/**
 * The receive side of a stream or session: messages in arrival order, read with `next()`,
 * `tryNext()` or `for await`. The queue does not refuse messages: its producer is bounded by
 * flow control, or, with a plain v1 peer, stops reading the socket on `onOverflow` and resumes
 * on `onDrained`, so what is queued stays within the high-water mark plus one socket read.
 * Concurrent readers are served first come, first served.
 */
export class MessageQueue implements AsyncIterable<Buffer> {
  #items: Buffer[] = []
  #head = 0
  #bytes = 0
  #waiters: Waiter[] = []
  #ended = false
  #error: RpcError | null = null
  #options: MessageQueueOptions
  #highWaterMark: number
  #overflowing = false

  constructor(options: MessageQueueOptions = {}) {
    this.#options = options
    this.#highWaterMark = options.highWaterMark ?? Number.POSITIVE_INFINITY
  }

  /** Messages waiting to be read. */
  get length(): number {
    return this.#items.length - this.#head
  }

  /** Bytes waiting to be read. */
  get bytes(): number {
    return this.#bytes
  }

  /** True once end() or fail() was called (messages may still be queued). */
  get closed(): boolean {
    return this.#ended || this.#error !== null
  }

  push(message: Buffer): void {
    if (this.closed) return
    const waiter = this.#waiters.shift()
    if (waiter) {
      waiter.resolve(message)
      this.#options.onConsume?.(message)
      return
    }
    this.#items.push(message)
    this.#bytes += message.length
    if (!this.#overflowing && this.#bytes > this.#highWaterMark) {
      this.#overflowing = true
      this.#options.onOverflow?.()
    }
  }

  /** No more messages will come: readers get the queued ones, then `undefined`. */
  end(): void {
    if (this.closed) return
    this.#ended = true
    for (const waiter of this.#waiters.splice(0)) waiter.resolve(undefined)
  }

  #drained(): void {
    if (!this.#overflowing) return
    this.#overflowing = false
    this.#options.onDrained?.()
  }

  /**
   * The stream failed: reads reject with `error`. By default queued messages are dropped from
   * view (we gave up on the call: a cancel, a deadline). With `keepQueued` (the peer or the link
   * failed) readers first get what had already arrived, as gRPC delivers messages before a
   * status; taking them grants no more credit.
   */
  fail(error: RpcError, options?: { keepQueued?: boolean }): void {
    if (this.#error) return
    this.#error = error
    if (options?.keepQueued !== true) {
      this.#items = []
      this.#head = 0
      this.#bytes = 0
    }
    this.#drained()
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error)
  }

  /** The next message, or `undefined` once the stream ended. */
  next(): Promise<Buffer | undefined> {
    const item = this.#shift()
    if (item !== undefined) return Promise.resolve(item)
    if (this.#error) return Promise.reject(this.#error)
    if (this.#ended) return Promise.resolve(undefined)
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }))
  }

  /** A queued message, or `undefined` if none is queued right now. Throws if the stream failed. */
  tryNext(): Buffer | undefined {
    const item = this.#shift()
    if (item === undefined && this.#error) throw this.#error
    return item
  }

  /**
   * Iterates the messages until the stream ends. A plain iterator rather than an async generator:
   * a message already queued costs one promise here, where a generator awaiting `next()` and
   * yielding cost three, and this is every message of a session's receive loop.
   */
  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    return new MessageIterator(this)
  }

  #shift(): Buffer | undefined {
    if (this.#head >= this.#items.length) return undefined
    const item = this.#items[this.#head]
    this.#items[this.#head++] = EMPTY
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
    if (this.#head === this.#items.length) {
      this.#items = []
      this.#head = 0
    }
    this.#bytes -= item.length
    if (this.#error !== null) return item
    if (this.#overflowing && this.#bytes <= this.#highWaterMark / 2) this.#drained()
    this.#options.onConsume?.(item)
    return item
  }
}

const EMPTY = Buffer.alloc(0)

const DONE: IteratorResult<Buffer> = Object.freeze({ done: true, value: undefined })
const toResult = (message: Buffer | undefined): IteratorResult<Buffer> =>
  message === undefined ? DONE : { done: false, value: message }

/** `for await` over a MessageQueue; once it ended, failed or was left (`return()`), it stays done. */
class MessageIterator implements AsyncIterator<Buffer> {
  #queue: MessageQueue | undefined

  constructor(queue: MessageQueue) {
    this.#queue = queue
  }

  next(): Promise<IteratorResult<Buffer>> {
    const queue = this.#queue
    if (queue === undefined) return Promise.resolve(DONE)
    let message: Buffer | undefined
    try {
      message = queue.tryNext()
    } catch (err) {
      this.#queue = undefined
      return Promise.reject(err)
    }
    if (message !== undefined) return Promise.resolve({ done: false, value: message })
    return queue.next().then(
      (next) => {
        if (next === undefined) this.#queue = undefined
        return toResult(next)
      },
      (err: unknown) => {
        this.#queue = undefined
        throw err
      },
    )
  }

  return(): Promise<IteratorResult<Buffer>> {
    this.#queue = undefined
    return Promise.resolve(DONE)
  }
}

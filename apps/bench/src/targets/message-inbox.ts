import { BoundedQueue } from '../util'

/** Turns pushed messages into `receive()` promises, for the raw and grpc session wrappers. */
export class MessageInbox {
  #queue: BoundedQueue<Buffer>
  #waiters = new BoundedQueue<{ resolve: (m: Buffer | undefined) => void; reject: (e: Error) => void }>(16)
  #ended = false
  #error: Error | undefined

  constructor(limit = 1_000_000) {
    this.#queue = new BoundedQueue(limit)
  }

  push(message: Buffer): void {
    const waiter = this.#waiters.shift()
    if (waiter) waiter.resolve(message)
    else this.#queue.push(message)
  }

  end(): void {
    this.#ended = true
    for (const waiter of this.#waiters.drain()) waiter.resolve(undefined)
  }

  fail(error: Error): void {
    if (this.#ended || this.#error) return
    this.#error = error
    for (const waiter of this.#waiters.drain()) waiter.reject(error)
  }

  receive(): Promise<Buffer | undefined> {
    const message = this.#queue.shift()
    if (message !== undefined) return Promise.resolve(message)
    if (this.#error) return Promise.reject(this.#error)
    if (this.#ended) return Promise.resolve(undefined)
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }))
  }
}

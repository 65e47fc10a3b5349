import type { EventEmitter } from 'node:events'

/** Resolves on 'drain'; rejects if the stream closes first (a plain once('drain') would wait forever). */
export function drained(stream: EventEmitter): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      stream.off('close', onClose)
      resolve()
    }
    const onClose = () => {
      stream.off('drain', onDrain)
      reject(new Error('stream closed while waiting for drain'))
    }
    stream.once('drain', onDrain)
    stream.once('close', onClose)
  })
}

/** Resolves with `promise`, or rejects after `ms` with `what` in the message. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code
    return code !== undefined && !err.message.includes(String(code)) ? `${code}: ${err.message}` : err.message
  }
  return String(err)
}

/**
 * A small first-in first-out queue with a bound: push beyond it throws, so a bug shows up as an
 * error instead of a slow leak.
 */
export class BoundedQueue<T> {
  #items: (T | undefined)[] = []
  #head = 0
  readonly limit: number

  constructor(limit: number) {
    this.limit = limit
  }

  get length(): number {
    return this.#items.length - this.#head
  }

  push(item: T): void {
    if (this.length >= this.limit) throw new Error(`queue bound of ${this.limit} exceeded`)
    this.#items.push(item)
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined
    const item = this.#items[this.#head]
    this.#items[this.#head++] = undefined
    if (this.#head === this.#items.length) {
      this.#items = []
      this.#head = 0
    } else if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
    return item
  }

  drain(): T[] {
    const items = this.#items.slice(this.#head) as T[]
    this.#items = []
    this.#head = 0
    return items
  }
}

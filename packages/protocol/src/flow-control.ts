import { Code } from './codes'
import { RpcError } from './rpc-error'

/** Default receive window per stream direction, in bytes (see docs/protocol.md for the measurement). */
export const DEFAULT_INITIAL_WINDOW = 1024 * 1024
/**
 * What one message costs in credit beyond its bytes, so that a flood of empty messages is
 * bounded too: the window limits bytes and, through this charge, the number of messages.
 */
export const MESSAGE_OVERHEAD = 64

/** Credit a message of `length` bytes takes. */
export function messageCost(length: number): number {
  return length + MESSAGE_OVERHEAD
}

/** Sends a stream may queue while it waits for credit before `send` fails with RESOURCE_EXHAUSTED. */
export const MAX_PENDING_SENDS = 4096

interface PendingSend {
  size: number
  resolve: () => void
  reject: (error: RpcError) => void
}

/**
 * The sending side of one stream's credit window. A message may go out while the credit is
 * positive; its size is then subtracted (credit may go negative, so a message larger than the
 * window still moves). The receiver's WINDOW_UPDATEs add credit back. Sends that find no
 * credit wait in order, at most MAX_PENDING_SENDS of them.
 */
export class SendWindow {
  #credit: number
  #pending: PendingSend[] = []
  #error: RpcError | undefined

  constructor(initialWindow: number) {
    this.#credit = initialWindow
  }

  get credit(): number {
    return this.#credit
  }

  get waiting(): number {
    return this.#pending.length
  }

  /** Takes credit for a message of `size` bytes if it may go now (and nothing is queued before it). */
  take(size: number): boolean {
    if (this.#credit <= 0 || this.#pending.length > 0 || this.#error) return false
    this.#credit -= size
    return true
  }

  /** Resolves, in order, when a message of `size` bytes may go; its credit is taken by then. */
  wait(size: number): Promise<void> {
    if (this.#error) return Promise.reject(this.#error)
    if (this.#pending.length >= MAX_PENDING_SENDS) {
      return Promise.reject(
        new RpcError(
          Code.RESOURCE_EXHAUSTED,
          `${MAX_PENDING_SENDS} sends already wait for credit: await each send`,
        ),
      )
    }
    return new Promise((resolve, reject) => {
      this.#pending.push({ size, resolve, reject })
    })
  }

  /** The receiver granted `bytes` more. */
  grant(bytes: number): void {
    this.#credit += bytes
    while (this.#credit > 0 && this.#pending.length > 0) {
      const next = this.#pending.shift()!
      this.#credit -= next.size
      next.resolve()
    }
  }

  /** The stream ended: every waiting send fails with `error`. */
  fail(error: RpcError): void {
    if (this.#error) return
    this.#error = error
    for (const pending of this.#pending.splice(0)) pending.reject(error)
  }
}

/**
 * The receiving side of one stream's credit window: checks that the peer keeps within the
 * credit it was given, and decides when to grant more. Credit is returned when the
 * application consumes a message, not when it arrives, so a reader that stops reading stops
 * its sender without stopping the connection.
 */
export class ReceiveWindow {
  readonly window: number
  #received = 0
  #granted = 0
  #consumed = 0

  constructor(window: number) {
    this.window = window
  }

  /** Accounts for an arriving message; throws PROTOCOL_ERROR if the sender had no credit for it. */
  receive(size: number): void {
    if (this.#received >= this.window + this.#granted) {
      throw new RpcError(
        Code.PROTOCOL_ERROR,
        `flow control violated: ${this.#received} bytes sent on a window of ${this.window + this.#granted}`,
      )
    }
    this.#received += size
  }

  /**
   * The application consumed `size` bytes. Returns how many bytes to grant the sender now
   * (0 while less than a quarter of the window is waiting to be returned, to batch updates).
   */
  consume(size: number): number {
    this.#consumed += size
    const returnable = this.#consumed - this.#granted
    if (returnable < this.window / 4) return 0
    this.#granted += returnable
    return returnable
  }
}

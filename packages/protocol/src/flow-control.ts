import { Code } from './codes'
import { RpcError } from './rpc-error'

/** Default receive window per stream direction, in bytes (see docs/protocol.md for the measurement). */
export const DEFAULT_INITIAL_WINDOW = 1024 * 1024
/**
 * How far a window may grow for a reader that keeps up. Measured in apps/bench (scenario d,
 * 2,000 × 64 KiB over loopback): a fixed 1 MiB window reached 0.47× raw TLS, 4 MiB 0.68×,
 * 16 MiB 0.88×.
 */
export const DEFAULT_MAX_WINDOW = 16 * 1024 * 1024
/**
 * What one message costs in credit beyond its bytes, so that a flood of empty messages is
 * bounded too: the window limits bytes and, through this charge, the number of messages.
 */
export const MESSAGE_OVERHEAD = 64

/** Credit a message of `length` bytes takes. */
export function messageCost(length: number): number {
  return length + MESSAGE_OVERHEAD
}

/**
 * Bytes a stream or session may queue for sending on top of what its credit window and the
 * socket take now; a send past it fails with RESOURCE_EXHAUSTED. Each message counts with its
 * MESSAGE_OVERHEAD, so a flood of empty messages is bounded too. 1 MiB matches the default
 * window: a sender that ignores its promises holds at most about one window in memory per
 * stream while its peer reads nothing.
 */
export const DEFAULT_MAX_BUFFERED = 1024 * 1024

/**
 * The sending side of one stream's credit window. A message may go out while the credit is
 * positive; its size is then subtracted (credit may go negative, so a message larger than the
 * window still moves). The receiver's WINDOW_UPDATEs add credit back. Waiting for credit is
 * the StreamSender's job: it queues, in order and bounded in bytes, what may not go yet.
 */
export class SendWindow {
  #credit: number

  constructor(initialWindow: number) {
    this.#credit = initialWindow
  }

  get credit(): number {
    return this.#credit
  }

  /** Takes credit for a message of `size` bytes if it may go now. */
  take(size: number): boolean {
    if (this.#credit <= 0) return false
    this.#credit -= size
    return true
  }

  /** The receiver granted `bytes` more. */
  grant(bytes: number): void {
    this.#credit += bytes
  }
}

/**
 * The receiving side of one stream's credit window: checks that the peer keeps within the
 * credit it was given, and decides when to grant more. Credit is returned when the
 * application consumes a message, not when it arrives, so a reader that stops reading stops
 * its sender without stopping the connection.
 *
 * The window tunes itself: when a grant is due and the application has already taken every
 * message (it waits for data, so the window, not the reader, is the limit), the window
 * doubles, up to `maxWindow`. A slow reader never has an empty queue when it grants, so its
 * window, and the memory the sender may fill, stays at the initial size.
 */
export class ReceiveWindow {
  readonly maxWindow: number
  #window: number
  #received = 0
  #consumed = 0
  /** initial window + every grant sent: the total the sender may have sent. */
  #allowed: number

  constructor(window: number, maxWindow = window) {
    this.maxWindow = Math.max(window, maxWindow)
    this.#window = window
    this.#allowed = window
  }

  /** The current window, between the initial size and maxWindow. */
  get window(): number {
    return this.#window
  }

  /** Accounts for an arriving message; throws PROTOCOL_ERROR if the sender had no credit for it. */
  receive(size: number): void {
    if (this.#received >= this.#allowed) {
      throw new RpcError(
        Code.PROTOCOL_ERROR,
        `flow control violated: ${this.#received} bytes sent on ${this.#allowed} bytes of credit`,
      )
    }
    this.#received += size
  }

  /**
   * The application consumed `size` bytes (`drained`: nothing else is queued). Returns how many
   * bytes to grant the sender now: 0 while less than a quarter of the window is waiting to be
   * returned, to batch updates.
   */
  consume(size: number, drained = false): number {
    this.#consumed += size
    if (this.#consumed + this.#window - this.#allowed < this.#window / 4) return 0
    if (drained && this.#window < this.maxWindow) this.#window = Math.min(this.#window * 2, this.maxWindow)
    const grant = this.#consumed + this.#window - this.#allowed
    this.#allowed += grant
    return grant
  }
}

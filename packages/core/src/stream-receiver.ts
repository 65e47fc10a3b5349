import { messageCost, ReceiveWindow } from '@srpc/protocol'
import type { Extensions } from './extensions'
import { MessageQueue } from './message-queue'

/** Bytes queued for one stream before a v1 connection stops reading (the default of both sides). */
export const DEFAULT_STREAM_HIGH_WATER_MARK = 1024 * 1024

export interface StreamReceiverHooks {
  /** Bytes queued before reading from the socket pauses (the safety net for v1 peers). */
  highWaterMark: number
  pauseReading(): void
  resumeReading(): void
  /** Send the peer `bytes` more credit (WINDOW_UPDATE) for this stream. */
  grant(bytes: number): void
}

/**
 * The receiving half of one stream or session, shared by client and server: messages queue
 * for the application; with flow control on, the sender is held to its credit and credit is
 * granted back as the application consumes; with a v1 peer, reading pauses past the
 * high-water mark instead.
 */
export class StreamReceiver {
  readonly queue: MessageQueue
  #window: ReceiveWindow | undefined

  constructor(ext: Extensions, hooks: StreamReceiverHooks) {
    const window = ext.flow ? new ReceiveWindow(ext.receiveWindow, ext.maxReceiveWindow) : undefined
    this.#window = window
    this.queue = new MessageQueue({
      // With flow control the window bounds the queue (a sender past it is a protocol error), so
      // one slow reader never pauses the connection; the high-water mark is for v1 peers only.
      highWaterMark: window ? Number.POSITIVE_INFINITY : hooks.highWaterMark,
      onOverflow: () => hooks.pauseReading(),
      onDrained: () => hooks.resumeReading(),
      onConsume: window
        ? (message) => {
            const grant = window.consume(messageCost(message.length), this.queue.length === 0)
            if (grant > 0 && !this.queue.closed) hooks.grant(grant)
          }
        : undefined,
    })
  }

  /** Queues a message; throws PROTOCOL_ERROR if the sender exceeded its credit. */
  deliver(message: Buffer): void {
    this.#window?.receive(messageCost(message.length))
    this.queue.push(message)
  }
}

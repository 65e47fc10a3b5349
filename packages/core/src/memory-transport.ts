import type { Transport, TransportHandlers, TransportPeer, TransportState } from './transport'

/**
 * Bytes one direction of a memory pair holds, not yet read by the other end, before `write()`
 * returns false: a socket's order of magnitude, so backpressure shows up in tests as it would
 * in production. As with a socket the bound is a signal: a writer that ignores it queues more.
 */
export const DEFAULT_MEMORY_HIGH_WATER_MARK = 64 * 1024

export interface MemoryTransportOptions {
  /** See DEFAULT_MEMORY_HIGH_WATER_MARK; bytes, per direction. */
  highWaterMark?: number
  /** How the server end describes its peer (what `ctx.peer` shows), besides `transport: 'memory'`. */
  clientPeer?: Omit<TransportPeer, 'transport'>
  /** How the client end describes its peer, besides `transport: 'memory'`. */
  serverPeer?: Omit<TransportPeer, 'transport'>
}

/**
 * Two connected in-memory transports, `[clientEnd, serverEnd]`: what one writes, the other
 * reads, in order, with no socket and no syscall. Delivery happens in a later event-loop turn
 * (setImmediate), never inside `write()`, so timers and I/O run between deliveries and two
 * chatty ends cannot starve the loop. Each write is copied, as the kernel would, so the writer
 * may reuse its buffer once `written` is called. `close()` ends a direction after what was
 * written; the other end then ends too, and both close. `destroy()` drops what is undelivered;
 * the other end sees an orderly end, or an ECONNRESET error when `destroy(err)` had one.
 */
export function memoryTransportPair(options: MemoryTransportOptions = {}): [Transport, Transport] {
  const highWaterMark = options.highWaterMark ?? DEFAULT_MEMORY_HIGH_WATER_MARK
  if (!Number.isSafeInteger(highWaterMark) || highWaterMark <= 0) {
    throw new RangeError(`highWaterMark must be a positive integer, got ${highWaterMark}`)
  }
  const client = new MemoryTransport(highWaterMark, { ...options.serverPeer, transport: 'memory' })
  const server = new MemoryTransport(highWaterMark, { ...options.clientPeer, transport: 'memory' })
  client.other = server
  server.other = client
  return [client, server]
}

interface Queued {
  chunk: Buffer
  written: ((err?: Error | null) => void) | undefined
}

const schedule: (task: () => void) => void =
  typeof setImmediate === 'function' ? (task) => setImmediate(task) : (task) => setTimeout(task, 0)

class MemoryTransport implements Transport {
  readonly peer: TransportPeer
  other!: MemoryTransport
  #highWaterMark: number
  #handlers: TransportHandlers | undefined
  #state: TransportState = 'open'
  /** Chunks the other end wrote that this end has not delivered yet, and their bytes. */
  #inbox: Queued[] = []
  #inboxBytes = 0
  #paused = false
  #scheduled = false
  /** A write of ours returned false: onDrain is owed once the other end has read everything. */
  #needDrain = false
  /** The other end closed its side: report onEnd after the inbox. */
  #peerEnded = false
  #endReported = false
  /** Our own end reached the other end (it reported onEnd), or the other end is gone. */
  #endDelivered = false
  /** The other end was destroyed; `error` is what this end reports. */
  #reset: { error: Error | undefined } | undefined
  #closeError: Error | undefined
  #closeReported = false

  constructor(highWaterMark: number, peer: TransportPeer) {
    this.#highWaterMark = highWaterMark
    this.peer = peer
  }

  get state(): TransportState {
    return this.#state
  }

  start(handlers: TransportHandlers): void {
    this.#handlers = handlers
    this.#schedule()
  }

  write(chunk: Uint8Array, written?: (err?: Error | null) => void): boolean {
    if (this.#state !== 'open') {
      if (written) schedule(() => written(new Error('write after the in-memory transport closed')))
      return false
    }
    const other = this.other
    other.#inbox.push({ chunk: Buffer.from(chunk), written })
    other.#inboxBytes += chunk.byteLength
    other.#schedule()
    if (other.#inboxBytes < this.#highWaterMark) return true
    this.#needDrain = true
    return false
  }

  cork(): void {}

  uncork(): void {}

  pause(): void {
    this.#paused = true
  }

  resume(): void {
    if (!this.#paused) return
    this.#paused = false
    this.#schedule()
  }

  close(): void {
    if (this.#state !== 'open') return
    this.#state = 'ending'
    this.other.#peerEnded = true
    this.other.#schedule()
  }

  destroy(error?: Error): void {
    if (this.#state === 'closed') return
    this.#state = 'closed'
    this.#closeError = error
    this.#dropInbox()
    const other = this.other
    if (other.#state !== 'closed' && other.#reset === undefined) {
      const reset =
        error === undefined
          ? undefined
          : Object.assign(new Error('the other end of the in-memory transport was destroyed'), {
              code: 'ECONNRESET',
              cause: error,
            })
      other.#reset = { error: reset }
      other.#dropInbox()
      other.#schedule()
    }
    this.#schedule()
  }

  #schedule(): void {
    if (this.#scheduled || this.#handlers === undefined) return
    this.#scheduled = true
    schedule(this.#run)
  }

  /** One delivery turn: data, then the end, then the close, each only after what precedes it. */
  #run = (): void => {
    this.#scheduled = false
    const handlers = this.#handlers!
    if (this.#state === 'closed') return this.#reportClose(handlers)
    if (this.#reset !== undefined) {
      if (this.#reset.error === undefined) this.#reportEnd(handlers)
      this.#finish(this.#reset.error)
      return this.#reportClose(handlers)
    }
    // handlers may pause or destroy this end: re-read the state (the getter) after each.
    while (this.#inbox.length > 0 && !this.#paused && this.state !== 'closed') {
      const { chunk, written } = this.#inbox.shift()!
      this.#inboxBytes -= chunk.length
      written?.()
      handlers.onData(chunk)
    }
    const other = this.other
    if (this.#inboxBytes === 0 && other.#needDrain && other.#state === 'open') {
      other.#needDrain = false
      other.#handlers?.onDrain()
    }
    if (this.#inbox.length > 0 || this.#paused || this.state === 'closed') return
    if (this.#peerEnded && !this.#endReported) {
      this.#reportEnd(handlers)
      other.#endDelivered = true
      other.#schedule()
    }
    if (this.#endReported && this.#endDelivered) {
      this.#finish(undefined)
      this.#reportClose(handlers)
    }
  }

  #reportEnd(handlers: TransportHandlers): void {
    if (this.#endReported) return
    this.#endReported = true
    handlers.onEnd()
    // Like a socket without allowHalfOpen: the end of the other side ends this one.
    this.close()
  }

  #finish(error: Error | undefined): void {
    if (this.#state === 'closed') return
    this.#state = 'closed'
    this.#closeError = error
  }

  #reportClose(handlers: TransportHandlers): void {
    if (this.#closeReported) return
    this.#closeReported = true
    handlers.onClose(this.#closeError)
  }

  /** Fails the write callbacks of everything not delivered to this end. */
  #dropInbox(): void {
    const dropped = this.#inbox
    this.#inbox = []
    this.#inboxBytes = 0
    for (const { written } of dropped) {
      if (written) schedule(() => written(new Error('the in-memory transport was destroyed')))
    }
  }
}

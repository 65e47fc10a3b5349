import { Code, DEFAULT_MAX_BUFFERED, Flags, messageCost, RpcError, SendWindow } from '@srpc/protocol'
import type { Extensions } from './extensions'

const RESOLVED = Promise.resolve()

/** Where a StreamSender's frames go: its connection, for one stream id. */
export interface SenderOutput {
  /** Hands one frame to the connection; false when the socket is now backed up. May throw (frame too large). */
  write(flags: number, payload: Buffer): boolean
  /** False while the socket is backed up or gone: sends then wait in the sender, not in the socket's buffer. */
  writable(): boolean
  /** Resolves when the socket can take more; rejects once the connection is gone. */
  whenWritable(): Promise<void>
}

interface QueuedSend {
  flags: number
  data: Buffer
  cost: number
  resolve: (sent: Promise<void>) => void
  reject: (error: unknown) => void
}

/**
 * The sending half of one stream or session, shared by client and server: frames leave in
 * the order `send` was called, compressed where that pays, each once the peer granted credit
 * for it (when flow control is on) and the socket is not backed up. A send that may not go
 * yet waits in this sender's queue, which is bounded in bytes (`maxBuffered`, counted as
 * credit is: length + MESSAGE_OVERHEAD); past the bound a send fails with RESOURCE_EXHAUSTED
 * and is not sent. The same bound holds without flow control (a v1 peer, or a session opened
 * before the connection's negotiation finished): there the socket alone holds sends back.
 * A send's promise resolves once its frame is handed to the socket and the socket is not
 * backed up.
 */
export class StreamSender {
  /** Messages handed to the connection so far (for interceptors' counts). */
  messagesWritten = 0
  #ext: Extensions
  #window: SendWindow | undefined
  #out: SenderOutput
  #maxBuffered: number
  /** Sends that may not go yet, in order, from #head on. */
  #queue: (QueuedSend | undefined)[] = []
  #head = 0
  /** What the queued sends cost, bytes: bufferedAmount. */
  #buffered = 0
  /** The promise of the last queued send, for settled(). */
  #tail: Promise<void> = RESOLVED
  /** A callback waits for the socket to drain (at most one). */
  #awaitingDrain = false
  /** A large payload is being deflated off the event loop: later sends wait behind it, in order. */
  #deflating = false
  #error: RpcError | undefined

  constructor(ext: Extensions, out: SenderOutput, maxBuffered = DEFAULT_MAX_BUFFERED) {
    this.#ext = ext
    this.#window = ext.flow ? new SendWindow(ext.sendWindow) : undefined
    this.#out = out
    this.#maxBuffered = maxBuffered
  }

  /** Bytes queued and not yet handed to the socket (each message counts MESSAGE_OVERHEAD more). */
  get bufferedAmount(): number {
    return this.#buffered
  }

  /** Sends queued and not yet handed to the socket. */
  get waiting(): number {
    return this.#queue.length - this.#head
  }

  /** Resolves when every send made so far has left (or failed). */
  settled(): Promise<void> {
    return this.waiting > 0 || this.#deflating ? this.#tail.then(noop, noop) : RESOLVED
  }

  send(flags: number, data: Buffer): Promise<void> {
    if (this.#error) return rejected(this.#error)
    const cost = messageCost(data.length)
    if (
      this.#head === this.#queue.length &&
      !this.#deflating &&
      this.#out.writable() &&
      (this.#window === undefined || this.#window.take(cost))
    ) {
      return this.#write(flags, data)
    }
    return this.#enqueue(flags, data, cost)
  }

  /** The peer granted `bytes` more credit. */
  grant(bytes: number): void {
    if (this.#window === undefined) return
    this.#window.grant(bytes)
    if (this.waiting > 0) this.#pump()
  }

  /** The stream is over: queued sends fail with `error`, later ones too. */
  fail(error: RpcError): void {
    if (this.#error) return
    this.#error = error
    const queue = this.#queue
    const head = this.#head
    this.#queue = []
    this.#head = 0
    this.#buffered = 0
    for (let i = head; i < queue.length; i++) queue[i]!.reject(error)
  }

  #enqueue(flags: number, data: Buffer, cost: number): Promise<void> {
    const buffered = this.#buffered
    // A message larger than the bound still goes when nothing waits (the frame limit governs
    // its size), and the end of a stream is never refused: it is the stream's last send.
    if (buffered > 0 && buffered + cost > this.#maxBuffered && (flags & Flags.STREAM_END) === 0) {
      return rejected(
        new RpcError(
          Code.RESOURCE_EXHAUSTED,
          `${buffered} bytes already wait to be sent, ${cost} more would pass maxBufferedBytes (${this.#maxBuffered}): await each send, or check bufferedAmount`,
        ),
      )
    }
    const promise = new Promise<void>((resolve, reject) => {
      this.#queue.push({ flags, data, cost, resolve, reject })
    })
    // Nobody may be listening (a send whose promise is dropped): failing it must stay quiet.
    promise.catch(noop)
    this.#buffered = buffered + cost
    this.#tail = promise
    // Without credit, a grant restarts the queue; behind a full socket, its drain does.
    if (!this.#out.writable()) this.#waitForDrain()
    return promise
  }

  /** Hands queued sends to the socket while it takes them and credit lasts. */
  #pump(): void {
    const queue = this.#queue
    while (this.#head < queue.length) {
      // A write can end the stream (the connection failed): fail() has rejected the rest then.
      if (this.#error !== undefined) return
      // A deflate on the pool started by the last write: its end pumps again.
      if (this.#deflating) return
      if (!this.#out.writable()) {
        this.#waitForDrain()
        break
      }
      const next = queue[this.#head]!
      if (this.#window !== undefined && !this.#window.take(next.cost)) break
      queue[this.#head++] = undefined
      this.#buffered -= next.cost
      next.resolve(this.#write(next.flags, next.data))
    }
    if (this.#head === queue.length) {
      queue.length = 0
      this.#head = 0
    } else if (this.#head > 1024 && this.#head * 2 > queue.length) {
      this.#queue = queue.slice(this.#head)
      this.#head = 0
    }
  }

  #waitForDrain(): void {
    if (this.#awaitingDrain) return
    this.#awaitingDrain = true
    this.#out.whenWritable().then(
      () => {
        this.#awaitingDrain = false
        if (this.waiting > 0) this.#pump()
      },
      (err: unknown) => {
        this.#awaitingDrain = false
        this.fail(RpcError.from(err))
      },
    )
  }

  #write(flags: number, data: Buffer): Promise<void> {
    // A metadata block (response metadata on a stream's end) is never compressed.
    const compressed = flags & Flags.METADATA ? undefined : this.#ext.compressMaybeAsync(data)
    if (compressed instanceof Promise) return this.#writeDeflated(flags, data, compressed)
    return this.#writeNow(flags, data, compressed)
  }

  /**
   * A large payload deflating on zlib's pool: nothing else of this stream goes until it is
   * written (its credit is taken and its bytes stay counted against the stream meanwhile).
   */
  #writeDeflated(flags: number, data: Buffer, deflating: Promise<Buffer | undefined>): Promise<void> {
    this.#deflating = true
    const sent = deflating.then((compressed) => {
      this.#deflating = false
      const written =
        this.#error !== undefined ? rejected(this.#error) : this.#writeNow(flags, data, compressed)
      if (this.waiting > 0) this.#pump()
      return written
    })
    sent.catch(noop)
    // The last send so far (a queued one is later, and set #tail itself): settled() waits for it.
    if (this.waiting === 0) this.#tail = sent
    return sent
  }

  #writeNow(flags: number, data: Buffer, compressed: Buffer | undefined): Promise<void> {
    try {
      const written = compressed
        ? this.#out.write(flags | Flags.COMPRESSED, compressed)
        : this.#out.write(flags, data)
      // A bare end marker (empty, STREAM_END) is not a message.
      if (data.length > 0 || !(flags & Flags.STREAM_END)) this.messagesWritten++
      return written ? RESOLVED : this.#out.whenWritable()
    } catch (err) {
      return rejected(err)
    }
  }
}

function noop(): void {}

/** A rejection that stays quiet if the caller never looks at it (a send whose promise is dropped). */
export function rejected(error: unknown): Promise<never> {
  const promise = Promise.reject(error)
  promise.catch(noop)
  return promise
}

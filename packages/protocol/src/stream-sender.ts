import type { Extensions } from './extensions'
import { Flags } from './flags'
import { messageCost, SendWindow } from './flow-control'
import type { RpcError } from './rpc-error'

const RESOLVED = Promise.resolve()

/**
 * The sending half of one stream or session, shared by client and server: frames leave in
 * the order `send` was called, compressed where that pays, each after the peer granted credit
 * for it (when flow control is on); the promise resolves once the frame is queued and the
 * socket is not backed up.
 */
export class StreamSender {
  #ext: Extensions
  #window: SendWindow | undefined
  #write: (flags: number, payload: Buffer) => boolean
  #whenWritable: () => Promise<void>
  #error: RpcError | undefined
  /** The last send that had to wait for credit. */
  #tail: Promise<void> | undefined

  constructor(
    ext: Extensions,
    write: (flags: number, payload: Buffer) => boolean,
    whenWritable: () => Promise<void>,
  ) {
    this.#ext = ext
    this.#window = ext.flow ? new SendWindow(ext.sendWindow) : undefined
    this.#write = write
    this.#whenWritable = whenWritable
  }

  /** Sends still waiting for credit. */
  get waiting(): number {
    return this.#window?.waiting ?? 0
  }

  /** Resolves when every send made so far has left (or failed). */
  settled(): Promise<void> {
    return this.waiting > 0 && this.#tail ? this.#tail.then(noop, noop) : RESOLVED
  }

  send(flags: number, data: Buffer): Promise<void> {
    const window = this.#window
    if (window !== undefined) {
      const cost = messageCost(data.length)
      if (!window.take(cost)) {
        this.#tail = window.wait(cost).then(() => this.#send(flags, data))
        return this.#tail
      }
    }
    return this.#send(flags, data)
  }

  /** The peer granted `bytes` more credit. */
  grant(bytes: number): void {
    this.#window?.grant(bytes)
  }

  /** The stream is over: sends waiting for credit fail with `error`, later ones too. */
  fail(error: RpcError): void {
    this.#error ??= error
    this.#window?.fail(error)
  }

  #send(flags: number, data: Buffer): Promise<void> {
    if (this.#error) return rejected(this.#error)
    const compressed = this.#ext.compress(data)
    try {
      const written = compressed
        ? this.#write(flags | Flags.COMPRESSED, compressed)
        : this.#write(flags, data)
      return written ? RESOLVED : this.#whenWritable()
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

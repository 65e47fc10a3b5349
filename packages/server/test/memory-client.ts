import { memoryTransportPair, type Transport } from '@srpc/core'
import { decodeErrorValue, encodeFrame, Flags, type Frame, FrameDecoder, type RpcError } from '@srpc/protocol'
import type { Server } from '../src/index'

/**
 * A plain v1 client over an in-memory transport handed to `server.accept()`: no socket, no TLS.
 * It sends raw frames and collects what the server sends back.
 */
export class MemoryClient {
  #transport: Transport
  #decoder = new FrameDecoder<Buffer>({ alloc: Buffer.allocUnsafe })
  #frames: Frame<Buffer>[] = []
  #waiters: (() => void)[] = []
  #closed = false
  #closeError: Error | undefined

  constructor(server: Server) {
    const [clientEnd, serverEnd] = memoryTransportPair()
    this.#transport = clientEnd
    clientEnd.start({
      onData: (chunk) => {
        this.#decoder.push(Buffer.from(chunk), (frame) => this.#frames.push(frame))
        this.#wake()
      },
      onDrain: () => {},
      onEnd: () => {},
      onClose: (error) => {
        this.#closed = true
        this.#closeError = error
        this.#wake()
      },
    })
    server.accept(serverEnd)
  }

  /** A request (REQUEST flag) for `route`. */
  call(id: number, route: string, value = ''): void {
    this.#transport.write(encodeFrame(Flags.REQUEST, id, route, Buffer.from(value)))
  }

  /** Waits (at most 2 s) for the next frame with `id`; undefined if the connection closed first. */
  async next(id: number): Promise<Frame<Buffer> | undefined> {
    const deadline = Date.now() + 2000
    for (;;) {
      const index = this.#frames.findIndex((frame) => frame.id === id)
      if (index >= 0) return this.#frames.splice(index, 1)[0]
      if (this.#closed) return undefined
      if (Date.now() > deadline) throw new Error(`no frame for id ${id} within 2 s`)
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve)
        setTimeout(resolve, 50)
      })
    }
  }

  /** The error frame for `id`, decoded; fails the test if anything else came. */
  async error(id: number): Promise<RpcError> {
    const frame = await this.next(id)
    if (frame === undefined) throw new Error(`connection closed before an answer to ${id}`)
    if (!(frame.flags & Flags.ERROR))
      throw new Error(`expected an error for ${id}, got 0x${frame.flags.toString(16)}`)
    return decodeErrorValue(frame.value)
  }

  /** Resolves once the server closed the connection (at most 2 s), with the transport's error. */
  async closed(): Promise<Error | undefined> {
    const deadline = Date.now() + 2000
    while (!this.#closed) {
      if (Date.now() > deadline) throw new Error('server did not close the connection')
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve)
        setTimeout(resolve, 50)
      })
    }
    return this.#closeError
  }

  close(): void {
    this.#transport.destroy()
  }

  #wake(): void {
    for (const waiter of this.#waiters.splice(0)) waiter()
  }
}

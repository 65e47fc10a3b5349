import { connect, type TLSSocket } from 'node:tls'
import {
  type Capabilities,
  ControlKind,
  decodeControl,
  encodeControl,
  encodeFrame,
  type Frame,
  FrameDecoder,
} from '@srpc/protocol'

/**
 * A client made of the frame codec and `tls.connect`: it speaks plain v1 unless a test makes
 * it do more (negotiate, misbehave, send raw bytes).
 */
export class RawClient {
  #socket: TLSSocket
  #decoder = new FrameDecoder<Buffer>({ alloc: Buffer.allocUnsafe })
  #frames: Frame<Buffer>[] = []
  #waiters: (() => void)[] = []

  constructor(socket: TLSSocket) {
    this.#socket = socket
    socket.on('data', (chunk: Buffer) => {
      try {
        this.#decoder.push(chunk, (frame) => this.#frames.push(frame))
      } catch {
        this.#socket.destroy()
      }
      for (const w of this.#waiters.splice(0)) w()
    })
  }

  static open(port: number, ca: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, ca }, () => resolve(new RawClient(socket)))
      socket.once('error', reject)
    })
  }

  send(flags: number, id: number | bigint, type: string, value: string): void {
    this.#socket.write(encodeFrame(flags, id, type, Buffer.from(value)))
  }

  /** Waits (at most 2 s) until `count` frames arrived, then returns them all. */
  async frames(count: number): Promise<Frame<Buffer>[]> {
    const deadline = Date.now() + 2000
    while (this.#frames.length < count) {
      if (Date.now() > deadline) throw new Error(`only ${this.#frames.length} of ${count} frames arrived`)
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve)
        setTimeout(resolve, 50)
      })
    }
    return this.#frames.splice(0, count)
  }

  sendRaw(bytes: Buffer): void {
    this.#socket.write(bytes)
  }

  /** Resolves when the server closed the connection (at most 2 s). */
  closed(): Promise<void> {
    if (this.#socket.destroyed || this.#socket.readableEnded) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('server did not close the connection')), 2000)
      this.#socket.once('close', () => {
        clearTimeout(timer)
        resolve()
      })
    })
  }

  /** Announces `features`, waits for the server's HELLO, confirms with HELLO_ACK. */
  async negotiate(features: string[], extra: Partial<Capabilities> = {}): Promise<Capabilities> {
    this.#socket.write(
      encodeControl(0, { kind: ControlKind.HELLO, capabilities: { version: 1, features, ...extra } }),
    )
    const [hello] = await this.frames(1)
    const message = decodeControl(hello)
    if (message?.kind !== ControlKind.HELLO) throw new Error('server did not answer HELLO')
    this.#socket.write(encodeControl(0, { kind: ControlKind.HELLO_ACK }))
    return message.capabilities
  }

  /**
   * Waits until a frame with `id` arrives ('answered'), the server closes the connection
   * ('closed'), or `timeoutMs` passes ('timeout'). Frames before it are dropped.
   */
  async until(id: number, timeoutMs = 2000): Promise<'answered' | 'closed' | 'timeout'> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const index = this.#frames.findIndex((f) => f.id === id)
      if (index >= 0) {
        this.#frames.splice(0, index + 1)
        return 'answered'
      }
      if (this.#socket.destroyed || this.#socket.readableEnded) return 'closed'
      if (Date.now() > deadline) return 'timeout'
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer)
          this.#socket.off('close', done)
          resolve()
        }
        const timer = setTimeout(done, 50)
        this.#waiters.push(done)
        this.#socket.once('close', done)
      })
    }
  }

  get socket(): TLSSocket {
    return this.#socket
  }

  close(): void {
    this.#socket.destroy()
  }
}

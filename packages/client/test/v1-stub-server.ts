import type { AddressInfo } from 'node:net'
import { createServer, type Server, type TLSSocket } from 'node:tls'
import {
  ControlKind,
  decodeControl,
  encodeControl,
  encodeFrame,
  Flags,
  type Frame,
  FrameDecoder,
} from '@srpc/protocol'
import { certificates } from './harness'

export type StubBehaviour = (frame: Frame<Buffer>, socket: TLSSocket) => void

/**
 * A server that knows only the v1 frame (or misbehaves on purpose): it never answers HELLO,
 * and hands every other frame to `behaviour`. For testing the client against peers it cannot
 * negotiate with.
 */
export class StubServer {
  #server: Server | undefined
  readonly sockets = new Set<TLSSocket>()
  readonly seen: Frame<Buffer>[] = []

  /** With `negotiate`, the stub answers HELLO like an srpc server offering compression. */
  constructor(
    readonly behaviour: StubBehaviour,
    readonly negotiate = false,
  ) {}

  async start(): Promise<string> {
    const { serverOptions } = await certificates()
    this.#server = createServer(serverOptions, (socket) => {
      this.sockets.add(socket)
      socket.on('close', () => this.sockets.delete(socket))
      socket.on('error', () => {})
      const decoder = new FrameDecoder<Buffer>({ alloc: Buffer.allocUnsafe })
      socket.on('data', (chunk: Buffer) => {
        try {
          decoder.push(chunk, (frame) => {
            this.seen.push(frame)
            if (frame.flags & Flags.CONTROL) {
              // A v1 peer would not understand it; a negotiating stub answers HELLO.
              if (this.negotiate && decodeControl(frame)?.kind === ControlKind.HELLO) {
                const capabilities = { version: 1, features: ['compression'], codecs: ['deflate'] }
                socket.write(encodeControl(0, { kind: ControlKind.HELLO, capabilities }))
              }
              return
            }
            this.behaviour(frame, socket)
          })
        } catch {
          socket.destroy()
        }
      })
    })
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve))
    return `127.0.0.1:${(this.#server.address() as AddressInfo).port}`
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy()
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()))
  }
}

/** The v1 behaviour of the reference server for /echo and /stream routes. */
export const v1Echo: StubBehaviour = (frame, socket) => {
  if (frame.type === '/stream') {
    // A v1 server frames chunks as RESPONSE|STREAM, the last with STREAM_END too.
    socket.write(encodeFrame(Flags.RESPONSE | Flags.STREAM, frame.id, '', Buffer.from('s1')))
    socket.write(
      encodeFrame(Flags.RESPONSE | Flags.STREAM | Flags.STREAM_END, frame.id, '', Buffer.from('s2')),
    )
  } else {
    socket.write(encodeFrame(Flags.RESPONSE, frame.id, '', frame.value))
  }
}

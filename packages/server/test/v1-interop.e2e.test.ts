import { connect, type TLSSocket } from 'node:tls'
import { encodeFrame, Flags, type Frame, FrameDecoder } from '@srpc/protocol'
import { selfSigned } from '@srpc/tlsutil'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Server } from '../src/index'

/** A client that knows only the v1 frame: no HELLO, no extensions. */
class V1Client {
  #socket: TLSSocket
  #decoder = new FrameDecoder()
  #frames: Frame[] = []
  #waiters: (() => void)[] = []

  constructor(socket: TLSSocket) {
    this.#socket = socket
    socket.on('data', (chunk: Buffer) => {
      this.#decoder.push(chunk, (frame) => this.#frames.push(frame))
      for (const w of this.#waiters.splice(0)) w()
    })
  }

  static open(port: number, ca: string): Promise<V1Client> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, ca }, () => resolve(new V1Client(socket)))
      socket.once('error', reject)
    })
  }

  send(flags: number, id: number | bigint, type: string, value: string): void {
    this.#socket.write(encodeFrame(flags, id, type, Buffer.from(value)))
  }

  /** Waits (at most 2 s) until `count` frames arrived, then returns them all. */
  async frames(count: number): Promise<Frame[]> {
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

  close(): void {
    this.#socket.destroy()
  }
}

let tls: Awaited<ReturnType<typeof selfSigned>>
beforeAll(async () => {
  tls = await selfSigned(['127.0.0.1'])
})

let server: Server | undefined
let client: V1Client | undefined
afterEach(async () => {
  client?.close()
  await server?.shutdown({ timeout: 100 })
})

async function start(): Promise<number> {
  server = new Server({ address: '127.0.0.1:0', tls: tls.serverOptions })
  server.mux.handle('/health', (ctx) => ctx.reply('{"status":"healthy"}'))
  server.mux.handle('/echo', (ctx) => ctx.reply(ctx.payload))
  server.mux.handle('/stream/time', async (ctx) => {
    const stream = ctx.stream()
    await stream.writeChunk('t0', false)
    await stream.writeChunk('t1', false)
    await stream.writeChunk('t2', true)
  })
  const { port } = await server.listen()
  return port
}

describe('a plain v1 client', () => {
  it('gets a RESPONSE frame with the same id for a REQUEST, and no extension frames', async () => {
    const port = await start()
    client = await V1Client.open(port, tls.ca)
    client.send(Flags.REQUEST, 7, '/health', '')
    client.send(Flags.REQUEST, 0xfedcba9876543210n, '/echo', 'top bit id')
    const [a, b] = await client.frames(2)
    expect(a).toMatchObject({ flags: Flags.RESPONSE, id: 7, type: '' })
    expect(a.value.toString()).toBe('{"status":"healthy"}')
    expect(b.flags).toBe(Flags.RESPONSE)
    expect(b.id).toBe(0xfedcba9876543210n)
    expect(b.value.toString()).toBe('top bit id')
  })

  it('gets STREAM frames in order and a STREAM_END on the last for a stream route', async () => {
    const port = await start()
    client = await V1Client.open(port, tls.ca)
    client.send(Flags.REQUEST, 1, '/stream/time', '')
    const frames = await client.frames(3)
    expect(frames.map((f) => [f.flags, f.id, f.value.toString()])).toEqual([
      [Flags.STREAM, 1, 't0'],
      [Flags.STREAM, 1, 't1'],
      [Flags.STREAM | Flags.STREAM_END, 1, 't2'],
    ])
  })

  it('gets an ERROR frame with a JSON code for an unknown route', async () => {
    const port = await start()
    client = await V1Client.open(port, tls.ca)
    client.send(Flags.REQUEST, 3, '/missing', '')
    const [frame] = await client.frames(1)
    expect(frame.flags).toBe(Flags.ERROR)
    expect(frame.id).toBe(3)
    expect(JSON.parse(frame.value.toString())).toEqual({
      code: 'NOT_FOUND',
      message: 'no handler for route /missing',
    })
  })

  it('is closed with a PROTOCOL_ERROR frame on id 0 after a wrong version byte', async () => {
    const port = await start()
    client = await V1Client.open(port, tls.ca)
    const frame = encodeFrame(Flags.REQUEST, 1, '/health', Buffer.alloc(0))
    frame[0] = 2
    client.sendRaw(frame)
    const [error] = await client.frames(1)
    expect(error.flags).toBe(Flags.ERROR)
    expect(error.id).toBe(0)
    expect(JSON.parse(error.value.toString()).code).toBe('PROTOCOL_ERROR')
    await client.closed()
    // The server still serves others.
    const other = await V1Client.open(port, tls.ca)
    other.send(Flags.REQUEST, 1, '/health', '')
    const [ok] = await other.frames(1)
    expect(ok.flags).toBe(Flags.RESPONSE)
    other.close()
  })
})

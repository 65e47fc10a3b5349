import { connect, type TLSSocket } from 'node:tls'
import { encodeFrame, Flags } from '@srpc/protocol'
import { selfSigned } from '@srpc/tlsutil'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Server } from '../src/index'
import { RawClient as V1Client } from './raw-client'

let tls: Awaited<ReturnType<typeof selfSigned>>
beforeAll(async () => {
  tls = await selfSigned(['127.0.0.1'])
})

let server: Server | undefined
let client: V1Client | undefined
let docsClient: DocsClient | undefined
afterEach(async () => {
  client?.close()
  docsClient?.close()
  await server?.shutdown({ timeout: 100 })
})

async function start(compression?: boolean): Promise<number> {
  server = new Server({ address: '127.0.0.1:0', tls: tls.serverOptions, compression })
  server.mux.handle('/health', (ctx) => ctx.reply('{"status":"healthy"}'))
  server.mux.handle('/echo', (ctx) => ctx.reply(ctx.payload))
  server.mux.handle('/stream/time', async (ctx) => {
    const stream = ctx.stream()
    await stream.writeChunk('t0', false)
    await stream.writeChunk('t1', false)
    await stream.writeChunk('t2', true)
  })
  server.mux.handle('/stream/unmarked', async (ctx) => {
    const stream = ctx.stream()
    await stream.writeChunk('t0')
    await stream.writeChunk('t1')
  })
  server.mux.handle('/stream/empty-last', async (ctx) => {
    const stream = ctx.stream()
    await stream.writeChunk('t0')
    await stream.writeChunk('', true)
  })
  server.mux.handle('/stream/many', async (ctx) => {
    const stream = ctx.stream()
    for (let i = 0; i < MANY; i++) await stream.writeChunk(chunkPayload(i), i === MANY - 1)
  })
  server.mux.handle('/stream/compressible', async (ctx) => {
    const stream = ctx.stream()
    await stream.writeChunk('a'.repeat(2000))
    await stream.writeChunk('b'.repeat(2000), true)
  })
  server.mux.handle('/chat', async (ctx) => {
    for await (const message of ctx.messages()) await ctx.sendMessage(message)
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

  it('gets each stream chunk as RESPONSE|STREAM (0x06) and the last as 0x0e, byte for byte', async () => {
    const port = await start()
    docsClient = await DocsClient.open(port, tls.ca)
    docsClient.request(1, '/stream/time')
    const frames = await docsClient.readUntilLast(1)
    expect(frames.map((f) => f.raw.toString('hex'))).toEqual([
      '01060000000000000001000000000002' + '7430', // RESPONSE|STREAM "t0"
      '01060000000000000001000000000002' + '7431', // RESPONSE|STREAM "t1"
      '010e0000000000000001000000000002' + '7432', // RESPONSE|STREAM|STREAM_END "t2"
    ])
  })

  it('gets a bare end marker as a 16-byte 0x0e frame, whether the handler just returns or writes an empty last chunk', async () => {
    const port = await start()
    docsClient = await DocsClient.open(port, tls.ca)
    docsClient.request(2, '/stream/unmarked')
    docsClient.request(3, '/stream/empty-last')
    const unmarked = await docsClient.readUntilLast(2)
    const emptyLast = await docsClient.readUntilLast(3)
    expect(unmarked.map((f) => f.raw.toString('hex'))).toEqual([
      '01060000000000000002000000000002' + '7430',
      '01060000000000000002000000000002' + '7431',
      '010e0000000000000002000000000000', // the end marker: header only, empty value
    ])
    expect(emptyLast.map((f) => f.raw.toString('hex'))).toEqual([
      '01060000000000000003000000000002' + '7430',
      '010e0000000000000003000000000000',
    ])
  })

  it(`reads all ${MANY} chunks of a stream in order, byte for byte, as docs/protocol.md frames them`, async () => {
    const port = await start()
    docsClient = await DocsClient.open(port, tls.ca)
    docsClient.request(0xfedcba9876543210n, '/stream/many')
    const frames = await docsClient.readUntilLast(0xfedcba9876543210n)
    expect(frames).toHaveLength(MANY)
    for (let i = 0; i < MANY; i++) {
      expect(frames[i].flags).toBe(i === MANY - 1 ? 0x0e : 0x06)
      expect(frames[i].type).toBe('')
      expect(frames[i].value.equals(chunkPayload(i))).toBe(true)
    }
  })

  it('gets a stream chunk as 0x06 and a session message as 0x04 on the same connection', async () => {
    const port = await start()
    client = await V1Client.open(port, tls.ca)
    client.send(Flags.REQUEST | Flags.STREAM, 1, '/stream/time', '')
    const chunks = await client.frames(3)
    client.send(Flags.STREAM, 2, '/chat', '')
    client.send(Flags.STREAM, 2, '', 'hello')
    const [message] = await client.frames(1)
    client.send(Flags.STREAM | Flags.STREAM_END, 2, '', '')
    const [end] = await client.frames(1)
    expect(chunks.map((f) => [f.flags, f.id, f.value.toString()])).toEqual([
      [Flags.RESPONSE | Flags.STREAM, 1, 't0'],
      [Flags.RESPONSE | Flags.STREAM, 1, 't1'],
      [Flags.RESPONSE | Flags.STREAM | Flags.STREAM_END, 1, 't2'],
    ])
    // A session message has neither REQUEST nor RESPONSE; its end is STREAM|STREAM_END.
    expect([message.flags, message.id, message.value.toString()]).toEqual([Flags.STREAM, 2, 'hello'])
    expect([end.flags, end.id, end.value.length]).toEqual([Flags.STREAM | Flags.STREAM_END, 2, 0])
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
    const frame = encodeFrame(Flags.REQUEST, 1, '/health', Buffer.alloc(0), Buffer.allocUnsafe)
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

describe('an srpc client that negotiated compression', () => {
  it('gets compressed stream chunks as 0x26 and the compressed last chunk as 0x2e (compression true)', async () => {
    const port = await start(true)
    client = await V1Client.open(port, tls.ca)
    await client.negotiate(['compression'], { codecs: ['deflate'] })
    client.send(Flags.REQUEST | Flags.STREAM, 1, '/stream/compressible', '')
    const frames = await client.frames(2)
    expect(frames.map((f) => f.flags)).toEqual([
      Flags.RESPONSE | Flags.STREAM | Flags.COMPRESSED,
      Flags.RESPONSE | Flags.STREAM | Flags.STREAM_END | Flags.COMPRESSED,
    ])
  })
})

const MANY = 200

/** Chunk `i`: its index in two bytes, then bytes derived from it; lengths from 2 bytes to past 64 KiB. */
function chunkPayload(i: number): Buffer {
  const length = i % 25 === 7 ? 70_000 + i : 2 + ((i * 131) % 3000)
  const payload = Buffer.alloc(length)
  payload.writeUInt16BE(i, 0)
  for (let k = 2; k < length; k++) payload[k] = (i * 31 + k) & 0xff
  return payload
}

interface WireFrame {
  /** The whole frame as it came off the socket: header, type and value. */
  raw: Buffer
  flags: number
  id: bigint
  type: string
  value: Buffer
}

/**
 * A plain v1 client written from docs/protocol.md alone: the 16-byte header of section 2 written
 * and read with Buffer methods, the flag values of section 3. No srpc code touches its bytes, so
 * what it reads is an independent check of the document and the server. It sends no HELLO.
 */
class DocsClient {
  #socket: TLSSocket
  #buffered: Buffer = Buffer.alloc(0)
  #frames: WireFrame[] = []
  #wake: (() => void) | undefined
  #error: Error | undefined

  private constructor(socket: TLSSocket) {
    this.#socket = socket
    socket.on('data', (chunk: Buffer) => this.#onData(chunk))
    socket.on('close', () => {
      this.#error ??= new Error('the server closed the connection')
      this.#wake?.()
    })
  }

  static open(port: number, ca: string): Promise<DocsClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, ca }, () => resolve(new DocsClient(socket)))
      socket.once('error', reject)
    })
  }

  /** Sends REQUEST (0x01) for `route` with an empty value: how a v1 client opens a stream. */
  request(id: number | bigint, route: string): void {
    const type = Buffer.from(route, 'utf8')
    const header = Buffer.alloc(16)
    header.writeUInt8(0x01, 0) // version
    header.writeUInt8(0x01, 1) // flags: REQUEST
    header.writeBigUInt64BE(BigInt(id), 2)
    header.writeUInt16BE(type.length, 10)
    header.writeUInt32BE(0, 12)
    this.#socket.write(Buffer.concat([header, type]))
  }

  /** The frames for `id` up to and including the one with STREAM_END (0x08); fails after 10 s. */
  async readUntilLast(id: number | bigint): Promise<WireFrame[]> {
    const wanted = BigInt(id)
    const deadline = Date.now() + 10_000
    const taken: WireFrame[] = []
    for (;;) {
      while (this.#frames.length > 0) {
        const frame = this.#frames.shift()!
        if (frame.id !== wanted) throw new Error(`unexpected frame for id ${frame.id}`)
        if (frame.flags & 0x10) throw new Error(`error frame: ${frame.value.toString()}`)
        taken.push(frame)
        if (frame.flags & 0x08) return taken
      }
      if (this.#error) throw this.#error
      if (Date.now() > deadline) throw new Error(`only ${taken.length} frames arrived`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100)
        this.#wake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
  }

  close(): void {
    this.#socket.destroy()
  }

  #onData(chunk: Buffer): void {
    let buffered = this.#buffered.length > 0 ? Buffer.concat([this.#buffered, chunk]) : chunk
    while (buffered.length >= 16) {
      if (buffered.readUInt8(0) !== 0x01) {
        this.#error = new Error(`version byte ${buffered.readUInt8(0)}`)
        break
      }
      const typeLength = buffered.readUInt16BE(10)
      const valueLength = buffered.readUInt32BE(12)
      const size = 16 + typeLength + valueLength
      if (buffered.length < size) break
      const raw = Buffer.from(buffered.subarray(0, size))
      this.#frames.push({
        raw,
        flags: raw.readUInt8(1),
        id: raw.readBigUInt64BE(2),
        type: raw.toString('utf8', 16, 16 + typeLength),
        value: raw.subarray(16 + typeLength),
      })
      buffered = buffered.subarray(size)
    }
    this.#buffered = buffered
    this.#wake?.()
  }
}

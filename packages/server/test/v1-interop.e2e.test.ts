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

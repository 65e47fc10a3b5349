import { connect as netConnect, type Socket } from 'node:net'
import { deflateRawSync } from 'node:zlib'
import { ControlKind, decodeControl, encodeFrame, Flags, type Frame } from '@srpc/protocol'
import { selfSigned } from '@srpc/tlsutil'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Server, type ServerOptions } from '../src/index'
import { RawClient } from './raw-client'

let tls: Awaited<ReturnType<typeof selfSigned>>
beforeAll(async () => {
  tls = await selfSigned(['127.0.0.1'])
})

const clients: RawClient[] = []
const sockets: Socket[] = []
let server: Server | undefined
afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  for (const s of sockets.splice(0)) s.destroy()
  await server?.shutdown({ timeout: 100 })
  server = undefined
})

async function start(options: Partial<ServerOptions> = {}): Promise<number> {
  server = new Server({ address: '127.0.0.1:0', tls: tls.serverOptions, ...options })
  server.mux.handle('/echo', (ctx) => ctx.reply(ctx.payload))
  server.mux.handle('/hang', () => new Promise(() => {}))
  server.mux.handle('/big', () => Buffer.alloc(64 * 1024, 1))
  const { port } = await server.listen()
  return port
}

async function client(port: number): Promise<RawClient> {
  const c = await RawClient.open(port, tls.ca)
  clients.push(c)
  return c
}

function errorOf(frame: Frame): { code: string; message: string; refused?: boolean } {
  expect(frame.flags & Flags.ERROR).toBe(Flags.ERROR)
  return JSON.parse(frame.value.toString())
}

/** Sends `bytes` and expects a PROTOCOL_ERROR frame on id 0, then the server closing the connection. */
async function expectProtocolError(port: number, bytes: Buffer, setup?: (c: RawClient) => Promise<void>) {
  const c = await client(port)
  await setup?.(c)
  c.sendRaw(bytes)
  const [frame] = await c.frames(1)
  expect(frame.id).toBe(0)
  expect(errorOf(frame).code).toBe('PROTOCOL_ERROR')
  await c.closed()
  return errorOf(frame).message
}

function frame(flags: number, id: number, type: string, value: string | Buffer = ''): Buffer {
  return encodeFrame(flags, id, type, typeof value === 'string' ? Buffer.from(value) : value)
}

describe('bad bytes before TLS', () => {
  it('drops non-TLS bytes on the TLS port and keeps serving others', async () => {
    const port = await start()
    const errors: Error[] = []
    server!.on('clientError', (e) => errors.push(e))
    const raw = netConnect(port, '127.0.0.1')
    sockets.push(raw)
    raw.on('error', () => {})
    raw.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    await new Promise<void>((resolve) => raw.once('close', () => resolve()))
    expect(errors.length).toBe(1)
    const c = await client(port)
    c.send(Flags.REQUEST, 1, '/echo', 'still here')
    expect((await c.frames(1))[0].value.toString()).toBe('still here')
  })

  it('drops a TCP client that never completes the TLS handshake after handshakeTimeout', async () => {
    const port = await start({ handshakeTimeout: 300 })
    const raw = netConnect(port, '127.0.0.1')
    sockets.push(raw)
    raw.on('error', () => {})
    const opened = performance.now()
    await new Promise<void>((resolve) => raw.once('close', () => resolve()))
    const after = performance.now() - opened
    expect(after).toBeGreaterThanOrEqual(250)
    expect(after).toBeLessThan(1500)
  })
})

describe('protocol violations close only the offending connection', () => {
  it('a wrong version byte', async () => {
    const port = await start()
    const bytes = frame(Flags.REQUEST, 1, '/echo')
    bytes[0] = 9
    expect(await expectProtocolError(port, bytes)).toContain('version 9')
  })

  it('a header announcing a 4 GiB value fails as soon as the 16 header bytes arrive', async () => {
    const port = await start()
    const header = Buffer.alloc(16)
    header[0] = 1
    header[1] = Flags.REQUEST
    header.writeUInt32BE(1, 6)
    header.writeUInt32BE(0xffffffff, 12)
    expect(await expectProtocolError(port, header)).toContain('exceeds the limit')
  })

  it('a route longer than maxRouteLength', async () => {
    const port = await start({ maxRouteLength: 64 })
    expect(await expectProtocolError(port, frame(Flags.REQUEST, 1, `/${'r'.repeat(100)}`))).toContain('type')
  })

  it('a route that is not UTF-8', async () => {
    const port = await start()
    const bytes = frame(Flags.REQUEST, 1, '/ab')
    bytes[17] = 0xff
    expect(await expectProtocolError(port, bytes)).toContain('UTF-8')
  })

  it('a RESPONSE sent by a client', async () => {
    const port = await start()
    await expectProtocolError(port, frame(Flags.RESPONSE, 1, ''))
  })

  it('extension bits the client never negotiated', async () => {
    const port = await start()
    await expectProtocolError(port, frame(Flags.REQUEST | Flags.COMPRESSED, 1, '/echo', deflateRawSync('x')))
    await expectProtocolError(port, frame(Flags.REQUEST | Flags.METADATA, 1, '/echo', Buffer.alloc(4)))
  })

  it('a STREAM frame for a session that was never opened', async () => {
    const port = await start()
    expect(await expectProtocolError(port, frame(Flags.STREAM, 42, '', 'hello'))).toContain('unknown session')
  })

  it('a duplicate id for a call in flight', async () => {
    const port = await start()
    const message = await expectProtocolError(port, frame(Flags.REQUEST, 5, '/hang'), async (c) => {
      c.send(Flags.REQUEST, 5, '/hang', '')
      await new Promise((r) => setTimeout(r, 30))
    })
    expect(message).toContain('already in use')
  })

  it('a frame whose flags mean nothing', async () => {
    const port = await start()
    await expectProtocolError(port, frame(0, 1, '/echo'))
  })

  it('a truncated frame followed by EOF closes that connection quietly', async () => {
    const port = await start()
    const c = await client(port)
    c.sendRaw(frame(Flags.REQUEST, 1, '/echo', 'abcdef').subarray(0, 20))
    c.socket.end()
    await c.closed()
    const other = await client(port)
    other.send(Flags.REQUEST, 1, '/echo', 'ok')
    expect((await other.frames(1))[0].value.toString()).toBe('ok')
  })

  it('while a second connection under load sees zero failures', async () => {
    const port = await start()
    const good = await client(port)
    const total = 2000
    for (let i = 1; i <= total; i++) good.send(Flags.REQUEST, i, '/echo', `m${i}`)
    const attacks = [
      Buffer.from('garbage garbage garbage garbage!'),
      frame(Flags.RESPONSE, 1, ''),
      frame(Flags.STREAM, 99, '', 'x'),
    ]
    await Promise.all(attacks.map((bytes) => expectProtocolError(port, bytes)))
    const replies = await good.frames(total)
    expect(replies.every((f) => f.flags === Flags.RESPONSE)).toBe(true)
    expect(new Set(replies.map((f) => f.value.toString())).size).toBe(total)
  })
})

describe('extension abuse', () => {
  it('answers a zip bomb with RESOURCE_EXHAUSTED for that call and keeps the connection', async () => {
    const port = await start({ maxFrameSize: 1024 * 1024 })
    const c = await client(port)
    const caps = await c.negotiate(['compression'], { codecs: ['deflate'] })
    expect(caps.codecs).toEqual(['deflate'])
    const bomb = deflateRawSync(Buffer.alloc(256 * 1024 * 1024))
    expect(bomb.length).toBeLessThan(512 * 1024)
    c.sendRaw(frame(Flags.REQUEST | Flags.COMPRESSED, 1, '/echo', bomb))
    c.send(Flags.REQUEST, 2, '/echo', 'after the bomb')
    const [a, b] = await c.frames(2)
    expect(a.id).toBe(1)
    expect(errorOf(a).code).toBe('RESOURCE_EXHAUSTED')
    expect(b.value.toString()).toBe('after the bomb')
  })

  it('refuses calls past maxConcurrentStreams with RESOURCE_EXHAUSTED marked refused', async () => {
    const port = await start({ maxConcurrentStreams: 2 })
    const c = await client(port)
    const caps = await c.negotiate(['cancel'])
    expect(caps.maxConcurrentStreams).toBe(2)
    c.send(Flags.REQUEST, 1, '/hang', '')
    c.send(Flags.REQUEST, 2, '/hang', '')
    c.send(Flags.REQUEST, 3, '/echo', 'one too many')
    const [refusal] = await c.frames(1)
    expect(refusal.id).toBe(3)
    expect(errorOf(refusal)).toMatchObject({ code: 'RESOURCE_EXHAUSTED', refused: true })
  })
})

describe('connection limits', () => {
  it('tells a connection past maxConnections RESOURCE_EXHAUSTED and closes it', async () => {
    const port = await start({ maxConnections: 2 })
    await client(port)
    await client(port)
    const third = await client(port)
    const [frame0] = await third.frames(1)
    expect(frame0.id).toBe(0)
    expect(errorOf(frame0).code).toBe('RESOURCE_EXHAUSTED')
    await third.closed()
  })

  it('closes a v1 connection that stays idle past idleTimeout, and says GOAWAY to an srpc one', async () => {
    const port = await start({ idleTimeout: 200 })
    const v1 = await client(port)
    v1.send(Flags.REQUEST, 1, '/echo', 'x')
    await v1.frames(1)
    const started = performance.now()
    await v1.closed()
    expect(performance.now() - started).toBeLessThan(1000)
    const modern = await client(port)
    await modern.negotiate(['goaway'])
    const [goaway] = await modern.frames(1)
    expect(decodeControl(goaway)?.kind).toBe(ControlKind.GOAWAY)
  })

  it('stops reading from a client that never reads its replies, so memory stays bounded', async () => {
    const port = await start()
    const c = await client(port)
    c.socket.pause() // never read what the server sends
    const rssBefore = process.memoryUsage().rss
    // Each 1 KiB request asks for a 64 KiB reply: 100,000 of them would be 6.4 GiB of replies.
    const padding = Buffer.alloc(1024)
    let sent = 0
    let stalled = false
    const until = performance.now() + 10_000
    while (sent < 100_000 && performance.now() < until) {
      sent++
      if (!c.socket.write(frame(Flags.REQUEST, sent, '/big', padding))) {
        // Wait for the server to read more; if it does not within 500 ms, it has stopped reading us.
        stalled = !(await Promise.race([
          new Promise<boolean>((r) => c.socket.once('drain', () => r(true))),
          new Promise<boolean>((r) => setTimeout(() => r(false), 500)),
        ]))
        if (stalled) break
      }
    }
    expect(stalled).toBe(true)
    expect(sent).toBeLessThan(100_000)
    // What the server holds is bounded by its socket buffers and one read's worth of replies.
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(256 * 1024 * 1024)
  })
})

import { request } from 'node:https'
import { type TLSSocket, connect as tlsConnect } from 'node:tls'
import { Code, encodeFrame, Flags, type Frame, FrameDecoder, RpcError } from '@srpc/protocol'
import { selfSigned } from '@srpc/tlsutil'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { Server, type ServerOptions, type WebSocketListenOptions } from '../src/index'

let tls: Awaited<ReturnType<typeof selfSigned>>
beforeAll(async () => {
  tls = await selfSigned(['127.0.0.1'])
})

const sockets: Array<WebSocket | TLSSocket> = []
/** Chunks the /flood handler got out (each 64 KiB). */
let flooded = 0
let server: Server | undefined
afterEach(async () => {
  for (const s of sockets.splice(0)) s instanceof WebSocket ? s.terminate() : s.destroy()
  await server?.shutdown({ timeout: 100 })
  server = undefined
})

async function start(
  options: Partial<ServerOptions> = {},
  listen: WebSocketListenOptions = {},
): Promise<string> {
  server = new Server({ address: '127.0.0.1:0', tls: tls.serverOptions, ...options })
  server.handle('/echo', (ctx) => ctx.payload)
  server.handle('/flood', async (ctx) => {
    const stream = ctx.stream()
    const chunk = Buffer.alloc(64 * 1024, 1)
    for (let i = 0; i < 10_000 && !ctx.signal.aborted; i++) {
      await stream.writeChunk(chunk)
      flooded++
    }
  })
  server.on('error', () => {})
  const { url } = await server.listenWebSocket(listen)
  return url
}

/** A plain v1 srpc client over a raw `ws` socket: frames in binary messages, decoded as they come. */
class RawWebSocket {
  readonly ws: WebSocket
  readonly frames: Frame[] = []
  readonly closed: Promise<{ code: number }>
  #decoder = new FrameDecoder()
  #waiters: Array<() => void> = []

  private constructor(ws: WebSocket) {
    this.ws = ws
    ws.on('message', (data: Buffer) => {
      this.#decoder.push(new Uint8Array(data), (frame) => this.frames.push(frame))
      for (const wake of this.#waiters.splice(0)) wake()
    })
    this.closed = new Promise((resolve) => ws.on('close', (code) => resolve({ code })))
  }

  static open(url: string, headers: Record<string, string> = {}): Promise<RawWebSocket> {
    // Bounded: a server that never answers the upgrade fails the test here, not at its timeout.
    const ws = new WebSocket(url, { ca: tls.ca, headers, handshakeTimeout: 5000 })
    sockets.push(ws)
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new RawWebSocket(ws)))
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)))
      ws.once('error', reject)
    })
  }

  send(bytes: Uint8Array): void {
    this.ws.send(bytes)
  }

  async next(count: number, timeout = 3000): Promise<Frame[]> {
    const deadline = Date.now() + timeout
    while (this.frames.length < count) {
      if (Date.now() > deadline) throw new Error(`only ${this.frames.length} of ${count} frames arrived`)
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve)
        setTimeout(resolve, 50)
      })
    }
    return this.frames.splice(0, count)
  }
}

const request1 = (id: number, route: string, value: string | Uint8Array) =>
  encodeFrame(Flags.REQUEST, id, route, typeof value === 'string' ? new TextEncoder().encode(value) : value)

/** A good connection served alongside the hostile ones: every call right. */
async function expectServed(url: string, calls = 20): Promise<void> {
  const good = await RawWebSocket.open(url)
  for (let i = 1; i <= calls; i++) good.send(request1(i, '/echo', `call ${i}`))
  const replies = await good.next(calls)
  expect(replies.map((f) => new TextDecoder().decode(f.value))).toEqual(
    Array.from({ length: calls }, (_, i) => `call ${i + 1}`),
  )
  good.ws.close()
}

function errorCode(frame: Frame): string {
  expect(frame.flags & Flags.ERROR).toBe(Flags.ERROR)
  return JSON.parse(new TextDecoder().decode(frame.value)).code
}

describe('listenWebSocket: origins and limits before the upgrade', () => {
  it('refuses a foreign Origin with 403, lets an allowed one and a client without Origin in', async () => {
    const url = await start({}, { allowedOrigins: ['https://app.example'] })
    let accepted = 0
    server!.on('connection', () => accepted++)
    await expect(RawWebSocket.open(url, { origin: 'https://evil.example' })).rejects.toThrow('HTTP 403')
    const allowed = await RawWebSocket.open(url, { origin: 'https://app.example' })
    allowed.send(request1(1, '/echo', 'ok'))
    expect((await allowed.next(1))[0].flags).toBe(Flags.RESPONSE)
    await expectServed(url)
    expect(accepted).toBe(2)
  })

  it('allows only the same origin by default', async () => {
    const url = await start()
    const { host } = new URL(url)
    await expect(RawWebSocket.open(url, { origin: 'https://other.example' })).rejects.toThrow('HTTP 403')
    const same = await RawWebSocket.open(url, { origin: `https://${host}` })
    same.send(request1(1, '/echo', 'ok'))
    expect((await same.next(1)).length).toBe(1)
  })

  it('answers 404 off the path, 426 to a plain request, and 503 past maxConnections', async () => {
    const url = await start({ maxConnections: 2 })
    const wrongPath = url.replace('/srpc', '/other')
    await expect(RawWebSocket.open(wrongPath)).rejects.toThrow('HTTP 404')
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(url.replace('wss:', 'https:'), { ca: tls.ca }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on('error', reject)
      req.end()
    })
    expect(status).toBe(426)
    const a = await RawWebSocket.open(url)
    const b = await RawWebSocket.open(url)
    await expect(RawWebSocket.open(url)).rejects.toThrow('HTTP 503')
    a.ws.close()
    b.ws.close()
  })

  it('drops a TLS client that never sends its HTTP request after handshakeTimeout', async () => {
    const url = await start({ handshakeTimeout: 300 })
    const answer = await rawHttps(url, () => {})
    // Either the idle timer closed the socket, or Node's request-timeout check came first and the
    // server answered 408; which one depends on timing. The client reads, so it sees the end either way.
    expect(answer.text === '' || answer.text.startsWith('HTTP/1.1 408 Request Timeout\r\n')).toBe(true)
    expect(answer.ms).toBeLessThan(3000)
    await expectServed(url)
  })

  it('answers 408 to a request whose headers trickle in past handshakeTimeout (slowloris)', async () => {
    const url = await start({ handshakeTimeout: 1000 })
    const { host } = new URL(url)
    const head = `GET /srpc HTTP/1.1\r\nHost: ${host}\r\nX-Slow: ${'a'.repeat(200)}`
    // One byte every 50 ms keeps the socket busy (its idle timer never fires) but never ends the
    // headers, so only the headers deadline can end it.
    const answer = await rawHttps(url, (socket) => {
      let i = 0
      const drip = setInterval(() => {
        if (i < head.length && !socket.destroyed) socket.write(head[i++])
        else clearInterval(drip)
      }, 50)
      socket.once('close', () => clearInterval(drip))
    })
    expect(answer.text).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/)
    expect(answer.ms).toBeGreaterThanOrEqual(900)
    expect(answer.ms).toBeLessThan(5000)
    await expectServed(url)
  })

  it('answers 431 to headers over the limit and 400 to bytes that are not HTTP', async () => {
    const url = await start()
    const { host } = new URL(url)
    const huge = await rawHttps(url, (socket) => {
      socket.write(`GET /srpc HTTP/1.1\r\nHost: ${host}\r\nX-Big: ${'b'.repeat(64 * 1024)}\r\n\r\n`)
    })
    expect(huge.text).toMatch(/^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/)
    const garbage = await rawHttps(url, (socket) => socket.write('\x00\x01 not http at all\r\n\r\n'))
    expect(garbage.text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/)
    await expectServed(url)
  })
})

/** A TLS client to the listener's port that runs `act` once secured, reads everything, and
 * resolves with what it read and how long the server took to close (at most 5 s). */
async function rawHttps(
  url: string,
  act: (socket: TLSSocket) => void,
): Promise<{ text: string; ms: number }> {
  const { port } = new URL(url)
  const socket = tlsConnect({ host: '127.0.0.1', port: Number(port), ca: tls.ca })
  sockets.push(socket)
  socket.on('error', () => {})
  let secured = false
  socket.once('secureConnect', () => {
    secured = true
    act(socket)
  })
  const chunks: Buffer[] = []
  socket.on('data', (chunk: Buffer) => chunks.push(chunk))
  const started = Date.now()
  await new Promise<void>((resolve, reject) => {
    const late = setTimeout(
      () => reject(new Error(`still open after 5 s (${secured ? 'after' : 'in'} the TLS handshake)`)),
      5000,
    )
    socket.once('close', () => {
      clearTimeout(late)
      resolve()
    })
  })
  return { text: Buffer.concat(chunks).toString('latin1'), ms: Date.now() - started }
}

describe('listenWebSocket: hostile input, with a good connection served alongside', () => {
  it('a frame header with a lying length gets PROTOCOL_ERROR on id 0 and the socket closed', async () => {
    const url = await start({ maxFrameSize: 64 * 1024 })
    const liar = await RawWebSocket.open(url)
    const header = encodeFrame(Flags.REQUEST, 1, '/echo', new Uint8Array(0))
    new DataView(header.buffer).setUint32(12, 0xffff_fff0)
    liar.send(header)
    const [frame] = await liar.next(1)
    expect(frame.id).toBe(0)
    expect(errorCode(frame)).toBe('PROTOCOL_ERROR')
    await liar.closed
    await expectServed(url)
  })

  it('garbage bytes get PROTOCOL_ERROR and the socket closed', async () => {
    const url = await start()
    const garbage = await RawWebSocket.open(url)
    garbage.send(new TextEncoder().encode('GET / HTTP/1.1\r\n\r\n'))
    const [frame] = await garbage.next(1)
    expect(errorCode(frame)).toBe('PROTOCOL_ERROR')
    await garbage.closed
    await expectServed(url)
  })

  it('a message larger than maxFrameSize is refused by ws (1009) before it is buffered', async () => {
    const url = await start({ maxFrameSize: 16 * 1024 })
    const big = await RawWebSocket.open(url)
    big.send(new Uint8Array(64 * 1024))
    expect((await big.closed).code).toBe(1009)
    await expectServed(url)
  })

  it('a text message closes the socket with 1003', async () => {
    const url = await start()
    const texter = await RawWebSocket.open(url)
    texter.ws.send('hello')
    expect((await texter.closed).code).toBe(1003)
    await expectServed(url)
  })

  it('a client that never reads stalls only itself; the server keeps serving others', async () => {
    const url = await start({ maxBufferedBytes: 256 * 1024 })
    const stuck = await RawWebSocket.open(url)
    stuck.ws.pause()
    flooded = 0
    stuck.send(request1(1, '/flood', ''))
    await new Promise((resolve) => setTimeout(resolve, 300))
    for (let round = 0; round < 3; round++) await expectServed(url)
    // v1 stream, so no window: the socket's backpressure holds the handler (a few MiB in kernel buffers at most).
    const held = flooded
    expect(held).toBeGreaterThan(0)
    expect(held).toBeLessThan(300)
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(flooded - held).toBeLessThan(5)
  })
})

describe('listenWebSocket and the rest of the server', () => {
  it('interceptors see ctx.peer as websocket with the HTTP headers (authorization, cookie)', async () => {
    const seen: Array<{ transport: string | undefined; cookie: unknown }> = []
    const url = await start({
      interceptors: [
        (next) => async (call) => {
          seen.push({ transport: call.peer?.transport, cookie: call.peer?.headers?.cookie })
          if (call.peer?.headers?.authorization !== 'Bearer good') {
            throw new RpcError(Code.UNAUTHENTICATED, 'no token')
          }
          return next(call)
        },
      ],
    })
    const anonymous = await RawWebSocket.open(url)
    anonymous.send(request1(1, '/echo', 'x'))
    expect(errorCode((await anonymous.next(1))[0])).toBe('UNAUTHENTICATED')
    const known = await RawWebSocket.open(url, { authorization: 'Bearer good', cookie: 'session=abc' })
    known.send(request1(1, '/echo', 'x'))
    expect((await known.next(1))[0].flags).toBe(Flags.RESPONSE)
    expect(seen).toEqual([
      { transport: 'websocket', cookie: undefined },
      { transport: 'websocket', cookie: 'session=abc' },
    ])
  })

  it('shutdown closes the listener; a new upgrade is refused', async () => {
    const url = await start()
    const open = await RawWebSocket.open(url)
    await server!.shutdown({ timeout: 200 })
    await open.closed
    await expect(RawWebSocket.open(url)).rejects.toThrow()
    server = undefined
  })

  it('needs tls unless dangerouslyUsePlainHttp, and then listens on ws://', async () => {
    const plain = new Server({ address: '127.0.0.1:0' })
    await expect(plain.listenWebSocket()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
    server = plain
    plain.handle('/echo', (ctx) => ctx.payload)
    const { url } = await plain.listenWebSocket({ dangerouslyUsePlainHttp: true })
    expect(url.startsWith('ws://')).toBe(true)
    await expectServed(url, 3)
  })
})

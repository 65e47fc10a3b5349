import { createServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { Pool } from '@srpc/client'
import { ControlKind, encodeControl } from '@srpc/protocol'
import type { Context } from '@srpc/server'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocketServer } from 'ws'
import { Code, RpcError } from '../src/index'
import { aborted, certificates, errorOf, Harness, sleep, text } from './harness'

const h = new Harness()
afterEach(() => h.cleanup())

function routes(server: import('@srpc/server').Server) {
  server.handle('/echo', (ctx) => ctx.payload)
  server.handle('/peer', (ctx) =>
    JSON.stringify({
      transport: ctx.peer.transport,
      cookie: ctx.peer.headers?.cookie,
      meta: ctx.metadata.trace,
      deadline: ctx.deadline !== undefined,
    }),
  )
  server.handle('/fail', () => {
    throw new RpcError(Code.PERMISSION_DENIED, 'not you')
  })
  server.handle('/count', async (ctx) => {
    const n = Number(ctx.payload.toString())
    const stream = ctx.stream()
    for (let i = 1; i <= n; i++) await stream.writeChunk(String(i), i === n)
  })
  server.handle('/chat', async (ctx) => {
    for await (const message of ctx.messages()) await ctx.sendMessage(`you said ${message}`)
  })
}

describe('WebClient over wss to server.listenWebSocket()', () => {
  it('makes request-response calls, and the handler sees a websocket peer with its headers and metadata', async () => {
    const { url } = await h.server(routes)
    const client = await h.client(url)
    expect(text(await client.call('/echo', 'hello'))).toBe('hello')
    const big = new Uint8Array(3 * 1024 * 1024).fill(7)
    const echoed = await client.call('/echo', big)
    expect(echoed.length).toBe(big.length)
    expect(echoed[12345]).toBe(7)
    const peer = JSON.parse(
      text(await client.call('/peer', '', { metadata: { trace: 'abc' }, timeout: 5000 }))!,
    )
    expect(peer).toEqual({ transport: 'websocket', meta: 'abc', deadline: true })
    expect(client.state).toBe('ready')
  })

  it('keeps 200 concurrent calls apart: each gets its own reply, frames batched into shared messages', async () => {
    const { url } = await h.server(routes)
    const client = await h.client(url)
    await client.connect()
    const payloads = Array.from({ length: 200 }, (_, i) => `call ${i} ${'x'.repeat(i * 7)}`)
    const replies = await Promise.all(payloads.map((p) => client.call('/echo', p)))
    expect(replies.map(text)).toEqual(payloads)
    const withMetadata = await Promise.all(
      payloads
        .slice(0, 50)
        .map((p, i) => client.call('/peer', p, { metadata: { trace: `t${i}` }, timeout: 5000 })),
    )
    expect(withMetadata.map((r) => JSON.parse(text(r)!).meta)).toEqual(
      payloads.slice(0, 50).map((_, i) => `t${i}`),
    )
  })

  it('fails with the server error code, NOT_FOUND for an unknown route, and a deadline with DEADLINE_EXCEEDED', async () => {
    let signalled: unknown
    const { url } = await h.server((s) => {
      routes(s)
      s.handle('/slow', async (ctx) => {
        signalled = await aborted(ctx.signal)
      })
    })
    const client = await h.client(url)
    expect((await errorOf(client.call('/fail'))).code).toBe(Code.PERMISSION_DENIED)
    expect((await errorOf(client.call('/nope'))).code).toBe(Code.NOT_FOUND)
    const started = Date.now()
    expect((await errorOf(client.call('/slow', '', { timeout: 150 }))).code).toBe(Code.DEADLINE_EXCEEDED)
    expect(Date.now() - started).toBeLessThan(1000)
    await sleep(50)
    expect(RpcError.is(signalled)).toBe(true)
  })

  it('cancels a call with its AbortSignal, and the handler sees ctx.signal abort', async () => {
    let started!: () => void
    const running = new Promise<void>((resolve) => {
      started = resolve
    })
    let handlerSignal: AbortSignal | undefined
    const { url } = await h.server((s) =>
      s.handle('/hang', (ctx: Context) => {
        handlerSignal = ctx.signal
        started()
        return new Promise(() => {})
      }),
    )
    const client = await h.client(url)
    await client.connect()
    const controller = new AbortController()
    const call = client.call('/hang', '', { signal: controller.signal, waitForExtensions: true })
    await running
    controller.abort()
    expect((await errorOf(call)).code).toBe(Code.CANCELLED)
    const reason = await aborted(handlerSignal!)
    expect((reason as RpcError).code).toBe(Code.CANCELLED)
  })

  it('reads a server stream in order, and break cancels the handler', async () => {
    let handlerSignal: AbortSignal | undefined
    const { url } = await h.server((s) => {
      routes(s)
      s.handle('/forever', async (ctx) => {
        handlerSignal = ctx.signal
        const stream = ctx.stream()
        for (let i = 0; !ctx.signal.aborted && i < 100_000; i++)
          await stream.writeChunk(String(i)).catch(() => {})
      })
    })
    const client = await h.client(url)
    const chunks: string[] = []
    for await (const chunk of client.callStream('/count', '5')) chunks.push(text(chunk)!)
    expect(chunks).toEqual(['1', '2', '3', '4', '5'])
    let seen = 0
    for await (const _ of client.callStream('/forever')) if (++seen === 3) break
    expect(seen).toBe(3)
    await aborted(handlerSignal!)
    expect(handlerSignal!.aborted).toBe(true)
  })

  it('holds a flow-controlled stream at the window while the page does not read, without stalling other calls', async () => {
    let sent = 0
    const { url } = await h.server((s) => {
      routes(s)
      s.handle('/flood', async (ctx) => {
        const stream = ctx.stream()
        const chunk = new Uint8Array(16 * 1024)
        for (let i = 0; i < 400 && !ctx.signal.aborted; i++) {
          await stream.writeChunk(chunk, i === 399)
          sent++
        }
      })
    })
    const client = await h.client(url, { initialWindow: 64 * 1024, maxWindow: 64 * 1024 })
    const stream = client.callStream('/flood')
    const first = await stream.next()
    expect(first.done).toBe(false)
    await sleep(300)
    // 64 KiB of credit plus what the server buffers (maxBufferedBytes) - far from 400 chunks.
    expect(sent).toBeLessThan(150)
    expect(text(await client.call('/echo', 'still here'))).toBe('still here')
    let count = 1
    for await (const _ of stream) count++
    expect(count).toBe(400)
    expect(sent).toBe(400)
  })

  it('runs a session both ways, in order, and close() ends both halves', async () => {
    const { url } = await h.server(routes)
    const client = await h.client(url)
    const session = await client.createBidirectionalSession('/chat')
    for (let i = 0; i < 50; i++) await session.send(`m${i}`)
    for (let i = 0; i < 50; i++) expect(text(await session.receive())).toBe(`you said m${i}`)
    await session.close()
    expect(await session.receive()).toBeUndefined()
    expect(session.ended).toBe(true)
    expect(session.error).toBeUndefined()
  })

  it('bounds a session send queue with RESOURCE_EXHAUSTED while the server does not read', async () => {
    const { url } = await h.server((s) => s.handle('/deaf', (ctx) => aborted(ctx.signal).then(() => {})))
    const client = await h.client(url, { maxBufferedBytes: 64 * 1024 })
    const session = await client.createBidirectionalSession('/deaf')
    const message = new Uint8Array(32 * 1024)
    const sends: Promise<void>[] = []
    let refused: RpcError | undefined
    for (let i = 0; i < 200 && refused === undefined; i++) {
      const send = session.send(message)
      sends.push(send.catch(() => {}))
      await Promise.race([send.catch((err) => (refused = err)), sleep(0)])
    }
    expect(refused?.code).toBe(Code.RESOURCE_EXHAUSTED)
    expect(session.bufferedAmount).toBeLessThanOrEqual(64 * 1024 + 32 * 1024 + 128)
    session.cancel(new RpcError(Code.CANCELLED, 'done'))
    await Promise.all(sends)
  })

  it('a Node Pool over TLS and a WebClient over wss share the same server, routes and session room', async () => {
    const { clientOptions } = await certificates()
    const { server, url } = await h.server(routes)
    const { port } = await server.listen()
    const pool = new Pool({ address: `127.0.0.1:${port}`, tls: clientOptions })
    try {
      const client = await h.client(url)
      const [a, b] = await Promise.all([pool.call('/echo', 'tls'), client.call('/echo', 'ws')])
      expect(a.toString()).toBe('tls')
      expect(text(b)).toBe('ws')
      expect(server.connections).toBe(2)
    } finally {
      await pool.destroy()
    }
  })

  it("answers the server's keepalive PINGs: an idle connection outlives the server's ping timeout", async () => {
    let disconnects = 0
    const { server, url } = await h.server(routes, { keepalive: { interval: 100, timeout: 100 } })
    server.on('disconnect', () => disconnects++)
    const client = await h.client(url)
    await client.call('/echo', 'first', { waitForExtensions: true })
    const states: string[] = []
    client.on('stateChange', ({ to }) => states.push(to))
    await sleep(700)
    expect(text(await client.call('/echo', 'second'))).toBe('second')
    expect(disconnects).toBe(0)
    expect(states).toEqual([])
  })

  it('its own keepalive closes a connection whose server stopped answering', async () => {
    // A server that answers HELLO (agreeing to ping) and then never says anything again.
    const { serverOptions } = await certificates()
    const https = createServer(serverOptions)
    const wss = new WebSocketServer({ server: https })
    wss.on('connection', (ws) => {
      ws.once('message', () => {
        ws.send(
          encodeControl(0, {
            kind: ControlKind.HELLO,
            capabilities: { version: 1, features: ['ping'], initialWindow: 65536 },
          }),
        )
      })
    })
    await new Promise<void>((resolve) => https.listen(0, '127.0.0.1', resolve))
    try {
      const { port } = https.address() as AddressInfo
      const client = await h.client(`wss://127.0.0.1:${port}/`, {
        keepalive: { interval: 100, timeout: 100 },
        reconnect: false,
      })
      const states: string[] = []
      client.on('stateChange', ({ to }) => states.push(to))
      const slow = client.call('/never', '', { waitForExtensions: true, timeout: 5000 })
      const error = await errorOf(slow)
      expect(error.code).toBe(Code.UNAVAILABLE)
      expect(error.message).toMatch(/keepalive/)
      expect(states).toContain('reconnecting')
    } finally {
      for (const ws of wss.clients) ws.terminate()
      wss.close()
      await new Promise((resolve) => https.close(resolve))
    }
  })

  it('reconnects after the server restarts on the same port', async () => {
    const first = await h.server(routes)
    const client = await h.client(first.url, { backoff: { initial: 50, max: 200 } })
    expect(text(await client.call('/echo', 'one'))).toBe('one')
    const states: string[] = []
    client.on('stateChange', ({ to }) => states.push(to))
    await first.server.shutdown({ timeout: 100 })
    await sleep(100)
    await h.server(routes, {}, { address: `127.0.0.1:${first.port}` })
    const reply = await client.call('/echo', 'two', { waitForReady: true, timeout: 5000 })
    expect(text(reply)).toBe('two')
    expect(states).toContain('reconnecting')
    expect(client.state).toBe('ready')
  })

  it('a graceful shutdown (GOAWAY) lets the call in flight finish, and new calls go to a new connection', async () => {
    let release!: () => void
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    let entered!: () => void
    const inHandler = new Promise<void>((resolve) => {
      entered = resolve
    })
    const first = await h.server((s) =>
      s.handle('/wait', () => {
        entered()
        return gate.then(() => 'done')
      }),
    )
    const client = await h.client(first.url, { backoff: { initial: 50, max: 100 } })
    const call = client.call('/wait', '', { waitForExtensions: true })
    await inHandler
    const stopping = first.server.shutdown({ timeout: 5000 })
    await sleep(50)
    release()
    expect(text(await call)).toBe('done')
    await stopping
    // The old server is gone; one on the same port serves the next call on a new connection.
    await h.server(routes, {}, { address: `127.0.0.1:${first.port}` })
    expect(text(await client.call('/echo', 'again', { waitForReady: true, timeout: 5000 }))).toBe('again')
  })
})

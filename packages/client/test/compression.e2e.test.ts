import { createServer, type Server as TlsServer } from 'node:tls'
import { tlsTransport } from '@srpc/core'
import { Server } from '@srpc/server'
import { afterEach, describe, expect, it } from 'vitest'
import { LinkProxy } from '../../../test-support/link-proxy'
import { Code, connectTls, Pool, type Transport } from '../src'
import { certificates, codeOf, Harness } from './harness'

const h = new Harness()
const proxies: LinkProxy[] = []
const cleanups: (() => Promise<unknown>)[] = []
afterEach(async () => {
  await h.cleanup()
  await Promise.all(proxies.splice(0).map((p) => p.stop()))
  await Promise.all(cleanups.splice(0).map((c) => c()))
})

const KIB = 1024
const MIB = 1024 * KIB

/** JSON-like text of `size` bytes, as an API would send. */
function json(size: number, seed = 1): Buffer {
  const items: string[] = []
  let length = 0
  for (let i = 0; length < size; i++) {
    const item = JSON.stringify({ id: (i * 7919 + seed) % 100000, name: `item-${i % 97}`, ok: i % 3 === 0 })
    items.push(item)
    length += item.length + 1
  }
  return Buffer.from(items.join(',')).subarray(0, size)
}

/** `inFlight` echo calls kept going until `calls` have completed; each reply is checked. */
async function echoLoad(pool: Pool, payload: Buffer, inFlight: number, calls: number): Promise<void> {
  let started = 0
  const worker = async () => {
    while (started < calls) {
      started++
      const reply = await pool.call('/echo', payload, { timeout: 30_000 })
      if (!reply.equals(payload)) throw new Error('echo mismatch')
    }
  }
  await Promise.all(Array.from({ length: inFlight }, worker))
}

describe('adaptive compression (the default)', () => {
  const payload = json(16 * KIB)

  async function wireBytesPerCall(link: { up: number; down: number }, pool: Pool, calls: number) {
    const before = link.up + link.down
    await echoLoad(pool, payload, 16, calls)
    return (link.up + link.down - before) / calls
  }

  it('ends up compressing both ways on a bandwidth-limited link', async () => {
    const { port } = await h.server((s) => s.mux.handle('/echo', (ctx) => ctx.payload))
    const link = await new LinkProxy(port, 1 * MIB).start()
    proxies.push(link)
    const pool = await h.pool(link.address)
    // Uncompressed, 1 MiB/s carries 32 echoes of 16 KiB a second: these take a few windows.
    await echoLoad(pool, payload, 16, 48)
    const perCall = await wireBytesPerCall(link, pool, 200)
    // Both directions compressed: the 2 × 16 KiB of an echo go in well under half.
    expect(perCall).toBeLessThan(payload.length)
  }, 30_000)

  it('does not compress on plain loopback, where the CPU, not the link, is the bottleneck', async () => {
    const { port } = await h.server((s) => s.mux.handle('/echo', (ctx) => ctx.payload))
    // The same proxy, unlimited (1 TB/s): only counts.
    const link = await new LinkProxy(port, 1e12, 1 * MIB).start()
    proxies.push(link)
    const pool = await h.pool(link.address)
    await echoLoad(pool, payload, 16, 400)
    const perCall = await wireBytesPerCall(link, pool, 2000)
    expect(perCall).toBeGreaterThan(2 * payload.length)
  }, 30_000)
})

describe('large compressed messages (zlib thread pool)', () => {
  it('round-trip 16 MiB through a session in order with small ones, while other calls keep being served', async () => {
    const big = Buffer.alloc(16 * MIB - 64 * KIB)
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >> 12)) & 0xff
    const options = { compression: true, maxFrameSize: 32 * MIB }
    const { port } = await h.server((s) => {
      s.mux.handle('/echo', async (ctx) => {
        for await (const m of ctx.messages()) await ctx.sendMessage(m)
      })
      s.mux.handle('/ping', () => 'pong')
    }, options)
    const pool = await h.pool(`127.0.0.1:${port}`, { ...options, size: 1 })
    await pool.call('/ping')
    let pings = 0
    let done = false
    const pinger = (async () => {
      while (!done) {
        expect((await pool.call('/ping', '', { timeout: 30_000 })).toString()).toBe('pong')
        pings++
      }
    })()
    const session = await pool.createBidirectionalSession('/echo', { timeout: 60_000 })
    const pingsBefore = pings
    void session.send(big)
    for (let i = 0; i < 20; i++) void session.send(`small ${i}`)
    const first = await session.receive()
    expect(first?.equals(big)).toBe(true)
    for (let i = 0; i < 20; i++) expect((await session.receive())?.toString()).toBe(`small ${i}`)
    done = true
    await pinger
    await session.close()
    // The same connection kept answering small calls while the 16 MiB value was deflated and inflated.
    expect(pings - pingsBefore).toBeGreaterThan(0)
  }, 60_000)
})

/** Counts turns of the event loop (a chain of setImmediate callbacks) until stopped. */
function loopTurns(): { readonly count: number; stop(): void } {
  let count = 0
  let running = true
  const turn = () => {
    count++
    if (running) setImmediate(turn)
  }
  setImmediate(turn)
  cleanups.push(async () => {
    running = false
  })
  return {
    get count() {
      return count
    },
    stop() {
      running = false
    },
  }
}

interface Write {
  bytes: number
  /** Event-loop turns counted when the write was made. */
  turn: number
}

/** `transport`, with each write recorded: its size and the loop turns counted by then. */
function recordWrites(transport: Transport, turns: () => number, writes: Write[]): Transport {
  const write = transport.write.bind(transport)
  transport.write = (chunk, written) => {
    writes.push({ bytes: chunk.length, turn: turns() })
    return write(chunk, written)
  }
  return transport
}

/** The largest write recorded from index `from` on. */
function largest(writes: Write[], from = 0): Write | undefined {
  let max: Write | undefined
  for (const w of writes.slice(from)) if (max === undefined || w.bytes > max.bytes) max = w
  return max
}

describe('large unary values deflate off the event loop (compression: true)', () => {
  const options = { compression: true, maxFrameSize: 32 * MIB }
  const big = json(16 * MIB)

  /** A server with `/echo`, `/count` (counts the requests it sees) and `/ping`, and a pool of one connection to it. */
  async function setup() {
    let seen = 0
    const { port } = await h.server((s) => {
      s.mux.handle('/echo', (ctx) => ctx.payload)
      s.mux.handle('/count', () => {
        seen++
        return 'ok'
      })
      s.mux.handle('/ping', () => 'pong')
    }, options)
    const pool = await h.pool(`127.0.0.1:${port}`, { ...options, size: 1 })
    // Negotiated: compression is in force from the next call on.
    expect((await pool.call('/ping')).toString()).toBe('pong')
    return { pool, seen: () => seen }
  }

  it('round-trips a 16 MiB request and reply byte-exact; both ends keep the loop turning while they deflate', async () => {
    let turns = loopTurns()
    const clientWrites: Write[] = []
    const serverWrites: Write[] = []
    let handlerTurn = -1
    const server = new Server(options)
    server.handle('/echo', (ctx) => {
      handlerTurn = turns.count
      return ctx.payload
    })
    const { serverOptions, clientOptions } = await certificates()
    const listener: TlsServer = createServer(serverOptions, (socket) =>
      server.accept(recordWrites(tlsTransport(socket), () => turns.count, serverWrites)),
    )
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve))
    cleanups.push(() => server.shutdown({ timeout: 200 }).then(() => new Promise((r) => listener.close(r))))
    const { port } = listener.address() as { port: number }
    const pool = new Pool({
      address: `127.0.0.1:${port}`,
      ...options,
      size: 1,
      connector: (target, { signal }) =>
        connectTls(target, { tls: clientOptions, connectTimeout: 5000, signal }).then((t) =>
          recordWrites(t, () => turns.count, clientWrites),
        ),
    })
    cleanups.push(() => pool.destroy())
    await pool.call('/echo', 'hello')

    turns.stop()
    turns = loopTurns()
    const clientFrom = clientWrites.length
    const serverFrom = serverWrites.length
    const reply = await pool.call('/echo', big, { timeout: 30_000 })
    expect(reply.equals(big)).toBe(true)
    // Each big value went compressed, and was written only after the loop had turned since it
    // was handed over (pool.call on the client, the handler's return on the server).
    const request = largest(clientWrites, clientFrom)!
    expect(request.bytes).toBeLessThan(big.length / 2)
    expect(request.turn).toBeGreaterThan(0)
    const answer = largest(serverWrites, serverFrom)!
    expect(answer.bytes).toBeLessThan(big.length / 2)
    expect(handlerTurn).toBeGreaterThanOrEqual(0)
    expect(answer.turn).toBeGreaterThan(handlerTurn)
  }, 60_000)

  it('a call cancelled while its request deflates fails CANCELLED and is never sent', async () => {
    const { pool, seen } = await setup()
    const abort = new AbortController()
    const call = pool.call('/count', big, { signal: abort.signal })
    abort.abort()
    expect(await codeOf(call)).toBe(Code.CANCELLED)
    // Frames on a connection arrive in order: by this answer the server would have seen the request.
    expect((await pool.call('/ping')).toString()).toBe('pong')
    expect(seen()).toBe(0)
    // The connection carries on.
    expect((await pool.call('/count', big, { timeout: 30_000 })).toString()).toBe('ok')
    expect(seen()).toBe(1)
  }, 60_000)

  it('a call whose deadline passes while its request deflates fails DEADLINE_EXCEEDED and is never sent', async () => {
    const { pool, seen } = await setup()
    // 1 ms: the deadline passes long before 16 MiB are deflated.
    expect(await codeOf(pool.call('/count', big, { timeout: 1 }))).toBe(Code.DEADLINE_EXCEEDED)
    expect((await pool.call('/ping')).toString()).toBe('pong')
    expect(seen()).toBe(0)
  }, 60_000)

  it('a connection destroyed while a request deflates fails the call, and nothing is sent on it', async () => {
    const { pool, seen } = await setup()
    const call = pool.call('/count', big, { timeout: 30_000 })
    void pool.destroy()
    expect(await codeOf(call)).toBe(Code.CANCELLED)
    expect(seen()).toBe(0)
  }, 60_000)

  it('a connection lost while a request deflates: the call was never sent, so it goes again on a new one', async () => {
    const { port } = await h.server((s) => s.mux.handle('/echo', (ctx) => ctx.payload), options)
    const { clientOptions } = await certificates()
    const transports: Transport[] = []
    const pool = await h.pool(`127.0.0.1:${port}`, {
      ...options,
      tls: undefined,
      size: 1,
      connector: (target, { signal }) =>
        connectTls(target, { tls: clientOptions, connectTimeout: 5000, signal }).then((t) => {
          transports.push(t)
          return t
        }),
    })
    await pool.call('/echo', 'hello')
    // Fits a frame uncompressed: the new connection may carry it before its HELLO is answered.
    const value = big.subarray(0, 8 * MIB)
    const call = pool.call('/echo', value, { timeout: 30_000 })
    transports[0]!.destroy(new Error('link down'))
    expect((await call).equals(value)).toBe(true)
    expect(transports).toHaveLength(2)
  }, 60_000)

  it('a pool closing while a request deflates sends it first and waits for its reply', async () => {
    const { pool } = await setup()
    const call = pool.call('/echo', big, { timeout: 30_000 })
    const closed = pool.close()
    expect((await call).equals(big)).toBe(true)
    await closed
  }, 60_000)

  it('a reply still deflating when the client cancels is never sent; reply() rejects with CANCELLED', async () => {
    let replying!: () => void
    const replyStarted = new Promise<void>((resolve) => {
      replying = resolve
    })
    let replied: Promise<unknown> | undefined
    const serverWrites: Write[] = []
    const server = new Server(options)
    server.handle('/big', (ctx) => {
      const reply = ctx.reply(big)
      replied = reply.then(
        () => 'sent',
        (err: { code: string }) => err.code,
      )
      replying()
      return reply
    })
    server.handle('/ping', () => 'pong')
    const { serverOptions } = await certificates()
    const listener: TlsServer = createServer(serverOptions, (socket) =>
      server.accept(recordWrites(tlsTransport(socket), () => 0, serverWrites)),
    )
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve))
    cleanups.push(() => server.shutdown({ timeout: 200 }).then(() => new Promise((r) => listener.close(r))))
    const { port } = listener.address() as { port: number }
    const pool = await h.pool(`127.0.0.1:${port}`, { ...options, size: 1 })
    await pool.call('/ping')

    const from = serverWrites.length
    const abort = new AbortController()
    const call = pool.call('/big', '', { signal: abort.signal })
    await replyStarted
    abort.abort()
    expect(await codeOf(call)).toBe(Code.CANCELLED)
    expect(await replied).toBe(Code.CANCELLED)
    expect((await pool.call('/ping')).toString()).toBe('pong')
    // Nothing of the 16 MiB reply went out, compressed or not.
    expect(largest(serverWrites, from)?.bytes ?? 0).toBeLessThan(64 * KIB)
  }, 60_000)
})

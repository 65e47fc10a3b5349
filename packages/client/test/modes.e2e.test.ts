import { Code, RpcError } from '@srpc/protocol'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { Harness, sleep } from './harness'

const h = new Harness()
afterEach(() => h.cleanup())

describe('request-response', () => {
  it('returns the handler reply as bytes, for strings and binary payloads', async () => {
    const { address } = await h.server((s) => {
      s.mux.handle('/health', (ctx) => ctx.reply('{"status":"healthy"}'))
      s.mux.handle('/echo', (ctx) => ctx.reply(ctx.payload))
      s.mux.handle('/returned', () => Buffer.from([1, 2, 3]))
    })
    const pool = await h.pool(address)
    expect((await pool.call('/health', '', { timeout: 2000 })).toString()).toBe('{"status":"healthy"}')
    const binary = Buffer.from([0, 255, 1, 254, 0])
    expect(await pool.call('/echo', binary)).toEqual(binary)
    expect((await pool.call('/echo', '你好世界 🌍')).toString('utf8')).toBe('你好世界 🌍')
    expect(await pool.call('/returned')).toEqual(Buffer.from([1, 2, 3]))
    expect(await pool.call('/echo', '')).toEqual(Buffer.alloc(0))
  })

  it('matches 1,000 concurrent calls over a pool of 3 to their callers', async () => {
    const { address } = await h.server(
      (s) =>
        s.mux.handle('/echo', async (ctx) => {
          // Reply out of order on purpose.
          if (ctx.payload[ctx.payload.length - 1] % 3 === 0) await sleep(1)
          return ctx.payload
        }),
      { workers: 64, maxQueue: 2000 },
    )
    const pool = await h.pool(address, { size: 3 })
    const replies = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => pool.call('/echo', `call-${i}`, { timeout: 10_000 })),
    )
    expect(replies.map((r) => r.toString())).toEqual(Array.from({ length: 1000 }, (_, i) => `call-${i}`))
    const used = pool.stats().filter((s) => s.state === 'ready')
    expect(used.length).toBe(3)
  })
})

describe('server streams', () => {
  it('delivers chunks in order and ends after the chunk marked last', async () => {
    const { address } = await h.server((s) =>
      s.mux.handle('/count', async (ctx) => {
        const n = Number(ctx.payload.toString())
        const stream = ctx.stream()
        for (let i = 0; i < n; i++) await stream.writeChunk(`chunk-${i}`, i === n - 1)
      }),
    )
    const pool = await h.pool(address)
    const chunks: string[] = []
    for await (const chunk of pool.callStream('/count', '500', { timeout: 5000 }))
      chunks.push(chunk.toString())
    expect(chunks).toEqual(Array.from({ length: 500 }, (_, i) => `chunk-${i}`))
  })

  it('ends a stream whose handler returns without marking a chunk last', async () => {
    const { address } = await h.server((s) =>
      s.mux.handle('/two', async (ctx) => {
        const stream = ctx.stream()
        await stream.writeChunk('a')
        await stream.writeChunk('b')
      }),
    )
    const pool = await h.pool(address)
    const chunks: string[] = []
    for await (const chunk of pool.callStream('/two')) chunks.push(chunk.toString())
    expect(chunks).toEqual(['a', 'b'])
  })

  it('fails the iteration with the handler error after the chunks sent before it', async () => {
    const { address } = await h.server((s) =>
      s.mux.handle('/fails', async (ctx) => {
        await ctx.stream().writeChunk('first')
        throw new RpcError(Code.DATA_LOSS, 'disk gone')
      }),
    )
    const pool = await h.pool(address)
    const chunks: string[] = []
    const err = await (async () => {
      for await (const chunk of pool.callStream('/fails')) chunks.push(chunk.toString())
    })().catch((e) => e)
    expect(chunks).toEqual(['first'])
    expect(err).toBeInstanceOf(RpcError)
    expect(err.code).toBe(Code.DATA_LOSS)
    expect(err.message).toBe('disk gone')
  })

  it('waits in writeChunk while the client does not read, and loses nothing', async () => {
    let written = 0
    const chunk = Buffer.alloc(64 * 1024, 7)
    const { address } = await h.server((s) =>
      s.mux.handle('/flood', async (ctx) => {
        const stream = ctx.stream()
        for (let i = 0; i < 400; i++) {
          await stream.writeChunk(chunk, i === 399)
          written++
        }
      }),
    )
    const pool = await h.pool(address, { streamHighWaterMark: 256 * 1024 })
    const iterator = pool.callStream('/flood', '', { timeout: 20_000 })[Symbol.asyncIterator]()
    const first = await iterator.next()
    expect(first.done).toBe(false)
    await sleep(300)
    // 400 × 64 KiB = 25 MiB would be written at once without backpressure.
    expect(written).toBeLessThan(200)
    let received = 1
    let bytes = first.value?.length ?? 0
    for (;;) {
      const next = await iterator.next()
      if (next.done) break
      received++
      bytes += next.value.length
    }
    expect(received).toBe(400)
    expect(bytes).toBe(400 * chunk.length)
    // The handler's last writeChunk resolves on the server's next 'drain'.
    await vi.waitFor(() => expect(written).toBe(400), { timeout: 2000 })
  })
})

describe('bidirectional sessions', () => {
  it('keeps one id for the session and replies in order with distinct messages', async () => {
    const ids = new Set<unknown>()
    const { address } = await h.server((s) =>
      s.mux.handle('/chat', async (ctx) => {
        ids.add(ctx.id)
        const first = await ctx.receiveMessage()
        await ctx.sendMessage(`Hello, ${first}!`)
        const second = await ctx.receiveMessage()
        await ctx.sendMessage(`Goodbye, ${second}!`)
        expect(await ctx.receiveMessage()).toBeUndefined()
      }),
    )
    const pool = await h.pool(address)
    const session = await pool.createBidirectionalSession('/chat')
    await session.send('World')
    await session.send('World')
    expect((await session.receive())?.toString()).toBe('Hello, World!')
    expect((await session.receive())?.toString()).toBe('Goodbye, World!')
    await session.close()
    expect(await session.receive()).toBeUndefined()
    expect(ids.size).toBe(1)
  })

  it('delivers thousands of messages in order both ways to a slow reader', async () => {
    const { address } = await h.server((s) =>
      s.mux.handle('/echo', async (ctx) => {
        let n = 0
        for await (const message of ctx.messages()) {
          if (n++ % 500 === 0) await sleep(5)
          await ctx.sendMessage(message)
        }
      }),
    )
    const pool = await h.pool(address)
    const session = await pool.createBidirectionalSession('/echo')
    const total = 3000
    const sending = (async () => {
      for (let i = 0; i < total; i++) await session.send(`m${i}`)
      await session.close()
    })()
    const received: string[] = []
    for await (const message of session) {
      received.push(message.toString())
      if (received.length % 1000 === 0) await sleep(20)
    }
    await sending
    expect(received).toEqual(Array.from({ length: total }, (_, i) => `m${i}`))
  })

  it('keeps two sessions on one connection independent when interleaved', async () => {
    const { address } = await h.server((s) =>
      s.mux.handle('/tag', async (ctx) => {
        const tag = (await ctx.receiveMessage())?.toString()
        for await (const message of ctx.messages()) await ctx.sendMessage(`${tag}:${message}`)
      }),
    )
    const pool = await h.pool(address, { size: 1 })
    const a = await pool.createBidirectionalSession('/tag')
    const b = await pool.createBidirectionalSession('/tag')
    await a.send('A')
    await b.send('B')
    for (let i = 0; i < 20; i++) {
      await a.send(`${i}`)
      await b.send(`${i}`)
    }
    await Promise.all([a.close(), b.close()])
    const fromA: string[] = []
    const fromB: string[] = []
    for await (const m of a) fromA.push(m.toString())
    for await (const m of b) fromB.push(m.toString())
    expect(fromA).toEqual(Array.from({ length: 20 }, (_, i) => `A:${i}`))
    expect(fromB).toEqual(Array.from({ length: 20 }, (_, i) => `B:${i}`))
  })

  it('ends the session for the client when the handler returns', async () => {
    const { address } = await h.server((s) =>
      s.mux.handle('/once', async (ctx) => {
        await ctx.sendMessage('only')
      }),
    )
    const pool = await h.pool(address)
    const session = await pool.createBidirectionalSession('/once')
    expect((await session.receive())?.toString()).toBe('only')
    expect(await session.receive()).toBeUndefined()
    expect(session.tryReceive()).toBeUndefined()
    await session.close()
  })

  it('gives tryReceive a queued message without waiting', async () => {
    const { address } = await h.server((s) =>
      s.mux.handle('/push', async (ctx) => {
        await ctx.sendMessage('x')
        await ctx.receiveMessage()
      }),
    )
    const pool = await h.pool(address)
    const session = await pool.createBidirectionalSession('/push')
    expect(session.tryReceive()).toBeUndefined()
    await sleep(100)
    expect(session.tryReceive()?.toString()).toBe('x')
    await session.close()
  })

  it('lets the server read queued messages with tryReceiveMessage', async () => {
    let seen: string | undefined
    const { address } = await h.server((s) =>
      s.mux.handle('/peek', async (ctx) => {
        const before = ctx.tryReceiveMessage()
        await sleep(100)
        seen = `${before === undefined ? 'none' : 'early'}/${ctx.tryReceiveMessage()?.toString()}`
        await ctx.sendMessage(seen)
      }),
    )
    const pool = await h.pool(address)
    const session = await pool.createBidirectionalSession('/peek')
    await session.send('hi')
    expect((await session.receive())?.toString()).toBe('none/hi')
    await session.close()
  })
})

import { deflateRawSync } from 'node:zlib'
import { Code, encodeFrame, Flags, RpcError } from '@srpc/protocol'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { FaultProxy } from './fault-proxy'
import { Harness, sleep } from './harness'
import { StubServer, v1Echo } from './v1-stub-server'

const h = new Harness()
const stubs: StubServer[] = []
const proxies: FaultProxy[] = []
afterEach(async () => {
  await Promise.all(stubs.splice(0).map((s) => s.stop()))
  await Promise.all(proxies.splice(0).map((p) => p.stop()))
  await h.cleanup()
})

async function codeOf(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'resolved',
    (e: unknown) => (e instanceof RpcError ? e.code : `not an RpcError: ${e}`),
  )
}

async function stub(behaviour = v1Echo, negotiate = false): Promise<{ stub: StubServer; address: string }> {
  const server = new StubServer(behaviour, negotiate)
  stubs.push(server)
  return { stub: server, address: await server.start() }
}

describe('negotiation', () => {
  it('announces its capabilities first and works in plain v1 with a server that never answers', async () => {
    const { stub: server, address } = await stub()
    const pool = await h.pool(address, { helloTimeout: 200 })
    expect((await pool.call('/echo', 'v1 call', { timeout: 2000 })).toString()).toBe('v1 call')
    const chunks: string[] = []
    for await (const chunk of pool.callStream('/stream', '', { timeout: 2000 })) chunks.push(chunk.toString())
    expect(chunks).toEqual(['s1', 's2'])
    // First frame on the wire was the HELLO control frame; nothing else used an extension bit.
    expect(server.seen[0].flags).toBe(Flags.CONTROL)
    expect(server.seen.slice(1).every((f) => (f.flags & 0xe0) === 0)).toBe(true)
    // Metadata needs an srpc server: a clear error, not a silent drop.
    const err = await codeOf(pool.call('/echo', 'x', { metadata: { token: 'abc' } }))
    expect(err).toBe(Code.FAILED_PRECONDITION)
  })

  it('agrees on every extension between an srpc client and server', async () => {
    const { address } = await h.server((s) => s.mux.handle('/x', () => 'x'))
    const pool = await h.pool(address)
    await pool.call('/x')
    await sleep(20)
    const rtts = await pool.ping({ timeout: 1000 })
    expect(rtts).toHaveLength(1)
    expect(rtts[0]).toBeGreaterThanOrEqual(0)
    expect(rtts[0]).toBeLessThan(1000)
  })
})

describe('metadata and middleware', () => {
  it('carries metadata to the handler and lets middleware refuse a bad token with UNAUTHENTICATED', async () => {
    const { address } = await h.server((s) => {
      s.use(async (ctx, next) => {
        if (ctx.metadata.authorization !== 'Bearer good')
          throw new RpcError(Code.UNAUTHENTICATED, 'bad token')
        return next()
      })
      s.mux.handle('/whoami', (ctx) => `${ctx.metadata['x-user']} via ${ctx.route}`)
    })
    const pool = await h.pool(address)
    const ok = await pool.call('/whoami', '', { metadata: { authorization: 'Bearer good', 'x-user': 'ada' } })
    expect(ok.toString()).toBe('ada via /whoami')
    const err = await pool.call('/whoami', '', { metadata: { authorization: 'Bearer bad' } }).catch((e) => e)
    expect(err.code).toBe(Code.UNAUTHENTICATED)
    expect(err.message).toBe('bad token')
    expect(await codeOf(pool.call('/whoami'))).toBe(Code.UNAUTHENTICATED)
  })

  it('refuses metadata past the size limit with a clear error', async () => {
    const { address } = await h.server((s) => s.mux.handle('/x', () => 'x'))
    const pool = await h.pool(address)
    await pool.call('/x')
    const err = await pool.call('/x', '', { metadata: { big: 'v'.repeat(10_000) } }).catch((e) => e)
    expect(err.code).toBe(Code.RESOURCE_EXHAUSTED)
    const badKey = await pool.call('/x', '', { metadata: { 'Bad Key': 'v' } }).catch((e) => e)
    expect(badKey.code).toBe(Code.INVALID_ARGUMENT)
  })

  it('sends the deadline with the call: the handler sees ctx.deadline and its signal aborts when it passes', async () => {
    let deadline: number | undefined
    let abortedAfter: number | undefined
    const { address } = await h.server((s) => {
      s.mux.handle('/x', () => 'x')
      s.mux.handle('/slow', async (ctx) => {
        deadline = ctx.deadline
        const started = Date.now()
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()))
        abortedAfter = Date.now() - started
        return 'too late'
      })
    })
    const pool = await h.pool(address)
    await pool.call('/x')
    const before = Date.now()
    expect(await codeOf(pool.call('/slow', '', { timeout: 200 }))).toBe(Code.DEADLINE_EXCEEDED)
    await vi.waitFor(() => expect(abortedAfter).toBeDefined(), { timeout: 1000 })
    expect(deadline).toBeGreaterThanOrEqual(before + 150)
    expect(deadline).toBeLessThanOrEqual(before + 400)
    expect(abortedAfter).toBeLessThan(400)
  })

  it("enforces the pool's default timeout locally: not sent, the call fails on time, the handler is cancelled", async () => {
    let deadline: number | undefined = -1
    let cancelled = false
    const { address } = await h.server((s) => {
      s.mux.handle('/x', () => 'x')
      s.mux.handle('/slow', (ctx) => {
        deadline = ctx.deadline
        ctx.signal.addEventListener('abort', () => {
          cancelled = true
        })
        return new Promise(() => {})
      })
    })
    const pool = await h.pool(address, { defaultTimeout: 200 })
    await pool.call('/x')
    // Many calls with no options share the pool's default; each one still gets its own deadline.
    const quick = await Promise.all(Array.from({ length: 100 }, () => pool.call('/x')))
    expect(quick.every((reply) => reply.toString() === 'x')).toBe(true)
    const started = performance.now()
    expect(await codeOf(pool.call('/slow'))).toBe(Code.DEADLINE_EXCEEDED)
    const took = performance.now() - started
    expect(took).toBeGreaterThanOrEqual(195)
    expect(took).toBeLessThan(1000)
    expect(deadline).toBeUndefined()
    await vi.waitFor(() => expect(cancelled).toBe(true), { timeout: 1000 })
    // An explicit timeout wins over the default, and is sent.
    const explicit = performance.now()
    expect(await codeOf(pool.call('/slow', '', { timeout: 50 }))).toBe(Code.DEADLINE_EXCEEDED)
    expect(performance.now() - explicit).toBeLessThan(190)
    expect(deadline).toBeGreaterThan(0)
  })
})

describe('cancellation', () => {
  it('reaches the handler within 50 ms on loopback', async () => {
    let started = 0
    let sawCancel = 0
    const { address } = await h.server((s) => {
      s.mux.handle('/x', () => 'x')
      s.mux.handle('/work', (ctx) => {
        started = performance.now()
        ctx.signal.addEventListener('abort', () => {
          sawCancel = performance.now()
        })
        return new Promise(() => {})
      })
    })
    const pool = await h.pool(address)
    await pool.call('/x')
    const controller = new AbortController()
    const call = codeOf(pool.call('/work', '', { signal: controller.signal }))
    await vi.waitFor(() => expect(started).toBeGreaterThan(0))
    const cancelledAt = performance.now()
    controller.abort()
    expect(await call).toBe(Code.CANCELLED)
    await vi.waitFor(() => expect(sawCancel).toBeGreaterThan(0), { timeout: 500, interval: 2 })
    expect(sawCancel - cancelledAt).toBeLessThan(50)
  })
})

describe('flow control', () => {
  it('holds a sender to the window of a reader that stops, without stalling ten other streams', async () => {
    let floodBytes = 0
    const chunk = Buffer.alloc(64 * 1024, 1)
    const { address } = await h.server((s) => {
      s.mux.handle('/x', () => 'x')
      s.mux.handle('/flood', async (ctx) => {
        const stream = ctx.stream()
        // Try to send 1 GiB; flow control must stop this long before.
        for (let i = 0; i < 16384 && !ctx.signal.aborted; i++) {
          await stream.writeChunk(chunk)
          floodBytes += chunk.length
        }
      })
      s.mux.handle('/count', async (ctx) => {
        const stream = ctx.stream()
        for (let i = 0; i < 200; i++) await stream.writeChunk(`${i}`, i === 199)
      })
    })
    const window = 256 * 1024
    const pool = await h.pool(address, {
      size: 1,
      initialWindow: window,
      maxWindow: window, // a fixed window (no auto-tuning) makes the bound exact
      streamHighWaterMark: 64 * 1024 * 1024,
    })
    await pool.call('/x')
    const rssBefore = process.memoryUsage().rss
    const flood = pool.callStream('/flood')[Symbol.asyncIterator]()
    await flood.next() // start it, then never read again
    await sleep(300)
    const blockedAt = floodBytes
    // Ten other streams and a call on the same connection finish normally meanwhile.
    const others = await Promise.all(
      Array.from({ length: 10 }, async () => {
        let n = 0
        for await (const _ of pool.callStream('/count', '', { timeout: 3000 })) n++
        return n
      }),
    )
    expect(others).toEqual(Array(10).fill(200))
    expect((await pool.call('/x', '', { timeout: 1000 })).toString()).toBe('x')
    expect(floodBytes).toBe(blockedAt)
    // Window plus one message of slack: nowhere near the 1 GiB the handler tried to send.
    expect(floodBytes).toBeLessThanOrEqual(window + 2 * chunk.length)
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(64 * 1024 * 1024)
    await flood.return?.()
  })

  it('grants credit as the reader consumes, so a large stream completes in order', async () => {
    const { address } = await h.server((s) => {
      s.mux.handle('/x', () => 'x')
      s.mux.handle('/big', async (ctx) => {
        const stream = ctx.stream()
        for (let i = 0; i < 300; i++) await stream.writeChunk(Buffer.alloc(16 * 1024, i % 256), i === 299)
      })
    })
    const pool = await h.pool(address, { initialWindow: 64 * 1024 })
    await pool.call('/x')
    let i = 0
    for await (const chunk of pool.callStream('/big', '', { timeout: 10_000 })) {
      expect(chunk.length).toBe(16 * 1024)
      expect(chunk[0]).toBe(i % 256)
      i++
    }
    expect(i).toBe(300)
  })

  it('bounds a session in both directions and delivers every message', async () => {
    const { address } = await h.server((s) => {
      s.mux.handle('/x', () => 'x')
      s.mux.handle('/echo', async (ctx) => {
        for await (const m of ctx.messages()) await ctx.sendMessage(m)
      })
    })
    const pool = await h.pool(address, { initialWindow: 32 * 1024 })
    await pool.call('/x')
    const session = await pool.createBidirectionalSession('/echo')
    const n = 500
    const payload = Buffer.alloc(4096, 9)
    const sending = (async () => {
      for (let i = 0; i < n; i++) await session.send(Buffer.concat([Buffer.from(`${i}:`), payload]))
      await session.close()
    })()
    let got = 0
    for await (const m of session) {
      expect(m.toString('utf8', 0, m.indexOf(':'))).toBe(`${got}`)
      got++
    }
    await sending
    expect(got).toBe(n)
  })
})

describe('compression', () => {
  it('with compression true, compresses compressible payloads above the threshold and leaves the rest alone', async () => {
    const json = Buffer.from(
      JSON.stringify(Array.from({ length: 400 }, (_, i) => ({ id: i, name: 'item', ok: true }))),
    )
    const random = Buffer.from(Array.from({ length: 16 * 1024 }, () => Math.floor(Math.random() * 256)))
    const { address, port } = await h.server(
      (s) => {
        s.mux.handle('/echo', (ctx) => ctx.payload)
      },
      { compression: true },
    )
    const proxy = await new FaultProxy(port).start()
    proxies.push(proxy)
    void address
    // Each call has a deadline and a failure names its step: this test timed out (20 s) once in
    // CI and did not again in 22 runs (10 beside CPU-burning processes); if it
    // happens again, the failure should say which call stalled and how.
    const measure = async (label: string, compression: boolean, payload: Buffer) => {
      const pool = await h.pool(proxy.address, { compression })
      const call = (value: Buffer | string, step: string) =>
        pool.call('/echo', value, { timeout: 5000 }).catch((err: RpcError) => {
          throw new Error(`${label}, ${step}: ${err.code} ${err.message}`, { cause: err })
        })
      await call('warm', 'warm-up call')
      await sleep(20)
      const before = proxy.bytes
      for (let i = 0; i < 10; i++) expect(await call(payload, `call ${i}`)).toEqual(payload)
      return proxy.bytes - before
    }
    const jsonOff = await measure('JSON, compression off', false, json)
    const jsonOn = await measure('JSON, compression on', true, json)
    const randomOn = await measure('random, compression on', true, random)
    const randomOff = await measure('random, compression off', false, random)
    expect(jsonOn).toBeLessThan(jsonOff / 4)
    // Incompressible data is sent as it is: no gain, and no loss beyond noise.
    expect(randomOn).toBeLessThanOrEqual(randomOff * 1.02)
  })

  it('fails a call whose compressed reply inflates past maxFrameSize with RESOURCE_EXHAUSTED (zip bomb)', async () => {
    const bomb = deflateRawSync(Buffer.alloc(64 * 1024 * 1024))
    expect(bomb.length).toBeLessThan(100 * 1024)
    const { address } = await stub((frame, socket) => {
      const reply = frame.type === '/bomb' ? bomb : deflateRawSync(Buffer.from('fine'))
      socket.write(encodeFrame(Flags.RESPONSE | Flags.COMPRESSED, frame.id, '', reply))
    }, true)
    const pool = await h.pool(address, { maxFrameSize: 1024 * 1024 })
    await sleep(50) // let the stub's HELLO arrive
    const rssBefore = process.memoryUsage().rss
    expect(await codeOf(pool.call('/bomb', '', { timeout: 2000 }))).toBe(Code.RESOURCE_EXHAUSTED)
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(32 * 1024 * 1024)
    // Only that call failed: the connection still works.
    expect((await pool.call('/ok', '', { timeout: 2000 })).toString()).toBe('fine')
  })

  it('treats a compressed frame on a connection without compression as a protocol error', async () => {
    const { address } = await stub((frame, socket) => {
      socket.write(
        encodeFrame(Flags.RESPONSE | Flags.COMPRESSED, frame.id, '', deflateRawSync(Buffer.from('x'))),
      )
    })
    const pool = await h.pool(address, { helloTimeout: 100 })
    expect(await codeOf(pool.call('/x', '', { timeout: 2000 }))).toBe(Code.PROTOCOL_ERROR)
  })
})

describe('keepalive', () => {
  it('detects a black-holed link within the keepalive timeout and fails calls with UNAVAILABLE', async () => {
    const { port } = await h.server((s) => {
      s.mux.handle('/x', () => 'x')
      s.mux.handle('/hang', () => new Promise(() => {}))
    })
    const proxy = await new FaultProxy(port).start()
    proxies.push(proxy)
    const pool = await h.pool(proxy.address, { keepalive: { interval: 100, timeout: 100 } })
    await pool.call('/x')
    await sleep(20)
    const call = codeOf(pool.call('/hang'))
    proxy.blackhole()
    const started = performance.now()
    expect(await call).toBe(Code.UNAVAILABLE)
    // At most one idle interval, one ping timeout, and timer slack.
    expect(performance.now() - started).toBeLessThan(500)
  })
})

describe('drain (GOAWAY)', () => {
  it('loses no accepted call in a rolling restart under steady load', async () => {
    const handlers = (s: import('@srpc/server').Server) =>
      s.mux.handle('/work', async (ctx) => {
        await sleep(Number(ctx.payload.toString()) % 20)
        return ctx.payload
      })
    const a = await h.server(handlers)
    const b = await h.server(handlers)
    const proxy = await new FaultProxy(a.port).start()
    proxies.push(proxy)
    const pool = await h.pool(proxy.address, { size: 2 })
    await pool.connect()
    let sent = 0
    const failures: string[] = []
    const load = (async () => {
      const deadline = performance.now() + 800
      const inFlight = new Set<Promise<void>>()
      while (performance.now() < deadline) {
        const i = sent++
        const p = pool
          .call('/work', `${i}`, { timeout: 3000 })
          .then((reply) => {
            if (reply.toString() !== `${i}`) failures.push(`wrong reply for ${i}`)
          })
          .catch((e: RpcError) => {
            failures.push(`${i}: ${e.code} ${e.message}`)
          })
          .finally(() => inFlight.delete(p))
        inFlight.add(p)
        if (inFlight.size >= 32) await Promise.race(inFlight)
      }
      await Promise.all(inFlight)
    })()
    await sleep(200)
    // Restart: new connections go to b, then a drains.
    proxy.retarget(b.port)
    await a.server.shutdown({ timeout: 3000 })
    await load
    expect(sent).toBeGreaterThan(100)
    expect(failures).toEqual([])
  })
})

import { Code, RpcError } from '@srpc/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import { Harness, sleep } from './harness'

const h = new Harness()
afterEach(() => h.cleanup())

async function rejection(promise: Promise<unknown>): Promise<RpcError> {
  const err = await promise.then(
    () => {
      throw new Error('expected a rejection')
    },
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(RpcError)
  return err as RpcError
}

describe('typed errors', () => {
  it('carries a handler RpcError code and message to the caller', async () => {
    const { address } = await h.server((s) =>
      s.mux.handle('/deny', () => {
        throw new RpcError(Code.PERMISSION_DENIED, 'not for you')
      }),
    )
    const pool = await h.pool(address)
    const err = await rejection(pool.call('/deny'))
    expect(err.code).toBe(Code.PERMISSION_DENIED)
    expect(err.message).toBe('not for you')
  })

  it('turns any other exception into INTERNAL without leaking its message or stack', async () => {
    const seen: Error[] = []
    const { address, server } = await h.server((s) =>
      s.mux.handle('/bug', async () => {
        throw new TypeError('secret detail at /home/app/src/db.ts:42')
      }),
    )
    server.on('error', (e) => seen.push(e))
    const pool = await h.pool(address)
    const err = await rejection(pool.call('/bug'))
    expect(err.code).toBe(Code.INTERNAL)
    expect(err.message).not.toContain('secret')
    expect(err.message).not.toContain('db.ts')
    expect(seen.map((e) => e.message)).toEqual(['secret detail at /home/app/src/db.ts:42'])
  })

  it('answers an unknown route with NOT_FOUND, for calls, streams and sessions', async () => {
    const { address } = await h.server(() => {})
    const pool = await h.pool(address)
    expect((await rejection(pool.call('/nope'))).code).toBe(Code.NOT_FOUND)
    const streamErr = await rejection(
      (async () => {
        for await (const _ of pool.callStream('/nope')) {
          // no chunks expected
        }
      })(),
    )
    expect(streamErr.code).toBe(Code.NOT_FOUND)
    const session = await pool.createBidirectionalSession('/nope')
    expect((await rejection(session.receive())).code).toBe(Code.NOT_FOUND)
  })

  it('fails a handler that returns without replying with INTERNAL', async () => {
    const { address } = await h.server((s) => s.mux.handle('/silent', () => {}))
    const pool = await h.pool(address)
    const err = await rejection(pool.call('/silent'))
    expect(err.code).toBe(Code.INTERNAL)
  })

  it('rejects bad call options with INVALID_ARGUMENT naming the option', async () => {
    const { address } = await h.server((s) => s.mux.handle('/x', () => 'x'))
    const pool = await h.pool(address)
    const err = await rejection(pool.call('/x', '', { timeout: -5 }))
    expect(err.code).toBe(Code.INVALID_ARGUMENT)
    expect(err.message).toContain('timeout')
  })
})

describe('deadlines', () => {
  it('rejects with DEADLINE_EXCEEDED on time, discards the late reply, and keeps the connection usable', async () => {
    let aborted: unknown
    const { address } = await h.server((s) => {
      s.mux.handle('/slow', async (ctx) => {
        await sleep(300)
        aborted = ctx.signal.reason
        return 'late'
      })
      s.mux.handle('/fast', () => 'fast')
    })
    const pool = await h.pool(address, { size: 1 })
    await pool.connect()
    await pool.call('/fast') // lets the capability exchange finish so the deadline travels
    const started = performance.now()
    const err = await rejection(pool.call('/slow', '', { timeout: 100 }))
    const elapsed = performance.now() - started
    expect(err.code).toBe(Code.DEADLINE_EXCEEDED)
    expect(elapsed).toBeGreaterThanOrEqual(95)
    expect(elapsed).toBeLessThan(400)
    await sleep(350) // the late reply arrives and must be dropped quietly
    expect((await pool.call('/fast')).toString()).toBe('fast')
    expect(pool.stats()[0].inFlight).toBe(0)
    // The server saw the deadline too.
    expect((aborted as RpcError | undefined)?.code).toBe(Code.DEADLINE_EXCEEDED)
  })

  it('bounds a whole stream with its timeout', async () => {
    const { address } = await h.server((s) =>
      s.mux.handle('/ticks', async (ctx) => {
        const stream = ctx.stream()
        for (let i = 0; i < 100 && !ctx.signal.aborted; i++) {
          await stream.writeChunk(`${i}`)
          await sleep(20)
        }
      }),
    )
    const pool = await h.pool(address)
    const chunks: string[] = []
    const started = performance.now()
    const err = await rejection(
      (async () => {
        for await (const chunk of pool.callStream('/ticks', '', { timeout: 150 }))
          chunks.push(chunk.toString())
      })(),
    )
    expect(err.code).toBe(Code.DEADLINE_EXCEEDED)
    expect(performance.now() - started).toBeLessThan(600)
    expect(chunks.length).toBeGreaterThan(2)
    expect(chunks.length).toBeLessThan(20)
  })
})

describe('cancellation', () => {
  it('cancels a call with its signal and aborts the handler signal on the server', async () => {
    let serverSaw: Promise<unknown> | undefined
    const { address } = await h.server((s) => {
      s.mux.handle('/wait', (ctx) => {
        serverSaw = new Promise((resolve) =>
          ctx.signal.addEventListener('abort', () => resolve(ctx.signal.reason)),
        )
        return new Promise(() => {}) // never answers by itself
      })
      s.mux.handle('/fast', () => 'ok')
    })
    const pool = await h.pool(address)
    await pool.call('/fast')
    const controller = new AbortController()
    const call = pool.call('/wait', '', { signal: controller.signal })
    await sleep(50)
    const cancelledAt = performance.now()
    controller.abort()
    expect((await rejection(call)).code).toBe(Code.CANCELLED)
    const reason = (await serverSaw) as RpcError
    expect(reason.code).toBe(Code.CANCELLED)
    expect(performance.now() - cancelledAt).toBeLessThan(200)
  })

  it('rejects at once for a signal that is already aborted', async () => {
    const { address } = await h.server((s) => s.mux.handle('/x', () => 'x'))
    const pool = await h.pool(address)
    await pool.call('/x')
    const err = await rejection(pool.call('/x', '', { signal: AbortSignal.abort() }))
    expect(err.code).toBe(Code.CANCELLED)
  })

  it('cancels a stream on the server when the client breaks out of for-await', async () => {
    let aborted: Promise<void> | undefined
    const { address } = await h.server((s) => {
      s.mux.handle('/endless', async (ctx) => {
        aborted = new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve()))
        const stream = ctx.stream()
        for (let i = 0; !ctx.signal.aborted; i++) {
          await stream.writeChunk(`${i}`).catch(() => {})
          await sleep(5)
        }
      })
      s.mux.handle('/fast', () => 'ok')
    })
    const pool = await h.pool(address)
    await pool.call('/fast')
    const seen: string[] = []
    for await (const chunk of pool.callStream('/endless')) {
      seen.push(chunk.toString())
      if (seen.length === 3) break
    }
    expect(seen).toEqual(['0', '1', '2'])
    await expect(aborted).resolves.toBeUndefined()
  })

  it('cancels a session on the server when close() times out', async () => {
    let aborted = false
    const { address } = await h.server((s) => {
      s.mux.handle('/stubborn', async (ctx) => {
        // Ignores the client's half-close: keeps the session open until cancelled.
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()))
        aborted = true
      })
      s.mux.handle('/fast', () => 'ok')
    })
    const pool = await h.pool(address)
    await pool.call('/fast')
    const session = await pool.createBidirectionalSession('/stubborn', { closeTimeout: 100 })
    await session.close()
    await sleep(50)
    expect(aborted).toBe(true)
  })
})

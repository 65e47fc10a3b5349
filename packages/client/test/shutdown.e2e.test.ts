import { Code, RpcError } from '@srpc/protocol'
import type { Context } from '@srpc/server'
import { afterEach, describe, expect, it } from 'vitest'
import { errorOf, Harness, sleep } from './harness'

const h = new Harness()
afterEach(() => h.cleanup())

/** Resolves when the server begins its graceful shutdown, with the signal's reason. */
function shutdownBegins(ctx: Context): Promise<unknown> {
  const signal = ctx.shutdownSignal
  if (signal.aborted) return Promise.resolve(signal.reason)
  return new Promise((resolve) =>
    signal.addEventListener('abort', () => resolve(signal.reason), { once: true }),
  )
}

describe('ctx.shutdownSignal', () => {
  it('lets a session handler say goodbye and return: the client reads the goodbye, then a clean end', async () => {
    const { address, server } = await h.server((s) =>
      s.mux.handle('/chat', async (ctx) => {
        await ctx.sendMessage('hello')
        const reason = (await shutdownBegins(ctx)) as RpcError
        await ctx.sendMessage(`goodbye: ${reason.code} ${reason.message}`)
      }),
    )
    const pool = await h.pool(address)
    const session = await pool.createBidirectionalSession('/chat')
    expect((await session.receive())?.toString()).toBe('hello')

    const shutdownAt = performance.now()
    const shutdown = server.shutdown({ timeout: 5000 })
    expect((await session.receive())?.toString()).toBe('goodbye: UNAVAILABLE server is shutting down')
    expect(await session.receive()).toBeUndefined()
    await session.close()
    expect(session.error).toBeUndefined()
    await shutdown
    // The session ended on its own: the shutdown did not wait for its timeout.
    expect(performance.now() - shutdownAt).toBeLessThan(2000)
    expect(server.state).toBe('closed')
  })

  it('lets a server stream end with a last chunk of its own', async () => {
    const { address, server } = await h.server((s) =>
      s.mux.handle('/ticks', async (ctx) => {
        const stream = ctx.stream()
        await stream.writeChunk('tick')
        await shutdownBegins(ctx)
        await stream.writeChunk('last tick', true)
      }),
    )
    const pool = await h.pool(address)
    const chunks: string[] = []
    const read = (async () => {
      for await (const chunk of pool.callStream('/ticks', '', { timeout: 5000 }))
        chunks.push(chunk.toString())
    })()
    while (chunks.length === 0) await sleep(5)
    await server.shutdown({ timeout: 5000 })
    await read
    expect(chunks).toEqual(['tick', 'last tick'])
  })

  it('is already aborted for a call that starts after the shutdown began', async () => {
    let releaseFirst!: () => void
    const firstRunning = new Promise<void>((resolve) => {
      releaseFirst = resolve
    })
    const { address, server } = await h.server(
      (s) => {
        s.mux.handle('/first', async (ctx) => {
          releaseFirst()
          await shutdownBegins(ctx)
          return 'first done'
        })
        // Queued behind /first (one worker): it starts only once the shutdown is under way.
        s.mux.handle('/second', (ctx) => `aborted=${ctx.shutdownSignal.aborted}`)
      },
      { workers: 1 },
    )
    const pool = await h.pool(address)
    await pool.connect()
    const first = pool.call('/first', '', { timeout: 5000 })
    await firstRunning
    const second = pool.call('/second', '', { timeout: 5000 })
    // Let /second reach the server's queue before the shutdown refuses new calls.
    await sleep(50)
    const shutdown = server.shutdown({ timeout: 5000 })
    expect((await first).toString()).toBe('first done')
    expect((await second).toString()).toBe('aborted=true')
    await shutdown
  })
})

describe('the shutdown timeout', () => {
  it('fails a session whose handler ignores the shutdown with UNAVAILABLE "server is shutting down"', async () => {
    const { address, server } = await h.server((s) =>
      s.mux.handle('/hold', async (ctx) => {
        await ctx.sendMessage('hello')
        for await (const _ of ctx.messages()) {
          // ignores everything, including the shutdown
        }
      }),
    )
    const pool = await h.pool(address)
    const session = await pool.createBidirectionalSession('/hold')
    expect((await session.receive())?.toString()).toBe('hello')

    const shutdownAt = performance.now()
    const shutdown = server.shutdown({ timeout: 200 })
    const err = await errorOf(session.receive())
    const cutAfter = performance.now() - shutdownAt
    expect(err.code).toBe(Code.UNAVAILABLE)
    expect(err.message).toBe('server is shutting down')
    // The error came with the cut at the timeout, not before.
    expect(cutAfter).toBeGreaterThanOrEqual(190)
    await shutdown
    expect(performance.now() - shutdownAt).toBeLessThan(1500)
  })

  it('fails a unary call still running with the same error, and aborts its ctx.signal', async () => {
    let signalReason: unknown
    const { address, server } = await h.server((s) =>
      s.mux.handle('/forever', (ctx) => {
        ctx.signal.addEventListener('abort', () => {
          signalReason = ctx.signal.reason
        })
        return new Promise(() => {})
      }),
    )
    const pool = await h.pool(address)
    await pool.connect()
    const call = errorOf(pool.call('/forever', '', { timeout: 5000 }))
    await sleep(50)
    await server.shutdown({ timeout: 100 })
    const err = await call
    expect(err.code).toBe(Code.UNAVAILABLE)
    expect(err.message).toBe('server is shutting down')
    // The handler ran: the call is not marked refused, so the pool does not send it again.
    expect(err.refused).toBe(false)
    expect(RpcError.is(signalReason, Code.UNAVAILABLE)).toBe(true)
  })
})

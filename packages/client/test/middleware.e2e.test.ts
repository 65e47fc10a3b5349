import { Code, RpcError } from '@srpc/protocol'
import type { Server } from '@srpc/server'
import { afterEach, describe, expect, it } from 'vitest'
import { codeOf, Harness } from './harness'

const h = new Harness()
afterEach(() => h.cleanup())

const GOOD = { metadata: { authorization: 'Bearer good' } }

function requireToken(server: Server, seen: string[] = []): void {
  server.use(async (ctx, next) => {
    seen.push(ctx.route)
    if (ctx.metadata.authorization !== 'Bearer good') throw new RpcError(Code.UNAUTHENTICATED, 'bad token')
    return next()
  })
}

async function firstChunkCode(stream: AsyncIterable<Buffer>): Promise<string> {
  return codeOf(
    (async () => {
      for await (const _ of stream) return
    })(),
  )
}

describe('middleware on routes nobody registered', () => {
  it('answers a caller without credentials UNAUTHENTICATED before it can learn a route is missing', async () => {
    const seen: string[] = []
    const { address } = await h.server((s) => {
      requireToken(s, seen)
      s.handle('/known', () => 'ok')
    })
    const pool = await h.pool(address)
    // Without a token, a route that exists and one that does not look the same.
    expect(await codeOf(pool.call('/known'))).toBe(Code.UNAUTHENTICATED)
    expect(await codeOf(pool.call('/secret/admin'))).toBe(Code.UNAUTHENTICATED)
    expect(await firstChunkCode(pool.callStream('/secret/feed'))).toBe(Code.UNAUTHENTICATED)
    const session = await pool.createBidirectionalSession('/secret/room')
    expect(await codeOf(session.receive())).toBe(Code.UNAUTHENTICATED)
    // With one, the unknown route is reported as such.
    expect((await pool.call('/known', '', GOOD)).toString()).toBe('ok')
    expect(await codeOf(pool.call('/secret/admin', '', GOOD))).toBe(Code.NOT_FOUND)
    expect(await firstChunkCode(pool.callStream('/secret/feed', '', GOOD))).toBe(Code.NOT_FOUND)
    const authorized = await pool.createBidirectionalSession('/secret/room', GOOD)
    expect(await codeOf(authorized.receive())).toBe(Code.NOT_FOUND)
    expect(seen).toEqual([
      '/known',
      '/secret/admin',
      '/secret/feed',
      '/secret/room',
      '/known',
      '/secret/admin',
      '/secret/feed',
      '/secret/room',
    ])
  })

  it('still answers NOT_FOUND naming the route when there is no middleware', async () => {
    const { address } = await h.server((s) => s.handle('/known', () => 'ok'))
    const pool = await h.pool(address)
    const err = (await pool.call('/nope').catch((e: unknown) => e)) as RpcError
    expect(err.code).toBe(Code.NOT_FOUND)
    expect(err.message).toBe('no handler for route /nope')
  })

  it('hands unknown routes to the fallback, behind the middleware, for every call kind', async () => {
    const { address } = await h.server((s) => {
      requireToken(s)
      s.handle('/known', () => 'known')
      s.fallback(async (ctx) => {
        if (ctx.route.startsWith('/feed/')) {
          const stream = ctx.stream()
          await stream.writeChunk(`feed ${ctx.route.slice(6)}`)
          await stream.writeChunk('end', true)
          return
        }
        if (ctx.route.startsWith('/room/')) {
          for await (const m of ctx.messages()) await ctx.sendMessage(`${ctx.route}: ${m}`)
          return
        }
        return `fallback for ${ctx.route}`
      })
    })
    const pool = await h.pool(address)
    expect((await pool.call('/known', '', GOOD)).toString()).toBe('known')
    expect((await pool.call('/anything/else', '', GOOD)).toString()).toBe('fallback for /anything/else')
    expect(await codeOf(pool.call('/anything/else'))).toBe(Code.UNAUTHENTICATED)
    const chunks: string[] = []
    for await (const chunk of pool.callStream('/feed/7', '', GOOD)) chunks.push(chunk.toString())
    expect(chunks).toEqual(['feed 7', 'end'])
    const session = await pool.createBidirectionalSession('/room/a', GOOD)
    await session.send('hi')
    expect((await session.receive())?.toString()).toBe('/room/a: hi')
    await session.close()
  })

  it('rejects a fallback that is not a function with INVALID_ARGUMENT', async () => {
    const { server } = await h.server(() => {})
    expect(() => server.fallback('nope' as never)).toThrow(
      expect.objectContaining({ code: Code.INVALID_ARGUMENT }),
    )
  })
})

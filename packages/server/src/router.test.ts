import { Code, RpcError } from '@srpc/protocol'
import { describe, expect, it } from 'vitest'
import type { Context } from './context'
import type { Middleware } from './middleware'
import type { Handler } from './mux'
import { Router } from './router'

/** Runs a handler with a context that only knows its route, as middleware and fallback see it. */
async function run(handler: Handler, route: string): Promise<unknown> {
  return handler({ route } as Context)
}

async function codeOf(promise: Promise<unknown>): Promise<Code> {
  try {
    await promise
  } catch (err) {
    if (err instanceof RpcError) return err.code
    throw err
  }
  throw new Error('expected a failure')
}

describe('Router', () => {
  it('matches routes exactly: a trailing slash or a prefix is another route', async () => {
    const router = new Router()
    const health: Handler = () => 'ok'
    router.mux.handle('/health', health)
    expect(router.lookup('/health')).toBe(health)
    expect(await codeOf(run(router.lookup('/health/'), '/health/'))).toBe(Code.NOT_FOUND)
    expect(await codeOf(run(router.lookup('/heal'), '/heal'))).toBe(Code.NOT_FOUND)
  })

  it('sends unknown routes to the fallback, NOT_FOUND naming the route unless replaced', async () => {
    const router = new Router()
    const error = await run(router.lookup('/nope'), '/nope').catch((err: RpcError) => err)
    expect(RpcError.is(error, Code.NOT_FOUND)).toBe(true)
    expect((error as RpcError).message).toBe('no handler for route /nope')
    router.mux.fallback((ctx) => `fallback for ${ctx.route}`)
    expect(await run(router.lookup('/nope'), '/nope')).toBe('fallback for /nope')
  })

  it('keeps what a registration says about its route, in registration order', () => {
    const router = new Router()
    const input = { type: 'object', properties: { id: { type: 'string' } } }
    router.mux.handle('/users/get', () => 'u', { kind: 'unary', input, codec: 'json' })
    router.mux.handle('/plain', () => 'p')
    expect(router.mux.describe('/users/get')).toEqual({ kind: 'unary', input, codec: 'json' })
    expect(router.mux.describe('/plain')).toBeUndefined()
    expect(router.mux.describe('/nope')).toBeUndefined()
    expect(router.mux.list()).toEqual([
      { route: '/users/get', kind: 'unary', input, codec: 'json' },
      { route: '/plain' },
    ])
  })

  it('returns the handler itself when there is no middleware: no wrapper, nothing cached', () => {
    const router = new Router()
    const echo: Handler = (ctx) => ctx.route
    router.mux.handle('/echo', echo)
    expect(router.lookup('/echo')).toBe(echo)
    expect(router.cachedRoutes).toBe(0)
  })

  it('wraps a route in the middleware once and reuses it; use() starts over', async () => {
    const router = new Router()
    const seen: string[] = []
    router.mux.handle('/a', () => 'a')
    router.use((ctx, next) => {
      seen.push(`first ${ctx.route}`)
      return next()
    })
    const wrapped = router.lookup('/a')
    expect(router.lookup('/a')).toBe(wrapped)
    expect(router.cachedRoutes).toBe(1)
    expect(await run(wrapped, '/a')).toBe('a')
    const second: Middleware = (ctx, next) => {
      seen.push(`second ${ctx.route}`)
      return next()
    }
    router.use(second)
    expect(router.cachedRoutes).toBe(0)
    const rewrapped = router.lookup('/a')
    expect(rewrapped).not.toBe(wrapped)
    expect(await run(rewrapped, '/a')).toBe('a')
    expect(seen).toEqual(['first /a', 'first /a', 'second /a'])
  })

  it("shares one wrapped fallback between all unknown routes, so a stranger's routes cost no memory", async () => {
    const router = new Router()
    router.mux.handle('/known', () => 'known')
    router.use((_ctx, next) => next())
    const first = router.lookup('/unknown/0')
    for (let i = 1; i < 10_000; i++) expect(router.lookup(`/unknown/${i}`)).toBe(first)
    expect(router.cachedRoutes).toBe(0)
    expect(await codeOf(run(first, '/unknown/7'))).toBe(Code.NOT_FOUND)
  })

  it('wraps a new fallback in the middleware when the fallback changes', async () => {
    const router = new Router()
    const seen: string[] = []
    router.use((ctx, next) => {
      seen.push(ctx.route)
      return next()
    })
    const before = router.lookup('/x')
    router.mux.fallback(() => 'replaced')
    const after = router.lookup('/x')
    expect(after).not.toBe(before)
    expect(await run(after, '/x')).toBe('replaced')
    expect(seen).toEqual(['/x'])
  })
})

import { Code, type Interceptor, RpcError } from '@srpc/server'
import { afterEach, describe, expect, it } from 'vitest'
import { codeOf, Harness } from './harness'

const h = new Harness()
afterEach(() => h.cleanup())

const LIST = '/srpc.reflection/list'
const cartInput = { type: 'object', properties: { sku: { type: 'string' } }, required: ['sku'] }
const cartOutput = { type: 'object', properties: { count: { type: 'integer' } } }

describe('/srpc.reflection/list', () => {
  it('lists every route in registration order with its kind, schemas and codec as registered', async () => {
    const { address } = await h.server(
      (s) => {
        s.handle('/shop.Cart/Add', () => '{}', {
          kind: 'unary',
          input: cartInput,
          output: cartOutput,
          codec: 'json',
          description: 'Adds an item',
        })
        s.handle('/shop.Cart/Watch', () => {}, { kind: 'server-stream' })
        s.handle('/plain', () => 'x')
      },
      { reflection: true },
    )
    const pool = await h.pool(address)
    const { routes } = JSON.parse((await pool.call(LIST)).toString())
    expect(routes.map((r: { route: string }) => r.route)).toEqual([
      '/srpc.health/check',
      '/srpc.health/watch',
      '/srpc.reflection/list',
      '/shop.Cart/Add',
      '/shop.Cart/Watch',
      '/plain',
    ])
    expect(routes[3]).toEqual({
      route: '/shop.Cart/Add',
      kind: 'unary',
      input: cartInput,
      output: cartOutput,
      codec: 'json',
      description: 'Adds an item',
    })
    expect(routes[4]).toEqual({ route: '/shop.Cart/Watch', kind: 'server-stream' })
    expect(routes[5]).toEqual({ route: '/plain' })
    expect(routes[0]).toMatchObject({ kind: 'unary', codec: 'json' })
    expect(routes[1]).toMatchObject({ kind: 'server-stream', codec: 'json' })
    expect(routes[2]).toMatchObject({ kind: 'unary', codec: 'json' })
  })

  it('is off with reflection: false, and by default when NODE_ENV is production', async () => {
    const off = await h.server(() => {}, { reflection: false })
    expect(await codeOf((await h.pool(off.address)).call(LIST))).toBe(Code.NOT_FOUND)
    const before = process.env.NODE_ENV
    process.env.NODE_ENV = 'production'
    try {
      const production = await h.server(() => {})
      expect(production.server.options.reflection).toBe(false)
      expect(await codeOf((await h.pool(production.address)).call(LIST))).toBe(Code.NOT_FOUND)
      // Health stays: probes need it in production most of all.
      expect((await (await h.pool(production.address)).call('/srpc.health/check')).toString()).toContain(
        'SERVING',
      )
    } finally {
      process.env.NODE_ENV = before
    }
    const development = await h.server(() => {})
    expect(development.server.options.reflection).toBe(true)
  })

  it('goes through the interceptors and middleware like any route, as gRPC services do', async () => {
    const seen: string[] = []
    const auth: Interceptor = (next) => (call) => {
      seen.push(call.route)
      if (call.metadata.authorization !== 'secret') throw new RpcError(Code.UNAUTHENTICATED, 'no token')
      return next(call)
    }
    const { address } = await h.server(() => {}, { reflection: true, interceptors: [auth] })
    const pool = await h.pool(address)
    expect(await codeOf(pool.call(LIST))).toBe(Code.UNAUTHENTICATED)
    const reply = await pool.call(LIST, '', { metadata: { authorization: 'secret' } })
    expect(JSON.parse(reply.toString()).routes.length).toBe(3)
    expect(seen).toEqual([LIST, LIST])
  })
})

import type { Pool } from '@srpc/client'
import type { Context, Server } from '@srpc/server'
import type { WebClient } from '@srpc/web'
import { describe, expectTypeOf, it } from 'vitest'
import { z } from 'zod'
import type { RpcClientLike, RpcSession, TypedClientSession } from '../src/index'
import { contract, createClient, implement, serverStream, session, unary } from '../src/index'

const User = z.object({ id: z.string(), name: z.string() })
type User = z.infer<typeof User>
const Users = contract('users', {
  get: unary({ input: z.object({ id: z.string() }), output: User }),
  list: serverStream({ input: z.object({ limit: z.number() }), output: User }),
  chat: session({ input: z.object({ text: z.string() }), output: z.object({ text: z.string() }) }),
})
declare const server: Server
declare const pool: Pool
declare const webClient: WebClient
const user: User = { id: '1', name: 'a' }

describe('createClient', () => {
  const users = createClient(pool, Users)

  it('types each method by its kind and schemas', () => {
    expectTypeOf(users.get).parameter(0).toEqualTypeOf<{ id: string }>()
    expectTypeOf(users.get).returns.toEqualTypeOf<Promise<User>>()
    expectTypeOf(users.list({ limit: 1 })).toMatchTypeOf<AsyncIterable<User>>()
    expectTypeOf(users.chat).returns.toEqualTypeOf<
      Promise<TypedClientSession<{ text: string }, { text: string }>>
    >()
  })

  it('refuses a wrong input shape', () => {
    // @ts-expect-error id must be a string
    users.get({ id: 42 })
    // @ts-expect-error a missing field
    users.get({})
    // @ts-expect-error an unknown field in a literal
    users.list({ limit: 1, offset: 2 })
  })

  it('refuses a unary call on a stream method and a stream read on a unary method', async () => {
    // @ts-expect-error a stream is not a promise of one User
    const one: User = await users.list({ limit: 1 })
    // @ts-expect-error a unary reply cannot be iterated
    for await (const _ of users.get({ id: '1' }));
    // @ts-expect-error a session takes no input and sends typed messages
    await (await users.chat()).send({ text: 1 })
    void one
  })

  it('has no methods the contract lacks', () => {
    // @ts-expect-error not in the contract
    users.remove({ id: '1' })
  })
})

describe('the client underneath', () => {
  it('accepts a Node Pool and a browser WebClient', () => {
    expectTypeOf(pool).toMatchTypeOf<RpcClientLike>()
    expectTypeOf(webClient).toMatchTypeOf<RpcClientLike>()
    expectTypeOf<Awaited<ReturnType<Pool['createBidirectionalSession']>>>().toMatchTypeOf<RpcSession>()
    expectTypeOf<Awaited<ReturnType<WebClient['createBidirectionalSession']>>>().toMatchTypeOf<RpcSession>()
    const web = createClient(webClient, Users)
    expectTypeOf(web.get).returns.toEqualTypeOf<Promise<User>>()
    expectTypeOf(web.chat).returns.toEqualTypeOf<
      Promise<TypedClientSession<{ text: string }, { text: string }>>
    >()
  })

  it('passes through the options of the client underneath, and only those', () => {
    const viaPool = createClient(pool, Users)
    viaPool.get({ id: '1' }, { retry: { maxAttempts: 2 }, timeout: 10 })
    const viaWeb = createClient(webClient, Users)
    viaWeb.get({ id: '1' }, { timeout: 10, waitForReady: true })
    // @ts-expect-error a WebClient has no retry
    viaWeb.get({ id: '1' }, { retry: { maxAttempts: 2 } })
    viaWeb.chat({ closeTimeout: 100 })
  })

  it('refuses something that is not a client', () => {
    createClient(
      {
        // @ts-expect-error replies that are strings, not bytes
        call: async () => 'x',
        callStream: pool.callStream,
        createBidirectionalSession: pool.createBidirectionalSession,
      },
      Users,
    )
    // @ts-expect-error no sessions
    createClient({ call: pool.call, callStream: pool.callStream }, Users)
    // @ts-expect-error a session without cancel
    const noCancel: RpcSession = { ...({} as RpcSession), cancel: undefined }
    void noCancel
    // @ts-expect-error not a client at all
    createClient(fetch, Users)
  })
})

describe('implement', () => {
  it('accepts handlers of the right shapes', () => {
    implement(server, Users, {
      get: async ({ id }, ctx) => {
        // The server's own context type, inferred from the server passed in.
        expectTypeOf(ctx).toEqualTypeOf<Context>()
        return { id, name: 'x' }
      },
      list: async function* ({ limit }) {
        expectTypeOf(limit).toEqualTypeOf<number>()
        yield user
      },
      chat: async (s, ctx) => {
        expectTypeOf(ctx).toEqualTypeOf<Context>()
        for await (const m of s.messages()) await s.send({ text: m.text })
      },
    })
  })

  it('refuses something that is not a server', () => {
    // @ts-expect-error no handle()
    implement({ listen: server.listen }, Users, {
      get: () => user,
      list: function* () {},
      chat: async () => {},
    })
  })

  it('refuses a missing method', () => {
    // @ts-expect-error chat is missing
    implement(server, Users, {
      get: () => user,
      list: function* () {
        yield user
      },
    })
  })

  it('refuses a wrong return type', () => {
    implement(server, Users, {
      // @ts-expect-error name is missing from the output
      get: () => ({ id: '1' }),
      list: function* () {
        yield user
      },
      chat: async () => {},
    })
    implement(server, Users, {
      get: () => user,
      // @ts-expect-error a stream method must yield Users, not return one
      list: async () => user,
      chat: async () => {},
    })
  })

  it('refuses a method the contract does not have', () => {
    implement(server, Users, {
      get: () => user,
      list: function* () {
        yield user
      },
      chat: async () => {},
      // @ts-expect-error not in the contract
      remove: () => undefined,
    })
  })
})

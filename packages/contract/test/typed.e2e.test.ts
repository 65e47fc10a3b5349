import { create } from '@bufbuild/protobuf'
import { Int32ValueSchema, StringValueSchema } from '@bufbuild/protobuf/wkt'
import { Code, RpcError } from '@srpc/protocol'
import { type } from 'arktype'
import * as v from 'valibot'
import { afterEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  bytes,
  type Codec,
  contract,
  createClient,
  implement,
  json,
  msgpack,
  protobuf,
  serverStream,
  session,
  unary,
} from '../src/index'
import { collect, errorOf, Harness } from './harness'

const h = new Harness()
afterEach(() => h.cleanup())

const User = z.object({ id: z.string(), name: z.string(), tags: z.array(z.string()) })
type User = z.infer<typeof User>
const users: User[] = Array.from({ length: 5 }, (_, i) => ({
  id: String(i),
  name: `user ${i}`,
  tags: ['a', `t${i}`],
}))

function usersContract(codec?: Codec) {
  return contract(
    'users',
    {
      get: unary({ input: z.object({ id: z.string() }), output: User }),
      list: serverStream({
        input: z.object({ limit: z.number().int().max(100), after: z.string().optional() }),
        output: User,
      }),
      chat: session({
        input: z.object({ text: z.string() }),
        output: z.object({ text: z.string(), n: z.number() }),
      }),
    },
    codec ? { codec } : {},
  )
}

function serveUsers(c: ReturnType<typeof usersContract>) {
  return (server: Parameters<typeof implement>[0]) =>
    implement(server, c, {
      get: async ({ id }) => {
        const user = users.find((u) => u.id === id)
        if (!user) throw new RpcError(Code.NOT_FOUND, `no user ${id}`, { details: { id } })
        return user
      },
      list: async function* ({ limit }) {
        yield* users.slice(0, limit)
      },
      chat: async (s) => {
        let n = 0
        for await (const m of s.messages()) await s.send({ text: m.text.toUpperCase(), n: ++n })
      },
    })
}

describe.each([
  ['json', json],
  ['msgpack', msgpack],
])('a %s contract over TLS', (_name, codec) => {
  it('serves all three kinds with typed values', async () => {
    const c = usersContract(codec)
    const { pool } = await h.start(serveUsers(c))
    const client = createClient(pool, c, { validateOutput: true })
    expect(await client.get({ id: '3' }, { timeout: 2000 })).toEqual(users[3])
    expect(await collect(client.list({ limit: 2 }))).toEqual(users.slice(0, 2))
    const chat = await client.chat()
    await chat.send({ text: 'hi' })
    await chat.send({ text: 'yo' })
    expect(await chat.receive()).toEqual({ text: 'HI', n: 1 })
    expect(await chat.receive()).toEqual({ text: 'YO', n: 2 })
    await chat.close()
    expect(await chat.receive()).toBeUndefined()
  })

  it('answers an invalid input with INVALID_ARGUMENT and every issue with its path', async () => {
    const c = usersContract(codec)
    const { pool } = await h.start(serveUsers(c))
    const client = createClient(pool, c)
    const bad = await errorOf(collect(client.list({ limit: 101, after: 7 as unknown as string })))
    expect(bad.code).toBe(Code.INVALID_ARGUMENT)
    expect(bad.details).toEqual({
      issues: [
        { path: ['limit'], message: expect.stringMatching(/100/) },
        { path: ['after'], message: expect.any(String) },
      ],
    })
    expect(bad.message).toMatch(/^invalid input: limit: .* \(and 1 more\)$/)
    // A wrong shape sent as raw bytes on the same route: the server checks, not only the types.
    const raw = await errorOf(pool.call('/users/get', codec.encode({ id: 42 }, z.any())))
    expect(raw.code).toBe(Code.INVALID_ARGUMENT)
    expect(raw.details).toEqual({ issues: [{ path: ['id'], message: expect.any(String) }] })
  })

  it('gets the issues even on the first call of a new connection', async () => {
    const c = usersContract(codec)
    const { pool } = await h.start(serveUsers(c), { fresh: true })
    const bad = await errorOf(createClient(pool, c).get({ id: 7 as unknown as string }))
    expect(bad.code).toBe(Code.INVALID_ARGUMENT)
    expect(bad.details).toEqual({ issues: [{ path: ['id'], message: expect.any(String) }] })
  })

  it('ends a session with INVALID_ARGUMENT and the issues when a client message is invalid', async () => {
    const c = usersContract(codec)
    const { pool } = await h.start(serveUsers(c))
    const chat = await createClient(pool, c).chat()
    await chat.send({ text: 'ok' })
    expect(await chat.receive()).toEqual({ text: 'OK', n: 1 })
    await chat.send({ text: 42 as unknown as string })
    const err = await errorOf(chat.receive())
    expect(err.code).toBe(Code.INVALID_ARGUMENT)
    expect(err.details).toEqual({ issues: [{ path: ['text'], message: expect.any(String) }] })
    expect(h.serverErrors).toEqual([])
  })

  it('delivers a handler error with its details', async () => {
    const c = usersContract(codec)
    const { pool } = await h.start(serveUsers(c))
    const err = await errorOf(createClient(pool, c).get({ id: '42' }))
    expect(err.code).toBe(Code.NOT_FOUND)
    expect(err.message).toBe('no user 42')
    expect(err.details).toEqual({ id: '42' })
  })
})

describe('the msgpack codec', () => {
  it('keeps Date and Uint8Array through a round trip', async () => {
    const Doc = z.object({ at: z.date(), blob: z.instanceof(Uint8Array) })
    const c = contract('docs', { echo: unary({ input: Doc, output: Doc }) }, { codec: msgpack })
    const { pool } = await h.start((s) => implement(s, c, { echo: (doc) => doc }))
    const at = new Date('2026-01-02T03:04:05.678Z')
    const out = await createClient(pool, c, { validateOutput: true }).echo({
      at,
      blob: Uint8Array.of(1, 2, 255),
    })
    expect(out.at).toBeInstanceOf(Date)
    expect(out.at.getTime()).toBe(at.getTime())
    expect([...out.blob]).toEqual([1, 2, 255])
  })
})

describe('the protobuf codec', () => {
  it('serves all three kinds with message types as schemas', async () => {
    const c = contract(
      'proto',
      {
        get: unary({ input: StringValueSchema, output: Int32ValueSchema }),
        count: serverStream({ input: Int32ValueSchema, output: Int32ValueSchema }),
        echo: session({ input: StringValueSchema, output: StringValueSchema }),
      },
      { codec: protobuf },
    )
    const { pool } = await h.start((s) =>
      implement(s, c, {
        get: (msg) => ({ value: msg.value.length }),
        count: function* (msg) {
          for (let i = 1; i <= msg.value; i++) yield create(Int32ValueSchema, { value: i })
        },
        echo: async (s) => {
          for await (const m of s.messages()) await s.send({ value: `${m.value}!` })
        },
      }),
    )
    const client = createClient(pool, c)
    expect((await client.get({ value: 'hello' })).value).toBe(5)
    expect((await collect(client.count({ value: 3 }))).map((m) => m.value)).toEqual([1, 2, 3])
    const echo = await client.echo()
    await echo.send({ value: 'a' })
    expect((await echo.receive())?.value).toBe('a!')
    await echo.close()
    // Bytes that are no protobuf message: INVALID_ARGUMENT before the handler.
    const err = await errorOf(pool.call('/proto/get', Buffer.from([0x0a, 0xff, 0xff])))
    expect(err.code).toBe(Code.INVALID_ARGUMENT)
  })
})

describe('the bytes codec', () => {
  it('passes payloads through untouched, for all three kinds', async () => {
    const B = z.instanceof(Uint8Array)
    const c = contract(
      'blob',
      {
        rev: unary({ input: B, output: B }),
        split: serverStream({ input: B, output: B }),
        echo: session({ input: B, output: B }),
      },
      { codec: bytes },
    )
    const { pool } = await h.start((s) =>
      implement(s, c, {
        rev: (b) => Uint8Array.from(b).reverse(),
        split: function* (b) {
          for (const byte of b) yield Uint8Array.of(byte)
        },
        echo: async (s) => {
          for await (const m of s.messages()) await s.send(m)
        },
      }),
    )
    const client = createClient(pool, c)
    expect([...(await client.rev(Uint8Array.of(1, 2, 3)))]).toEqual([3, 2, 1])
    expect((await collect(client.split(Uint8Array.of(7, 8)))).map((b) => [...b])).toEqual([[7], [8]])
    const echo = await client.echo()
    await echo.send(Uint8Array.of(0, 255))
    expect([...((await echo.receive()) ?? [])]).toEqual([0, 255])
    await echo.close()
    // The same route is a plain srpc route: pool.call gets the raw reply.
    expect([...(await pool.call('/blob/rev', Buffer.from([9, 8])))]).toEqual([8, 9])
  })
})

describe('schemas from any Standard Schema library', () => {
  it('validate with valibot and arktype too, and reflection gets JSON Schema where the library offers it', async () => {
    const c = contract('mixed', {
      zod: unary({ input: z.object({ n: z.number() }), output: z.number() }),
      valibot: unary({ input: v.object({ n: v.number() }), output: v.number() }),
      ark: unary({ input: type({ n: 'number' }), output: type('number') }),
    })
    const { server, pool } = await h.start((s) =>
      implement(s, c, { zod: ({ n }) => n * 2, valibot: ({ n }) => n * 3, ark: ({ n }) => n * 4 }),
    )
    const client = createClient(pool, c)
    expect([await client.zod({ n: 1 }), await client.valibot({ n: 1 }), await client.ark({ n: 1 })]).toEqual([
      2, 3, 4,
    ])
    for (const route of ['/mixed/zod', '/mixed/valibot', '/mixed/ark']) {
      const err = await errorOf(pool.call(route, '{"n":"x"}'))
      expect(err.code).toBe(Code.INVALID_ARGUMENT)
      expect((err.details as { issues: { path: unknown[] }[] }).issues[0].path).toEqual(['n'])
    }
    // The server's own services (health, reflection) are listed too; this contract's routes follow.
    const listed = server.mux.list().filter((r) => r.route.startsWith('/mixed/'))
    expect(listed.map((r) => [r.route, r.kind, r.codec])).toEqual([
      ['/mixed/zod', 'unary', 'json'],
      ['/mixed/valibot', 'unary', 'json'],
      ['/mixed/ark', 'unary', 'json'],
    ])
    const inputSchema = { type: 'object', properties: { n: { type: 'number' } }, required: ['n'] }
    expect(server.mux.describe('/mixed/zod')?.input).toMatchObject(inputSchema)
    expect(server.mux.describe('/mixed/ark')?.input).toMatchObject(inputSchema)
    expect(server.mux.describe('/mixed/valibot')?.input).toBeUndefined()
  })
})

describe('a handler that breaks its contract', () => {
  it('returning an invalid output fails with INTERNAL before anything is sent, and the server reports it', async () => {
    const c = contract('bad', {
      get: unary({ input: z.object({}), output: z.object({ n: z.number() }) }),
      list: serverStream({ input: z.object({}), output: z.number() }),
    })
    const { pool } = await h.start((s) =>
      implement(s, c, {
        get: () => ({ n: 'nope' }) as unknown as { n: number },
        list: function* () {
          yield 1
          yield 'two' as unknown as number
        },
      }),
    )
    const client = createClient(pool, c)
    const err = await errorOf(client.get({}))
    expect(err.code).toBe(Code.INTERNAL)
    const seen: number[] = []
    const streamErr = await errorOf(
      (async () => {
        for await (const n of client.list({})) seen.push(n)
      })(),
    )
    expect(seen).toEqual([1])
    expect(streamErr.code).toBe(Code.INTERNAL)
    expect(h.serverErrors.map((e) => e.message)).toEqual([
      expect.stringContaining('/bad/get returned an invalid output'),
      expect.stringContaining('/bad/list returned an invalid output'),
    ])
  })

  it('a client with validateOutput refuses a server reply its schema rejects', async () => {
    const loose = contract('v', { get: unary({ input: z.object({}), output: z.any() }) })
    const strict = contract('v', { get: unary({ input: z.object({}), output: z.object({ n: z.number() }) }) })
    const { pool } = await h.start((s) => implement(s, loose, { get: () => ({ n: 'x' }) }))
    expect(await createClient(pool, strict).get({})).toEqual({ n: 'x' })
    const err = await errorOf(createClient(pool, strict, { validateOutput: true }).get({}))
    expect(err.code).toBe(Code.INTERNAL)
    expect((err.details as { issues: { path: unknown[] }[] }).issues[0].path).toEqual(['n'])
  })
})

describe('calls of the wrong kind', () => {
  it('fail with FAILED_PRECONDITION at run time', async () => {
    const c = usersContract()
    const { pool } = await h.start(serveUsers(c))
    const asUnary = await errorOf(pool.call('/users/list', '{"limit":1}'))
    expect(asUnary.code).toBe(Code.FAILED_PRECONDITION)
    expect(asUnary.message).toBe('route /users/list serves server-stream calls, not unary: use callStream()')
    const asStream = await errorOf(collect(pool.callStream('/users/get', '{"id":"1"}')))
    expect(asStream.code).toBe(Code.FAILED_PRECONDITION)
    const asSession = await errorOf(pool.createBidirectionalSession('/users/get').then((s) => s.receive()))
    expect(asSession.code).toBe(Code.FAILED_PRECONDITION)
    const sessionAsUnary = await errorOf(pool.call('/users/chat', '{}'))
    expect(sessionAsUnary.code).toBe(Code.FAILED_PRECONDITION)
  })
})

describe('srpc under a contract', () => {
  it('keeps deadlines, cancellation, metadata both ways and interceptors', async () => {
    const c = contract('svc', {
      slow: unary({ input: z.object({}), output: z.string() }),
      who: unary({ input: z.object({}), output: z.string() }),
      ticks: serverStream({ input: z.object({}), output: z.number() }),
    })
    let cancelled = 0
    const routes: string[] = []
    const { pool } = await h.start(
      (s) =>
        implement(s, c, {
          slow: (_, ctx) =>
            new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve('late'))),
          who: (_, ctx) => {
            ctx.responseMetadata['x-served-by'] = 'test'
            return ctx.metadata.user ?? 'nobody'
          },
          ticks: async function* (_, ctx) {
            try {
              for (let i = 0; ; i++) yield i
            } finally {
              if (ctx.signal.aborted) cancelled++
            }
          },
        }),
      {
        pool: {
          interceptors: [
            (next) => async (call) => {
              routes.push(call.route)
              return next(call)
            },
          ],
        },
      },
    )
    const client = createClient(pool, c)
    expect((await errorOf(client.slow({}, { timeout: 50 }))).code).toBe(Code.DEADLINE_EXCEEDED)
    let served: string | undefined
    const who = await client.who(
      {},
      { metadata: { user: 'ann' }, onResponseMetadata: (md) => (served = md['x-served-by']) },
    )
    expect(who).toBe('ann')
    expect(served).toBe('test')
    const ticks = client.ticks({})
    for await (const n of ticks) if (n === 3) break
    expect(routes).toEqual(['/svc/slow', '/svc/who', '/svc/ticks'])
    await expect.poll(() => cancelled).toBe(1)
  })
})

describe('retries and compression under a contract', () => {
  it('retries a typed call on UNAVAILABLE and carries a large compressible value', async () => {
    const Doc = z.object({ lines: z.array(z.string()) })
    const c = contract('docs', { put: unary({ input: Doc, output: Doc }) })
    let attempts = 0
    const { pool } = await h.start((s) =>
      implement(s, c, {
        put: (doc) => {
          if (++attempts === 1) throw new RpcError(Code.UNAVAILABLE, 'try again')
          return doc
        },
      }),
    )
    const doc = { lines: Array.from({ length: 2000 }, (_, i) => `line ${i} of a long document`) }
    const out = await createClient(pool, c).put(doc, {
      retry: { maxAttempts: 3, backoff: { initial: 1, max: 1 } },
      timeout: 5000,
    })
    expect(out).toEqual(doc)
    expect(attempts).toBe(2)
  })
})

import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Code, RpcError } from '@srpc/protocol'
import type { Context, Server } from '@srpc/server'
import { afterEach, describe, expect, it } from 'vitest'
import type { Pool } from '../src/index'
import { Harness } from './harness'

const h = new Harness()
afterEach(() => h.cleanup())

/** Runs `start` and returns the RpcError its promise rejects with; a synchronous throw fails the test. */
async function rejection(start: () => Promise<unknown>): Promise<RpcError> {
  let promise: Promise<unknown>
  try {
    promise = start()
  } catch (err) {
    throw new Error(`threw synchronously instead of rejecting: ${err}`)
  }
  const err = await promise.then(
    () => {
      throw new Error('expected a rejection')
    },
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(RpcError)
  return err as RpcError
}

/** The error the first `next()` of a stream fails with. */
function firstChunk(pool: Pool, route: unknown, payload: unknown, options?: unknown): Promise<unknown> {
  // biome-ignore lint/suspicious/noExplicitAny: the point is a call plain JavaScript could make
  return (pool.callStream as any)(route, payload, options).next()
}

// biome-ignore lint/suspicious/noExplicitAny: the point is a call plain JavaScript could make
const loose = (value: unknown): any => value

const WRONG_PAYLOADS: [unknown, string][] = [
  [{ a: 1 }, 'object'],
  [null, 'null'],
  [[1, 2], 'array'],
  [42, 'number'],
]

async function echoServer(): Promise<{ server: Server; pool: Pool }> {
  const { server, address } = await h.server((s) => {
    s.handle('/echo', (ctx) => ctx.payload)
    s.handle('/chunks', (ctx) => {
      ctx.stream().writeChunk(ctx.payload, true)
    })
    s.handle('/session', async (ctx) => {
      for await (const message of ctx.messages()) await ctx.sendMessage(message)
    })
  })
  const pool = await h.pool(address)
  return { server, pool }
}

async function expectServing(pool: Pool): Promise<void> {
  expect((await pool.call('/echo', 'still serving', { timeout: 2000 })).toString()).toBe('still serving')
}

describe('client arguments of the wrong type', () => {
  it('rejects a call whose payload is not a string or Uint8Array with INVALID_ARGUMENT naming the type', async () => {
    const { pool } = await echoServer()
    await pool.connect()
    for (const [payload, type] of WRONG_PAYLOADS) {
      const err = await rejection(() => pool.call('/echo', loose(payload)))
      expect(err.code).toBe(Code.INVALID_ARGUMENT)
      expect(err.message).toBe(`payload must be a string or Uint8Array, got ${type}`)
    }
    await expectServing(pool)
  })

  it('rejects a wrong payload the same way while the pool has not connected yet', async () => {
    const { pool } = await echoServer()
    expect(pool.state).toBe('idle')
    const err = await rejection(() => pool.call('/echo', loose({ a: 1 })))
    expect(err.code).toBe(Code.INVALID_ARGUMENT)
    expect(err.message).toBe('payload must be a string or Uint8Array, got object')
    await expectServing(pool)
  })

  it('does not crash the process for a wrong payload queued before connect or an object returned by an async handler', async () => {
    const fixture = fileURLToPath(new URL('./fixtures/wrong-values.mjs', import.meta.url))
    const cwd = fileURLToPath(new URL('..', import.meta.url))
    const outcome = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [fixture], { cwd, timeout: 15_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      )
    })
    expect(outcome.stderr).toBe('')
    expect(outcome.code).toBe(0)
    expect(JSON.parse(outcome.stdout)).toEqual({
      queued: Code.INVALID_ARGUMENT,
      returned: Code.INTERNAL,
      after: 'still serving',
    })
  })

  it('fails the first next() of a stream whose payload has the wrong type', async () => {
    const { pool } = await echoServer()
    for (const connected of [false, true]) {
      if (connected) await pool.connect()
      for (const [payload, type] of WRONG_PAYLOADS) {
        const err = await rejection(() => firstChunk(pool, '/chunks', payload))
        expect(err.code).toBe(Code.INVALID_ARGUMENT)
        expect(err.message).toBe(`payload must be a string or Uint8Array, got ${type}`)
      }
    }
    await expectServing(pool)
  })

  it('rejects session.send with a wrong type and keeps the session usable', async () => {
    const { pool } = await echoServer()
    const session = await pool.createBidirectionalSession('/session')
    for (const [message, type] of WRONG_PAYLOADS) {
      const err = await rejection(() => session.send(loose(message)))
      expect(err.code).toBe(Code.INVALID_ARGUMENT)
      expect(err.message).toBe(`message must be a string or Uint8Array, got ${type}`)
    }
    await session.send('fine')
    expect((await session.receive())?.toString()).toBe('fine')
    await session.close()
  })

  it('treats an undefined payload, message, reply or chunk as empty', async () => {
    const { address } = await h.server((s) => {
      s.handle('/echo', (ctx) => ctx.payload)
      s.handle('/reply', (ctx) => ctx.reply(loose(undefined)))
      s.handle('/chunk', (ctx) => ctx.stream().writeChunk(loose(undefined), true))
      s.handle('/session', async (ctx) => {
        const message = await ctx.receiveMessage()
        await ctx.sendMessage(loose(undefined))
        await ctx.sendMessage(String(message?.length))
      })
    })
    const pool = await h.pool(address)
    expect((await pool.call('/echo', undefined)).length).toBe(0)
    expect((await pool.call('/reply', 'x', { timeout: 2000 })).length).toBe(0)
    const chunks: Buffer[] = []
    for await (const chunk of pool.callStream('/chunk', 'x', { timeout: 2000 })) chunks.push(chunk)
    expect(chunks.map((c) => c.length)).toEqual([])
    const session = await pool.createBidirectionalSession('/session', { timeout: 2000 })
    await session.send(loose(undefined))
    expect((await session.receive())?.length).toBe(0)
    expect((await session.receive())?.toString()).toBe('0')
    await session.close()
  })

  it('rejects a route that is not a non-empty string with INVALID_ARGUMENT', async () => {
    const { pool } = await echoServer()
    await pool.connect()
    const cases: [unknown, string][] = [
      ['', 'an empty string'],
      [7, 'number'],
      [null, 'null'],
      [undefined, 'undefined'],
    ]
    for (const [route, got] of cases) {
      const message = `route must be a non-empty string, got ${got}`
      const call = await rejection(() => pool.call(loose(route), 'x'))
      expect([call.code, call.message]).toEqual([Code.INVALID_ARGUMENT, message])
      const stream = await rejection(() => firstChunk(pool, route, 'x'))
      expect([stream.code, stream.message]).toEqual([Code.INVALID_ARGUMENT, message])
      const session = await rejection(() => pool.createBidirectionalSession(loose(route)))
      expect([session.code, session.message]).toEqual([Code.INVALID_ARGUMENT, message])
    }
    await expectServing(pool)
  })

  it('rejects options that are not an object with INVALID_ARGUMENT', async () => {
    const { pool } = await echoServer()
    for (const connected of [false, true]) {
      if (connected) await pool.connect()
      for (const [options, type] of [
        [null, 'null'],
        [5, 'number'],
        ['fast', 'string'],
        [[], 'array'],
      ] as const) {
        const message = `options must be an object, got ${type}`
        const call = await rejection(() => pool.call('/echo', 'x', loose(options)))
        expect([call.code, call.message]).toEqual([Code.INVALID_ARGUMENT, message])
        const stream = await rejection(() => firstChunk(pool, '/chunks', 'x', options))
        expect([stream.code, stream.message]).toEqual([Code.INVALID_ARGUMENT, message])
        const session = await rejection(() => pool.createBidirectionalSession('/session', loose(options)))
        expect([session.code, session.message]).toEqual([Code.INVALID_ARGUMENT, message])
      }
    }
    await expectServing(pool)
  })
})

type Errors = (Error & { route?: string; code?: string })[]

/** A server with `route` plus /echo, `withMiddleware` adding a pass-through middleware, and its `error` events. */
async function serverWith(
  route: string,
  handler: (ctx: Context) => unknown,
  withMiddleware: boolean,
): Promise<{ pool: Pool; errors: Errors }> {
  const errors: Errors = []
  const { server, address } = await h.server((s) => {
    if (withMiddleware) s.use((_ctx, next) => next())
    s.handle(route, loose(handler))
    s.handle('/echo', (ctx) => ctx.payload)
  })
  server.on('error', (err) => errors.push(err))
  return { pool: await h.pool(address), errors }
}

function expectOneError(errors: Errors, route: string, message?: string): void {
  expect(errors).toHaveLength(1)
  expect(errors[0].route).toBe(route)
  if (message !== undefined) {
    expect(errors[0].code).toBe(Code.INVALID_ARGUMENT)
    expect(errors[0].message).toBe(message)
  }
}

describe.each([
  ['without middleware', false],
  ['behind middleware', true],
])('server handlers that produce a wrong type, %s', (_, withMiddleware) => {
  it.each([
    ['a sync handler returns a number', () => 42, 'number'],
    ['a sync handler returns an object', () => ({ a: 1 }), 'object'],
    ['an async handler returns an object', async () => ({ a: 1 }), 'object'],
    ['an async handler returns an array', async () => [1, 2], 'array'],
  ])(
    '%s: INTERNAL for the client, one error event, the server keeps serving',
    async (_name, handler, type) => {
      const { pool, errors } = await serverWith('/bad', handler, withMiddleware)
      const err = await rejection(() => pool.call('/bad', 'x', { timeout: 2000 }))
      expect(err.code).toBe(Code.INTERNAL)
      expect(err.message).toBe('internal server error')
      expectOneError(errors, '/bad', `handler return value must be a string or Uint8Array, got ${type}`)
      await expectServing(pool)
    },
  )

  for (const mode of ['sync', 'async'] as const) {
    it(`ctx.reply with an object in a ${mode} handler: the reply rejects with INVALID_ARGUMENT, the client gets INTERNAL`, async () => {
      let replied: Promise<unknown> | undefined
      const handler = (ctx: Context) => {
        replied = ctx.reply(loose({ a: 1 }))
        // The rejection is looked at by the test, after the handler is done with it.
        replied.catch(() => {})
        return mode === 'async' ? Promise.resolve() : undefined
      }
      const { pool, errors } = await serverWith('/reply', handler, withMiddleware)
      const err = await rejection(() => pool.call('/reply', 'x', { timeout: 2000 }))
      expect(err.code).toBe(Code.INTERNAL)
      const replyErr = await rejection(() => replied!)
      expect(replyErr.code).toBe(Code.INVALID_ARGUMENT)
      expect(replyErr.message).toBe('reply must be a string or Uint8Array, got object')
      expectOneError(errors, '/reply', 'reply must be a string or Uint8Array, got object')
      await expectServing(pool)
    })
  }

  it('an awaited ctx.reply with a number ends the call once: one error event, INTERNAL', async () => {
    const handler = async (ctx: Context) => {
      await ctx.reply(loose(42))
    }
    const { pool, errors } = await serverWith('/reply', handler, withMiddleware)
    const err = await rejection(() => pool.call('/reply', 'x', { timeout: 2000 }))
    expect(err.code).toBe(Code.INTERNAL)
    expectOneError(errors, '/reply', 'reply must be a string or Uint8Array, got number')
    await expectServing(pool)
  })

  it('writeChunk with a wrong type rejects with INVALID_ARGUMENT and fails the stream with INTERNAL', async () => {
    let written: Promise<unknown> | undefined
    const handler = async (ctx: Context) => {
      const stream = ctx.stream()
      await stream.writeChunk('first')
      written = stream.writeChunk(loose(null), true)
      await written.catch(() => {})
    }
    const { pool, errors } = await serverWith('/stream', handler, withMiddleware)
    const chunks: string[] = []
    const err = await rejection(async () => {
      for await (const chunk of pool.callStream('/stream', 'x', { timeout: 2000 }))
        chunks.push(chunk.toString())
    })
    expect(err.code).toBe(Code.INTERNAL)
    expect(chunks).toEqual(['first'])
    const writeErr = await rejection(() => written!)
    expect(writeErr.code).toBe(Code.INVALID_ARGUMENT)
    expect(writeErr.message).toBe('chunk must be a string or Uint8Array, got null')
    expectOneError(errors, '/stream', 'chunk must be a string or Uint8Array, got null')
    await expectServing(pool)
  })

  it('sendMessage with a wrong type rejects with INVALID_ARGUMENT, fails the session with INTERNAL and ends the handler', async () => {
    let sent: Promise<unknown> | undefined
    let handlerDone: ((reason: unknown) => void) | undefined
    const ended = new Promise((resolve) => {
      handlerDone = resolve
    })
    const handler = async (ctx: Context) => {
      sent = ctx.sendMessage(loose({ a: 1 }))
      sent.catch(() => {})
      // The call is over: a handler still waiting for the client is released.
      try {
        await ctx.receiveMessage()
        handlerDone!('received')
      } catch (err) {
        handlerDone!((err as RpcError).code)
        throw err
      }
    }
    const { pool, errors } = await serverWith('/session', handler, withMiddleware)
    const session = await pool.createBidirectionalSession('/session', { timeout: 2000 })
    const err = await rejection(() => session.receive())
    expect(err.code).toBe(Code.INTERNAL)
    const sendErr = await rejection(() => sent!)
    expect(sendErr.code).toBe(Code.INVALID_ARGUMENT)
    expect(sendErr.message).toBe('message must be a string or Uint8Array, got object')
    expect(await ended).toBe(Code.INVALID_ARGUMENT)
    expectOneError(errors, '/session', 'message must be a string or Uint8Array, got object')
    await expectServing(pool)
  })

  it('a session handler that returns an object fails the session with INTERNAL', async () => {
    const { pool, errors } = await serverWith('/session', async () => ({ a: 1 }), withMiddleware)
    const session = await pool.createBidirectionalSession('/session', { timeout: 2000 })
    const err = await rejection(() => session.receive())
    expect(err.code).toBe(Code.INTERNAL)
    expectOneError(errors, '/session', 'handler return value must be a string or Uint8Array, got object')
    await expectServing(pool)
  })

  const frozen = Object.freeze(new Error('frozen'))
  it.each([
    [
      'throws null',
      () => {
        throw null
      },
    ],
    ['rejects with a string', () => Promise.reject('a string')],
    [
      'throws a null-prototype object',
      () => {
        throw Object.create(null)
      },
    ],
    [
      'rejects with a null-prototype object',
      async () => {
        throw Object.create(null)
      },
    ],
    [
      'rejects with a frozen Error',
      async () => {
        throw frozen
      },
    ],
    [
      'returns a thenable whose then() throws',
      () => ({
        // biome-ignore lint/suspicious/noThenProperty: a hostile thenable is the point
        then() {
          throw new Error('then() broke')
        },
      }),
    ],
    [
      'returns a thenable that rejects with a number',
      () => ({
        // biome-ignore lint/suspicious/noThenProperty: a hostile thenable is the point
        then(_ok: unknown, fail: (err: unknown) => void) {
          fail(7)
        },
      }),
    ],
  ])(
    'a handler that %s: INTERNAL, one error event with the route, the server keeps serving',
    async (_name, handler) => {
      const { pool, errors } = await serverWith('/odd', handler, withMiddleware)
      const err = await rejection(() => pool.call('/odd', 'x', { timeout: 2000 }))
      expect(err.code).toBe(Code.INTERNAL)
      expect(err.message).toBe('internal server error')
      expectOneError(errors, '/odd')
      await expectServing(pool)
    },
  )
})

describe('errors too large for the client', () => {
  it('an RpcError whose message is longer than the client accepts still reaches it with its code', async () => {
    const { address } = await h.server((s) => {
      s.handle('/long', async () => {
        throw new RpcError(Code.FAILED_PRECONDITION, 'x'.repeat(4096))
      })
      s.handle('/echo', (ctx) => ctx.payload)
    })
    const pool = await h.pool(address, { maxFrameSize: 1024 })
    const err = await rejection(() => pool.call('/long', 'x', { timeout: 2000 }))
    expect(err.code).toBe(Code.FAILED_PRECONDITION)
    await expectServing(pool)
  })
})

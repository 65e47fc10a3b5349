import { Code, type Metadata, RpcError } from '@srpc/protocol'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { CallResult, Interceptor } from '../src/index'
import { errorOf, Harness } from './harness'

const h = new Harness()
afterEach(() => h.cleanup())

async function start(options: Parameters<Harness['pool']>[1] = {}, fresh = false) {
  const { address } = await h.server((s) => {
    s.handle('/user', (ctx) => {
      if (ctx.payload.toString() !== '42')
        throw new RpcError(Code.NOT_FOUND, `no user ${ctx.payload}`, {
          details: { id: ctx.payload.toString() },
        })
      ctx.responseMetadata['x-version'] = '7'
      return 'user 42'
    })
    s.handle(
      '/ticks',
      async (ctx) => {
        const stream = ctx.stream()
        await stream.writeChunk('t1')
        ctx.responseMetadata['x-total'] = '2'
        await stream.writeChunk('t2', true)
      },
      { kind: 'server-stream' },
    )
    s.handle(
      '/chat',
      async (ctx) => {
        let n = 0
        for await (const m of ctx.messages()) {
          n++
          await ctx.sendMessage(m)
        }
        ctx.responseMetadata.messages = String(n)
      },
      { kind: 'session' },
    )
    s.handle('/unary', () => 'one', { kind: 'unary' })
  })
  const pool = await h.pool(address, options)
  if (fresh) return pool
  await pool.connect()
  await pool.ping()
  return pool
}

describe('error details', () => {
  it('arrive on the RpcError a pool call rejects with', async () => {
    const pool = await start()
    const err = await errorOf(pool.call('/user', '7'))
    expect(err.code).toBe(Code.NOT_FOUND)
    expect(err.details).toEqual({ id: '7' })
  })
})

describe('the first call of a new connection', () => {
  it('waits for the negotiation when it asks for extensions, and then gets details and metadata', async () => {
    const pool = await start({}, true)
    let metadata: Metadata | undefined
    const [reply, err] = await Promise.all([
      pool.call('/user', '42', { onResponseMetadata: (md) => (metadata = { ...md }) }),
      errorOf(pool.call('/user', '7', { waitForExtensions: true })),
    ])
    expect(reply.toString()).toBe('user 42')
    expect(metadata).toEqual({ 'x-version': '7' })
    expect(err.details).toEqual({ id: '7' })
  })

  it('goes out at once as plain v1 otherwise: code and message only', async () => {
    const pool = await start({}, true)
    const err = await errorOf(pool.call('/user', '7'))
    expect(err.code).toBe(Code.NOT_FOUND)
    expect(err.details).toBeUndefined()
  })
})

describe('response metadata', () => {
  it('reaches the caller of a unary call, a stream and a session, and the interceptors', async () => {
    const seen: (Metadata | undefined)[] = []
    const watch: Interceptor = (next) => async (call) => {
      const result: CallResult = await next(call)
      seen.push(result.metadata && { ...result.metadata })
      return result
    }
    const pool = await start({ interceptors: [watch] })
    let unary: Metadata | undefined
    const reply = await pool.call('/user', '42', { onResponseMetadata: (md) => (unary = { ...md }) })
    expect(reply.toString()).toBe('user 42')
    expect(unary).toEqual({ 'x-version': '7' })

    const stream = pool.callStream('/ticks')
    const chunks: string[] = []
    for await (const chunk of stream) chunks.push(chunk.toString())
    expect(chunks).toEqual(['t1', 't2'])
    expect({ ...stream.responseMetadata }).toEqual({ 'x-total': '2' })

    const session = await pool.createBidirectionalSession('/chat')
    await session.send('a')
    await session.send('b')
    expect((await session.receive())?.toString()).toBe('a')
    expect((await session.receive())?.toString()).toBe('b')
    await session.close()
    expect({ ...session.responseMetadata }).toEqual({ messages: '2' })
    // The interceptor's next settles once the session is over, a few ticks after close() resolved.
    await vi.waitFor(() => expect(seen).toHaveLength(3))
    expect(seen).toEqual([{ 'x-version': '7' }, { 'x-total': '2' }, { messages: '2' }])
  })

  it('a callback that throws fails that call, not the connection', async () => {
    const pool = await start()
    const err = await errorOf(
      pool.call('/user', '42', {
        onResponseMetadata: () => {
          throw new Error('bad callback')
        },
      }),
    )
    expect(err.message).toBe('bad callback')
    expect((await pool.call('/user', '42')).toString()).toBe('user 42')
  })
})

describe('a call of the wrong kind for its route', () => {
  it('fails with FAILED_PRECONDITION whichever way it is made', async () => {
    const pool = await start()
    expect((await errorOf(pool.call('/ticks'))).code).toBe(Code.FAILED_PRECONDITION)
    const asStream = async () => {
      for await (const _ of pool.callStream('/unary'));
    }
    const streamErr = await errorOf(asStream())
    expect(streamErr.code).toBe(Code.FAILED_PRECONDITION)
    expect(streamErr.message).toContain('use call()')
    const sessionErr = await errorOf(pool.createBidirectionalSession('/unary').then((s) => s.receive()))
    expect(sessionErr.code).toBe(Code.FAILED_PRECONDITION)
    expect((await errorOf(pool.call('/chat'))).code).toBe(Code.FAILED_PRECONDITION)
    expect((await pool.call('/unary')).toString()).toBe('one')
  })
})

import { Code, RpcError } from '@srpc/protocol'
import type { Server } from '@srpc/server'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Interceptor, Session } from '../src/index'
import { codeOf, Harness, sleep } from './harness'

const h = new Harness()
afterEach(() => h.cleanup())

interface Outcome {
  side: string
  route: string
  kind: string
  code: string
  sent: number
  received: number
  durationMs: number
}

/** Records how every call ended, as an interceptor sees it once `next` settled. */
function recorder(outcomes: Outcome[]): Interceptor {
  return (next) => async (call) => {
    const record = (code: string) =>
      outcomes.push({
        side: call.side,
        route: call.route,
        kind: call.kind,
        code,
        sent: call.stats.messagesSent,
        received: call.stats.messagesReceived,
        durationMs: call.stats.durationMs,
      })
    try {
      const result = await next(call)
      record(result.code)
      return result
    } catch (err) {
      record((err as RpcError).code)
      throw err
    }
  }
}

function routes(s: Server): void {
  s.handle('/echo', (ctx) => ctx.payload)
  s.handle('/denied', () => {
    throw new RpcError(Code.PERMISSION_DENIED, 'no')
  })
  s.handle('/count', async (ctx) => {
    const stream = ctx.stream()
    await stream.writeChunk('1')
    await stream.writeChunk('2')
    await stream.writeChunk('3', true)
  })
  s.handle('/forever', async (ctx) => {
    const stream = ctx.stream()
    for (let i = 0; !ctx.signal.aborted; i++) {
      await stream.writeChunk(String(i)).catch(() => {})
      await sleep(5)
    }
  })
  s.handle('/slow', async () => {
    await sleep(2000)
    return 'late'
  })
  s.handle('/chat', async (ctx) => {
    const session = ctx.session()
    for await (const message of session.messages()) await session.send(`re:${message}`)
  })
}

/** Waits until the server's interceptor recorded `n` outcomes (they settle after the client's). */
async function settled(outcomes: Outcome[], n: number): Promise<void> {
  await vi.waitFor(() => expect(outcomes.length).toBeGreaterThanOrEqual(n), { timeout: 2000 })
}

describe('interceptors on both ends', () => {
  it('run in array order, the first outermost, on the client and on the server', async () => {
    const order: string[] = []
    const tag =
      (name: string): Interceptor =>
      (next) =>
      async (call) => {
        order.push(`${call.side}:${name}>`)
        const result = await next(call)
        order.push(`${call.side}:<${name}`)
        return result
      }
    const { address } = await h.server(routes, { interceptors: [tag('a'), tag('b')] })
    const pool = await h.pool(address, { interceptors: [tag('x'), tag('y')] })
    expect((await pool.call('/echo', 'hi')).toString()).toBe('hi')
    await vi.waitFor(() => expect(order).toHaveLength(8))
    expect(order).toEqual([
      'client:x>',
      'client:y>',
      'server:a>',
      'server:b>',
      'server:<b',
      'server:<a',
      'client:<y',
      'client:<x',
    ])
  })

  it('carry metadata an interceptor adds on the client to the server, which checks it', async () => {
    const addToken: Interceptor = (next) => (call) => {
      call.metadata.authorization = 'Bearer good'
      return next(call)
    }
    const seen: (string | undefined)[] = []
    const checkToken: Interceptor = (next) => (call) => {
      seen.push(call.metadata.authorization)
      if (call.metadata.authorization !== 'Bearer good') throw new RpcError(Code.UNAUTHENTICATED, 'bad token')
      return next(call)
    }
    let handled = 0
    const { address } = await h.server(
      (s) => {
        routes(s)
        s.handle('/who', (ctx) => {
          handled++
          return ctx.metadata.authorization ?? 'none'
        })
      },
      { interceptors: [checkToken] },
    )
    const withToken = await h.pool(address, { interceptors: [addToken] })
    expect((await withToken.call('/who')).toString()).toBe('Bearer good')
    const chunks: string[] = []
    for await (const chunk of withToken.callStream('/count')) chunks.push(chunk.toString())
    expect(chunks).toEqual(['1', '2', '3'])
    // The caller's own metadata object is not changed by the interceptor.
    const mine = { trace: 't1' }
    await withToken.call('/who', '', { metadata: mine })
    expect(mine).toEqual({ trace: 't1' })
    const without = await h.pool(address)
    expect(await codeOf(without.call('/who'))).toBe(Code.UNAUTHENTICATED)
    expect(await codeOf(without.call('/nowhere'))).toBe(Code.UNAUTHENTICATED)
    expect(handled).toBe(2)
    expect(seen).toEqual(['Bearer good', 'Bearer good', 'Bearer good', undefined, undefined])
  })

  it('see the final code, counts and duration of every kind of call, the same on both ends', async () => {
    const server: Outcome[] = []
    const client: Outcome[] = []
    const { address } = await h.server(routes, { interceptors: [recorder(server)] })
    const pool = await h.pool(address, { interceptors: [recorder(client)] })
    const expectBoth = async (expected: Omit<Outcome, 'side' | 'durationMs'>) => {
      await settled(server, 1)
      expect(server.shift()).toMatchObject({ side: 'server', ...expected })
      const mine = client.shift()!
      expect(mine).toMatchObject({ side: 'client', ...expected })
      expect(mine.durationMs).toBeGreaterThan(0)
    }

    expect((await pool.call('/echo', 'hi')).toString()).toBe('hi')
    await expectBoth({ route: '/echo', kind: 'unary', code: 'OK', sent: 1, received: 1 })

    expect(await codeOf(pool.call('/denied'))).toBe(Code.PERMISSION_DENIED)
    await settled(server, 1)
    expect(server.shift()).toMatchObject({
      kind: 'unary',
      code: Code.PERMISSION_DENIED,
      sent: 0,
      received: 1,
    })
    expect(client.shift()).toMatchObject({
      kind: 'unary',
      code: Code.PERMISSION_DENIED,
      sent: 1,
      received: 0,
    })

    expect(await codeOf(pool.call('/nowhere'))).toBe(Code.NOT_FOUND)
    await settled(server, 1)
    expect(server.shift()).toMatchObject({ route: '/nowhere', code: Code.NOT_FOUND })
    expect(client.shift()).toMatchObject({ route: '/nowhere', code: Code.NOT_FOUND })

    const chunks: string[] = []
    for await (const chunk of pool.callStream('/count')) chunks.push(chunk.toString())
    expect(chunks).toEqual(['1', '2', '3'])
    // The server sent three chunks and got one request; the client the other way round.
    await settled(server, 1)
    expect(server.shift()).toMatchObject({ kind: 'server-stream', code: 'OK', sent: 3, received: 1 })
    await vi.waitFor(() => expect(client).toHaveLength(1))
    expect(client.shift()).toMatchObject({ kind: 'server-stream', code: 'OK', sent: 1, received: 3 })

    let taken = 0
    for await (const _ of pool.callStream('/forever')) if (++taken === 3) break
    await settled(server, 1)
    const cancelled = server.shift()!
    expect(cancelled).toMatchObject({ kind: 'server-stream', code: Code.CANCELLED, received: 1 })
    expect(cancelled.sent).toBeGreaterThanOrEqual(3)
    await vi.waitFor(() => expect(client).toHaveLength(1))
    const mine = client.shift()!
    expect(mine).toMatchObject({ kind: 'server-stream', code: Code.CANCELLED, sent: 1 })
    expect(mine.received).toBeGreaterThanOrEqual(3)

    const session = await pool.createBidirectionalSession('/chat')
    await session.send('a')
    await session.send('b')
    expect((await session.receive())?.toString()).toBe('re:a')
    expect((await session.receive())?.toString()).toBe('re:b')
    await session.close()
    await expectBoth({ route: '/chat', kind: 'session', code: 'OK', sent: 2, received: 2 })

    const started = performance.now()
    expect(await codeOf(pool.call('/slow', '', { timeout: 100 }))).toBe(Code.DEADLINE_EXCEEDED)
    expect(performance.now() - started).toBeLessThan(1000)
    await settled(server, 1)
    expect(server.shift()).toMatchObject({ route: '/slow', code: Code.DEADLINE_EXCEEDED })
    const timedOut = client.shift()!
    expect(timedOut).toMatchObject({ route: '/slow', code: Code.DEADLINE_EXCEEDED })
    expect(timedOut.durationMs).toBeGreaterThanOrEqual(99)
    expect(client).toEqual([])
    expect(server).toEqual([])
  })

  it('see a session the client cancels end CANCELLED on both ends, with what it carried', async () => {
    const server: Outcome[] = []
    const client: Outcome[] = []
    const { address } = await h.server(routes, { interceptors: [recorder(server)] })
    const pool = await h.pool(address, { interceptors: [recorder(client)] })
    const controller = new AbortController()
    const session = await pool.createBidirectionalSession('/chat', { signal: controller.signal })
    await session.send('a')
    expect((await session.receive())?.toString()).toBe('re:a')
    controller.abort()
    expect(await codeOf(session.receive())).toBe(Code.CANCELLED)
    await settled(server, 1)
    expect(server[0]).toMatchObject({ kind: 'session', code: Code.CANCELLED, sent: 1, received: 1 })
    expect(client).toEqual([
      expect.objectContaining({ kind: 'session', code: Code.CANCELLED, sent: 1, received: 1 }),
    ])
  })

  it('refuse a call with the RpcError an interceptor throws, before any handler or server sees it', async () => {
    let handled = 0
    const deny: Interceptor = () => () => {
      throw new RpcError(Code.PERMISSION_DENIED, 'not you')
    }
    const { address } = await h.server(
      (s) =>
        s.handle('/x', () => {
          handled++
          return 'x'
        }),
      { interceptors: [deny] },
    )
    const pool = await h.pool(address)
    expect(await codeOf(pool.call('/x'))).toBe(Code.PERMISSION_DENIED)
    expect(await codeOf(pool.createBidirectionalSession('/x').then((s) => s.receive()))).toBe(
      Code.PERMISSION_DENIED,
    )
    expect(handled).toBe(0)

    const served = await h.server((s) =>
      s.handle('/y', () => {
        handled++
        return 'y'
      }),
    )
    const refusing = await h.pool(served.address, { interceptors: [deny] })
    expect(await codeOf(refusing.call('/y'))).toBe(Code.PERMISSION_DENIED)
    const stream = refusing.callStream('/y')
    expect(await codeOf(stream.next())).toBe(Code.PERMISSION_DENIED)
    expect(await codeOf(refusing.createBidirectionalSession('/y'))).toBe(Code.PERMISSION_DENIED)
    expect(handled).toBe(0)
  })

  it('turn a non-RpcError thrown by an interceptor into INTERNAL on the server and into the call’s rejection on the client, crashing nothing', async () => {
    const broken: Interceptor = () => () => {
      throw new TypeError('oops')
    }
    const errors: Error[] = []
    const { address, server } = await h.server((s) => s.handle('/x', () => 'x'), { interceptors: [broken] })
    server.on('error', (err) => errors.push(err))
    const pool = await h.pool(address)
    const err = await pool.call('/x').catch((e: RpcError) => e)
    expect(RpcError.is(err, Code.INTERNAL)).toBe(true)
    expect((err as RpcError).message).toBe('internal server error')
    expect(errors.map((e) => e.message)).toEqual(['oops'])

    const rejecting: Interceptor = () => async () => {
      throw new TypeError('client oops')
    }
    const local = await h.pool(address, { interceptors: [rejecting] })
    const mine = await local.call('/x').catch((e: RpcError) => e)
    expect(RpcError.is(mine, Code.INTERNAL)).toBe(true)
    expect((mine as RpcError).cause).toBeInstanceOf(TypeError)
    expect(await codeOf(local.createBidirectionalSession('/x'))).toBe(Code.INTERNAL)
    // An interceptor that settles without a result, or drops next's promise, hangs nothing.
    const empty = await h.pool(address, {
      interceptors: [(next) => async (call) => void next(call) as never],
    })
    expect(await codeOf(empty.call('/x'))).toBe(Code.INTERNAL)
  })

  it('bound a call by its deadline even when an interceptor never settles', async () => {
    const { address } = await h.server((s) => s.handle('/x', () => 'x'))
    const stuck: Interceptor = () => () => new Promise(() => {})
    const pool = await h.pool(address, { interceptors: [stuck] })
    const started = performance.now()
    expect(await codeOf(pool.call('/x', '', { timeout: 50 }))).toBe(Code.DEADLINE_EXCEEDED)
    expect(await codeOf(pool.createBidirectionalSession('/x', { timeout: 50 }))).toBe(Code.DEADLINE_EXCEEDED)
    expect(performance.now() - started).toBeLessThan(1000)
  })

  it('see one call around a retry policy, which runs innermost and makes every attempt', async () => {
    let attempts = 0
    const server: Outcome[] = []
    const client: Outcome[] = []
    const { address } = await h.server(
      (s) =>
        s.handle('/flaky', () => {
          if (++attempts < 3) throw new RpcError(Code.UNAVAILABLE, 'try later')
          return `ok after ${attempts}`
        }),
      { interceptors: [recorder(server)] },
    )
    const pool = await h.pool(address, { interceptors: [recorder(client)] })
    const retry = { maxAttempts: 3, backoff: { initial: 10, max: 20 } }
    expect((await pool.call('/flaky', '', { retry })).toString()).toBe('ok after 3')
    await settled(server, 3)
    expect(server.map((o) => o.code)).toEqual([Code.UNAVAILABLE, Code.UNAVAILABLE, 'OK'])
    expect(client).toHaveLength(1)
    expect(client[0]).toMatchObject({ route: '/flaky', kind: 'unary', code: 'OK' })
    expect(client[0].durationMs).toBeGreaterThanOrEqual(20)
  })

  it('answer a server call from an interceptor without running the handler (a cache)', async () => {
    let handled = 0
    const cache: Interceptor = (next) => async (call) =>
      call.route === '/cached'
        ? {
            code: 'OK',
            value: Buffer.from('from cache'),
            messagesSent: 1,
            messagesReceived: 1,
            durationMs: 0,
          }
        : next(call)
    const { address } = await h.server(
      (s) =>
        s.handle('/cached', () => {
          handled++
          return 'from handler'
        }),
      { interceptors: [cache] },
    )
    const pool = await h.pool(address)
    expect((await pool.call('/cached')).toString()).toBe('from cache')
    expect(handled).toBe(0)
  })

  it('reject an interceptors option that is not an array of functions with INVALID_ARGUMENT naming it', async () => {
    const bad = await h.server(() => {}).catch(() => undefined)
    expect(bad).toBeDefined()
    await expect(h.server(() => {}, { interceptors: [42 as unknown as Interceptor] })).rejects.toThrow(
      'interceptors[0]',
    )
    await expect(h.pool(bad!.address, { interceptors: 'no' as unknown as Interceptor[] })).rejects.toThrow(
      'interceptors',
    )
  })
})

describe('Session, one interface on both ends', () => {
  /** What both ends do with a session, through the interface only. */
  async function converse(session: Session, lines: string[]): Promise<string[]> {
    const heard: string[] = []
    for (const line of lines) await session.send(line)
    await session.close()
    for await (const message of session.messages()) heard.push(message.toString())
    expect(session.bufferedAmount).toBe(0)
    expect(session.signal.aborted).toBe(false)
    return heard
  }

  it('carries messages both ways and closes, on the client and on the server alike', async () => {
    let serverHeard: Promise<string[]> | undefined
    const { address } = await h.server((s) =>
      s.handle('/talk', async (ctx) => {
        serverHeard = converse(ctx.session(), ['s1', 's2'])
        await serverHeard
      }),
    )
    const pool = await h.pool(address)
    const session: Session = await pool.createBidirectionalSession('/talk')
    expect(await converse(session, ['c1', 'c2', 'c3'])).toEqual(['s1', 's2'])
    expect(await serverHeard).toEqual(['c1', 'c2', 'c3'])
  })

  it('aborts its signal with the RpcError when the session fails, on both ends', async () => {
    let serverSignal: AbortSignal | undefined
    const { address } = await h.server((s) =>
      s.handle('/hang', async (ctx) => {
        const session = ctx.session()
        serverSignal = session.signal
        await session.receive().catch(() => {})
      }),
    )
    const pool = await h.pool(address)
    const session = await pool.createBidirectionalSession('/hang', { timeout: 100 })
    await vi.waitFor(() => expect(serverSignal).toBeDefined())
    await vi.waitFor(() => expect(session.signal.aborted).toBe(true))
    expect(RpcError.is(session.signal.reason, Code.DEADLINE_EXCEEDED)).toBe(true)
    await vi.waitFor(() => expect(serverSignal!.aborted).toBe(true))
    expect(RpcError.is(serverSignal!.reason, Code.DEADLINE_EXCEEDED)).toBe(true)
  })

  it('is refused on a request: ctx.session() throws FAILED_PRECONDITION', async () => {
    const { address } = await h.server((s) =>
      s.handle('/req', (ctx) => {
        try {
          ctx.session()
          return 'no error'
        } catch (err) {
          return (err as RpcError).code
        }
      }),
    )
    const pool = await h.pool(address)
    expect((await pool.call('/req')).toString()).toBe(Code.FAILED_PRECONDITION)
  })
})

import { Code, RpcError } from '@srpc/protocol'
import { limiterOf } from '@srpc/server/internal'
import { afterEach, describe, expect, it } from 'vitest'
import { whenRunning } from '../../../test-support/when-running'
import { FaultProxy } from './fault-proxy'
import { Harness, sleep } from './harness'

const h = new Harness()
const proxies: FaultProxy[] = []
afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.stop()))
  await h.cleanup()
})

async function codeOf(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'resolved',
    (e: unknown) => (e instanceof RpcError ? e.code : `not an RpcError: ${e}`),
  )
}

async function rejection(promise: Promise<unknown>): Promise<RpcError> {
  return promise.then(
    () => {
      throw new Error('expected a rejection')
    },
    (e: unknown) => {
      if (!(e instanceof RpcError)) throw e
      return e
    },
  )
}

async function behindProxy(routes: Parameters<Harness['server']>[0]) {
  const { port, server } = await h.server(routes)
  const proxy = await new FaultProxy(port).start()
  proxies.push(proxy)
  const pool = await h.pool(proxy.address, { size: 1 })
  return { proxy, pool, server }
}

describe('a connection that dies', () => {
  it('fails a call, a stream and a session in flight with UNAVAILABLE within a second', async () => {
    const { proxy, pool } = await behindProxy((s) => {
      s.mux.handle('/hang', () => new Promise(() => {}))
      s.mux.handle('/drip', async (ctx) => {
        await ctx.stream().writeChunk('one')
        await new Promise(() => {})
      })
      s.mux.handle('/chat', async (ctx) => {
        await ctx.sendMessage('hi')
        await new Promise(() => {})
      })
    })
    const call = codeOf(pool.call('/hang'))
    const stream = pool.callStream('/drip')[Symbol.asyncIterator]()
    expect((await stream.next()).value?.toString()).toBe('one')
    const streamRest = codeOf(stream.next())
    const session = await pool.createBidirectionalSession('/chat')
    expect((await session.receive())?.toString()).toBe('hi')
    const sessionRest = codeOf(session.receive())
    const sendAfter = sleep(0)
    await sendAfter
    const cutAt = performance.now()
    proxy.cutAll()
    expect(await call).toBe(Code.UNAVAILABLE)
    expect(await streamRest).toBe(Code.UNAVAILABLE)
    expect(await sessionRest).toBe(Code.UNAVAILABLE)
    expect(performance.now() - cutAt).toBeLessThan(1000)
    expect(await codeOf(session.send('after'))).toBe(Code.UNAVAILABLE)
  })

  it('is replaced by a new connection on the next use', async () => {
    const { proxy, pool } = await behindProxy((s) => s.mux.handle('/x', () => 'x'))
    expect((await pool.call('/x')).toString()).toBe('x')
    proxy.cutAll()
    await sleep(50)
    expect((await pool.call('/x', '', { timeout: 2000 })).toString()).toBe('x')
  })

  it('fails calls with UNAVAILABLE when the server cannot be reached', async () => {
    const proxy = await new FaultProxy(1).start()
    proxies.push(proxy)
    proxy.refuse()
    const pool = await h.pool(proxy.address)
    expect(await codeOf(pool.call('/x', '', { timeout: 2000 }))).toBe(Code.UNAVAILABLE)
  })
})

describe('pool.destroy()', () => {
  it('ends every call in flight with CANCELLED and is safe to call twice', async () => {
    const { address } = await h.server((s) => s.mux.handle('/hang', () => new Promise(() => {})))
    const pool = await h.pool(address, { size: 2 })
    await pool.connect()
    const calls = Array.from({ length: 4 }, () => codeOf(pool.call('/hang')))
    await sleep(20)
    const first = pool.destroy()
    expect(pool.destroy()).toBe(first)
    await first
    expect(await Promise.all(calls)).toEqual(Array(4).fill(Code.CANCELLED))
    expect(await codeOf(pool.call('/hang'))).toBe(Code.UNAVAILABLE)
    expect(pool.state).toBe('closed')
  })
})

describe('pool.close()', () => {
  it('lets a slow call in flight finish with its reply, refuses new calls, then closes', async () => {
    const { address } = await h.server((s) =>
      s.mux.handle('/slow', async () => {
        await sleep(150)
        return 'done'
      }),
    )
    const pool = await h.pool(address, { size: 2 })
    await pool.connect()
    const slow = pool.call('/slow')
    await sleep(20)
    const closedAt = performance.now()
    const closing = pool.close()
    expect(pool.state).toBe('closed')
    const refused = await rejection(pool.call('/slow'))
    expect(refused.code).toBe(Code.UNAVAILABLE)
    expect(refused.message).toBe('pool is closed')
    expect(await codeOf(pool.callStream('/slow').next())).toBe(Code.UNAVAILABLE)
    expect(await codeOf(pool.createBidirectionalSession('/slow'))).toBe(Code.UNAVAILABLE)
    expect((await slow).toString()).toBe('done')
    await closing
    expect(performance.now() - closedAt).toBeGreaterThanOrEqual(100)
    expect(pool.stats().every((s) => s.state === 'closed' && s.inFlight === 0)).toBe(true)
  })

  it('lets a stream and a session in flight finish', async () => {
    const { address } = await h.server((s) => {
      s.mux.handle('/count', async (ctx) => {
        for (const n of ['1', '2', '3']) {
          await sleep(30)
          await ctx.stream().writeChunk(n)
        }
      })
      s.mux.handle('/echo', async (ctx) => {
        for await (const m of ctx.messages()) await ctx.sendMessage(m)
      })
    })
    const pool = await h.pool(address)
    await pool.connect()
    const session = await pool.createBidirectionalSession('/echo')
    const stream = pool.callStream('/count')
    const first = await stream.next()
    expect(first.value?.toString()).toBe('1')
    let closed = false
    const closing = pool.close().then(() => {
      closed = true
    })
    const rest: string[] = []
    for await (const chunk of stream) rest.push(chunk.toString())
    expect(rest).toEqual(['2', '3'])
    await session.send('still here')
    expect((await session.receive())?.toString()).toBe('still here')
    expect(closed).toBe(false)
    await session.close()
    await closing
    expect(closed).toBe(true)
  })

  it('with a timeout, destroys what is still in flight then with CANCELLED', async () => {
    const { address } = await h.server((s) => s.mux.handle('/hang', () => new Promise(() => {})))
    const pool = await h.pool(address, { size: 2 })
    await pool.connect()
    const calls = Array.from({ length: 3 }, () => rejection(pool.call('/hang')))
    await sleep(20)
    const closedAt = performance.now()
    await pool.close({ timeout: 100 })
    const elapsed = performance.now() - closedAt
    expect(elapsed).toBeGreaterThanOrEqual(95)
    expect(elapsed).toBeLessThan(1000)
    const errors = await Promise.all(calls)
    expect(errors.map((e) => e.code)).toEqual(Array(3).fill(Code.CANCELLED))
    expect(errors[0].message).toContain('still in flight after 100 ms')
  })

  it('fails calls still waiting for a connection with UNAVAILABLE: they never reached a server', async () => {
    const { port } = await h.server(() => {})
    const dark = await new FaultProxy(port).start()
    proxies.push(dark)
    dark.blackhole()
    const pool = await h.pool(dark.address, { connectTimeout: 20_000 })
    const waiting = rejection(pool.call('/x', '', { timeout: 10_000 }))
    await sleep(20)
    expect(pool.queued).toBe(1)
    await pool.close()
    const error = await waiting
    expect(error.code).toBe(Code.UNAVAILABLE)
    expect(error.message).toBe('pool is closed')
  })

  it('returns the same promise when called twice, and destroy() cuts it short', async () => {
    const { address } = await h.server((s) => s.mux.handle('/hang', () => new Promise(() => {})))
    const pool = await h.pool(address)
    await pool.connect()
    const call = rejection(pool.call('/hang'))
    await sleep(20)
    const closing = pool.close()
    expect(pool.close()).toBe(closing)
    expect(pool.close({ timeout: 5 })).toBe(closing)
    await sleep(50)
    const destroyedAt = performance.now()
    const destroying = pool.destroy()
    expect(pool.destroy()).toBe(destroying)
    expect(pool.close()).toBe(destroying)
    await Promise.all([closing, destroying])
    expect(performance.now() - destroyedAt).toBeLessThan(200)
    expect((await call).code).toBe(Code.CANCELLED)
  })

  it('destroy(error) fails the calls in flight with that error', async () => {
    const { address } = await h.server((s) => s.mux.handle('/hang', () => new Promise(() => {})))
    const pool = await h.pool(address)
    await pool.connect()
    const call = rejection(pool.call('/hang'))
    await sleep(20)
    await pool.destroy(new RpcError(Code.ABORTED, 'shutting the worker down'))
    const error = await call
    expect(error.code).toBe(Code.ABORTED)
    expect(error.message).toBe('shutting the worker down')
  })

  it('refuses a close timeout that is not a whole number of ms with INVALID_ARGUMENT', async () => {
    const { address } = await h.server(() => {})
    const pool = await h.pool(address)
    const error = await rejection(pool.close({ timeout: -1 }))
    expect(error.code).toBe(Code.INVALID_ARGUMENT)
    expect(error.message).toContain('timeout')
    expect(pool.state).toBe('idle')
  })
})

describe('worker pool', () => {
  it('runs at most `workers` handlers at once and sheds calls past maxQueue with RESOURCE_EXHAUSTED', async () => {
    let running = 0
    let peak = 0
    const { address } = await h.server(
      (s) =>
        s.mux.handle('/work', async () => {
          running++
          peak = Math.max(peak, running)
          await sleep(100)
          running--
          return 'done'
        }),
      { workers: 2, maxQueue: 3 },
    )
    const pool = await h.pool(address)
    await pool.connect()
    const results = await Promise.all(Array.from({ length: 8 }, () => codeOf(pool.call('/work'))))
    expect(results.filter((r) => r === 'resolved')).toHaveLength(5)
    expect(results.filter((r) => r === Code.RESOURCE_EXHAUSTED)).toHaveLength(3)
    expect(peak).toBe(2)
  })

  it('answers a call whose deadline passed in the queue with DEADLINE_EXCEEDED without running it', async () => {
    const ran: string[] = []
    const { address, server } = await h.server(
      (s) => {
        s.mux.handle('/block', async () => {
          await sleep(300)
          return 'blocked'
        })
        s.mux.handle('/queued', (ctx) => {
          ran.push(ctx.payload.toString())
          return 'ran'
        })
      },
      { workers: 1, maxQueue: 10 },
    )
    const pool = await h.pool(address)
    await pool.connect()
    await pool.call('/queued', 'warmup')
    const blocker = pool.call('/block')
    await sleep(10)
    const late = codeOf(pool.call('/queued', 'late', { timeout: 100 }))
    const patient = pool.call('/queued', 'patient', { timeout: 2000 })
    expect(await late).toBe(Code.DEADLINE_EXCEEDED)
    await blocker
    expect((await patient).toString()).toBe('ran')
    expect(ran).toEqual(['warmup', 'patient'])
    expect(limiterOf(server).queued).toBe(0)
  })

  it('bounds sessions separately so they cannot starve requests', async () => {
    const { address } = await h.server(
      (s) => {
        s.mux.handle('/hold', async (ctx) => {
          for await (const _ of ctx.messages()) {
            // hold the session open until the client closes it
          }
        })
        s.mux.handle('/ping', () => 'pong')
      },
      { workers: 1, maxSessions: 2 },
    )
    const pool = await h.pool(address)
    const a = await pool.createBidirectionalSession('/hold')
    const b = await pool.createBidirectionalSession('/hold')
    const c = await pool.createBidirectionalSession('/hold')
    expect(await codeOf(c.receive())).toBe(Code.RESOURCE_EXHAUSTED)
    // Two long sessions are open and the single worker still serves requests.
    expect((await pool.call('/ping', '', { timeout: 1000 })).toString()).toBe('pong')
    await Promise.all([a.close(), b.close()])
  })
})

describe('graceful shutdown', () => {
  it('lets calls in flight finish, refuses new ones with UNAVAILABLE, then resolves', async () => {
    const { started, running } = whenRunning()
    const { address, server } = await h.server((s) =>
      s.mux.handle('/slow', async () => {
        running()
        await sleep(150)
        return 'finished'
      }),
    )
    const pool = await h.pool(address)
    await pool.connect()
    const inFlight = pool.call('/slow')
    // In flight on the server, not only sent: a request still on its way when the shutdown starts
    // meets a connection that has nothing running and closes (20 ms was not always enough in CI).
    await started
    const shutdown = server.shutdown({ timeout: 2000 })
    expect(server.shutdown()).toBe(shutdown)
    const refused = codeOf(pool.call('/slow', '', { timeout: 1000 }))
    expect((await inFlight).toString()).toBe('finished')
    expect(await refused).toBe(Code.UNAVAILABLE)
    await shutdown
    expect(server.state).toBe('closed')
    expect(server.connections).toBe(0)
  })

  it('aborts what is still running when the timeout expires', async () => {
    let sawAbort = false
    let running!: () => void
    const started = new Promise<void>((resolve) => {
      running = resolve
    })
    const { address, server } = await h.server((s) =>
      s.mux.handle('/forever', (ctx) => {
        ctx.signal.addEventListener('abort', () => {
          sawAbort = true
        })
        running()
        return new Promise(() => {})
      }),
    )
    const pool = await h.pool(address)
    const call = codeOf(pool.call('/forever'))
    await started
    const shutdownAt = performance.now()
    await server.shutdown({ timeout: 100 })
    expect(performance.now() - shutdownAt).toBeLessThan(1000)
    expect(await call).toBe(Code.UNAVAILABLE)
    expect(sawAbort).toBe(true)
  })
})

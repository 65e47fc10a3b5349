import { type AddressInfo, isIP } from 'node:net'
import { createServer } from 'node:tls'
import type { Server } from '@srpc/server'
import { selfSigned } from '@srpc/tlsutil'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { addressOf, Code, Pool, type PoolOptions, type Resolver, RpcError } from '../src/index'
import { FaultProxy } from './fault-proxy'
import { certificates, Harness, sleep } from './harness'
import { StubServer, v1Echo } from './v1-stub-server'

const h = new Harness()
const proxies: FaultProxy[] = []
const stubs: StubServer[] = []
afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.stop()))
  await Promise.all(stubs.splice(0).map((s) => s.stop()))
  await h.cleanup()
})

const BACKOFF = { initial: 100, multiplier: 1.6, max: 400 }

async function codeOf(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'OK',
    (e: unknown) => (e instanceof RpcError ? e.code : `not an RpcError: ${e}`),
  )
}

async function rejection(promise: Promise<unknown>): Promise<RpcError> {
  const err = await promise.then(
    () => new Error('expected a rejection'),
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(RpcError)
  return err as RpcError
}

async function proxy(port: number): Promise<FaultProxy> {
  const p = await new FaultProxy(port).start()
  proxies.push(p)
  return p
}

describe("the server's stream limit", () => {
  it('is never tripped: 10 concurrent calls against maxConcurrentStreams 1 all succeed, one at a time', async () => {
    let running = 0
    let peak = 0
    const { address } = await h.server(
      (s) =>
        s.mux.handle('/work', async (ctx) => {
          running++
          peak = Math.max(peak, running)
          await sleep(20)
          running--
          return ctx.payload
        }),
      { maxConcurrentStreams: 1 },
    )
    // Cold pool: the first calls leave before the server's HELLO tells the limit; the ones it
    // refuses carry `refused` and are sent again, then wait in the pool.
    const cold = await h.pool(address)
    const replies = await Promise.all(
      Array.from({ length: 10 }, (_, i) => cold.call('/work', `${i}`, { timeout: 5000 })),
    )
    expect(replies.map(String)).toEqual(Array.from({ length: 10 }, (_, i) => `${i}`))
    expect(peak).toBe(1)

    // Warm pool: it knows the limit, so nine calls wait locally and none is refused.
    const warm = await h.pool(address)
    await warm.call('/work', 'warm-up')
    const calls = Array.from({ length: 10 }, (_, i) => warm.call('/work', `${i}`, { timeout: 5000 }))
    expect(warm.queued).toBe(9)
    expect((await Promise.all(calls)).map(String)).toEqual(Array.from({ length: 10 }, (_, i) => `${i}`))
    expect(warm.queued).toBe(0)
  })

  it('queues at most maxQueued calls; past it RESOURCE_EXHAUSTED at once; each waits no longer than its deadline', async () => {
    const { address } = await h.server(
      (s) =>
        s.mux.handle('/work', async () => {
          await sleep(300)
          return 'done'
        }),
      { maxConcurrentStreams: 1 },
    )
    const pool = await h.pool(address, { maxQueued: 3 })
    await pool.call('/work')
    const first = pool.call('/work', '', { timeout: 2000 })
    const queued = [1, 2].map(() => codeOf(pool.call('/work', '', { timeout: 2000 })))
    const shortStart = performance.now()
    const short = codeOf(pool.call('/work', '', { timeout: 50 }))
    const overflowStart = performance.now()
    const overflow = await rejection(pool.call('/work', '', { timeout: 2000 }))
    expect(overflow.code).toBe(Code.RESOURCE_EXHAUSTED)
    expect(overflow.message).toContain('maxQueued')
    expect(performance.now() - overflowStart).toBeLessThan(50)
    expect(await short).toBe(Code.DEADLINE_EXCEEDED)
    expect(performance.now() - shortStart).toBeLessThan(150)
    expect((await first).toString()).toBe('done')
    expect(await Promise.all(queued)).toEqual(['OK', 'OK'])
  })
})

describe('retries', () => {
  it('are not made by default for a call that may have reached the server', async () => {
    let attempts = 0
    const { address } = await h.server((s) =>
      s.mux.handle('/flaky', () => {
        attempts++
        throw new RpcError(Code.UNAVAILABLE, 'try later')
      }),
    )
    const pool = await h.pool(address)
    expect(await codeOf(pool.call('/flaky'))).toBe(Code.UNAVAILABLE)
    expect(attempts).toBe(1)
  })

  it('follow an opt-in policy for idempotent routes: attempts, codes, backoff', async () => {
    let attempts = 0
    const { address } = await h.server((s) => {
      s.mux.handle('/flaky', () => {
        attempts++
        if (attempts % 3 !== 0) throw new RpcError(Code.UNAVAILABLE, 'try later')
        return `ok after ${attempts}`
      })
      s.mux.handle('/denied', () => {
        attempts++
        throw new RpcError(Code.PERMISSION_DENIED, 'no')
      })
    })
    const pool = await h.pool(address)
    const retry = { maxAttempts: 3, backoff: { initial: 20, max: 50 } }
    const started = performance.now()
    expect((await pool.call('/flaky', '', { retry })).toString()).toBe('ok after 3')
    // Two waits of 20–32 and 20–50 ms between the three attempts.
    expect(performance.now() - started).toBeGreaterThanOrEqual(40)
    attempts = 0
    expect(await codeOf(pool.call('/flaky', '', { retry: { ...retry, maxAttempts: 2 } }))).toBe(
      Code.UNAVAILABLE,
    )
    expect(attempts).toBe(2)
    attempts = 0
    expect(await codeOf(pool.call('/denied', '', { retry }))).toBe(Code.PERMISSION_DENIED)
    expect(attempts).toBe(1)
    attempts = 0
    const codes = [Code.PERMISSION_DENIED]
    expect(await codeOf(pool.call('/denied', '', { retry: { ...retry, codes } }))).toBe(
      Code.PERMISSION_DENIED,
    )
    expect(attempts).toBe(3)
  })

  it('send again a call that was never written; one that can never be written fails instead of hanging', async () => {
    // A TLS server that drops every connection 50 ms after the handshake, before any HELLO.
    const { serverOptions } = await certificates()
    const dropper = createServer(serverOptions, (socket) => {
      socket.on('error', () => {})
      setTimeout(() => socket.destroy(), 50)
    })
    await new Promise<void>((resolve) => dropper.listen(0, '127.0.0.1', resolve))
    try {
      const { port } = dropper.address() as AddressInfo
      const pool = await h.pool(`127.0.0.1:${port}`, { backoff: BACKOFF })
      const started = performance.now()
      // Metadata waits for the server's HELLO; the connection dies first, so the call is never
      // written: it goes out again (refused), and fails once no connection is left to carry it.
      const err = await rejection(pool.call('/x', '', { metadata: { k: 'v' } }))
      expect(err.code).toBe(Code.UNAVAILABLE)
      expect(performance.now() - started).toBeLessThan(1000)
      await pool.close()
    } finally {
      await new Promise<void>((resolve) => dropper.close(() => resolve()))
    }
  })

  it('stop at the call deadline, and reject a bad policy with INVALID_ARGUMENT naming the option', async () => {
    let attempts = 0
    const { address } = await h.server((s) =>
      s.mux.handle('/down', () => {
        attempts++
        throw new RpcError(Code.UNAVAILABLE, 'down')
      }),
    )
    const pool = await h.pool(address)
    await pool.connect()
    const started = performance.now()
    // A timer armed with the call's deadline shows when this process could first act on it: a
    // stalled process (a loaded CI machine once added 44 ms) delays it as much as the call's own.
    let deadlineSeen = Number.POSITIVE_INFINITY
    const reference = setTimeout(() => {
      deadlineSeen = performance.now()
    }, 200)
    const retry = { maxAttempts: 10, backoff: { initial: 60, multiplier: 1, max: 60 } }
    const code = await codeOf(pool.call('/down', '', { timeout: 200, retry }))
    const ended = performance.now()
    clearTimeout(reference)
    // 60 ms between attempts: the fifth would start past the 200 ms deadline, so it is not made,
    // and the call ends with the last error (or, on a slow machine, its last attempt meets the
    // deadline). Never later than the deadline, plus timer slack.
    expect([Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED]).toContain(code)
    expect(ended - Math.min(ended, deadlineSeen)).toBeLessThan(40)
    expect(ended - started).toBeLessThan(2000)
    expect(attempts).toBeGreaterThanOrEqual(2)
    expect(attempts).toBeLessThanOrEqual(4)
    const bad = await rejection(pool.call('/down', '', { retry: { maxAttempts: 0 } }))
    expect(bad.code).toBe(Code.INVALID_ARGUMENT)
    expect(bad.message).toContain('retry.maxAttempts')
    const badCodes = await rejection(
      pool.call('/down', '', { retry: { maxAttempts: 2, codes: ['NOPE' as Code] } }),
    )
    expect(badCodes.message).toContain('retry.codes')
  })
})

describe('retry waits', () => {
  it('end when the pool closes: the call fails at once with UNAVAILABLE, no timer left behind', async () => {
    let attempts = 0
    const { address } = await h.server((s) =>
      s.mux.handle('/down', () => {
        attempts++
        throw new RpcError(Code.UNAVAILABLE, 'down')
      }),
    )
    const pool = await h.pool(address, { defaultTimeout: 0 })
    await pool.connect()
    const retry = { maxAttempts: 5, backoff: { initial: 5000, multiplier: 1, max: 5000 } }
    const call = rejection(pool.call('/down', '', { retry }))
    await vi.waitFor(() => expect(attempts).toBe(1), { timeout: 2000 })
    // The first attempt's failure has reached the client (nothing in flight): the call now waits
    // out its 5 s backoff. Closing earlier would end the attempt itself, with its own error.
    await vi.waitFor(() => expect(pool.stats().reduce((n, s) => n + s.inFlight, 0)).toBe(0), {
      timeout: 2000,
    })
    const closedAt = performance.now()
    await pool.close()
    const err = await call
    expect(err.code).toBe(Code.UNAVAILABLE)
    expect(err.message).toContain('closed')
    expect(performance.now() - closedAt).toBeLessThan(1000)
    expect(attempts).toBe(1)
  })
})

describe('pool.setSize()', () => {
  it('grows at once and shrinks by closing idle connections first, without cutting a call in flight', async () => {
    const { address, server } = await h.server((s) => {
      s.mux.handle('/x', () => 'x')
      s.mux.handle('/slow', async () => {
        await sleep(200)
        return 'finished'
      })
    })
    const pool = await h.pool(address, { size: 1, balancing: 'least-in-flight' })
    await pool.connect()
    pool.setSize(3)
    expect(pool.size).toBe(3)
    await pool.connect()
    expect(pool.stats().map((s) => s.state)).toEqual(['ready', 'ready', 'ready'])
    await vi.waitFor(() => expect(server.connections).toBe(3), { timeout: 500 })

    const slow = [pool.call('/slow'), pool.call('/slow')]
    await sleep(20)
    expect(
      pool
        .stats()
        .map((s) => s.inFlight)
        .sort(),
    ).toEqual([0, 1, 1])
    pool.setSize(1)
    expect(pool.size).toBe(1)
    // The idle connection closes now, the busy one it retired finishes its call first.
    await vi.waitFor(() => expect(server.connections).toBe(2), { timeout: 500 })
    expect((await Promise.all(slow)).map(String)).toEqual(['finished', 'finished'])
    await vi.waitFor(() => expect(server.connections).toBe(1), { timeout: 500 })
    expect((await pool.call('/x')).toString()).toBe('x')
    expect(() => pool.setSize(0)).toThrow(/size/)
  })
})

describe('health checks', () => {
  it('take a connection whose health route says UNAVAILABLE out of rotation, close it and replace it', async () => {
    let serving = true
    const { address } = await h.server((s) => {
      s.mux.handle('/health', () => {
        if (!serving) throw new RpcError(Code.UNAVAILABLE, 'not serving')
        return 'ok'
      })
      s.mux.handle('/x', () => 'x')
    })
    const pool = await h.pool(address, {
      healthCheck: { interval: 50, timeout: 200, route: '/health' },
      backoff: BACKOFF,
    })
    const events: string[] = []
    pool.on('unhealthy', ({ slot }) => events.push(`unhealthy ${slot}`))
    pool.on('connect', ({ slot }) => events.push(`connect ${slot}`))
    await pool.connect()
    await vi.waitFor(() => expect(pool.stats()[0].lastRtt).toBeGreaterThanOrEqual(0), { timeout: 500 })
    serving = false
    const flippedAt = performance.now()
    await vi.waitFor(() => expect(events).toContain('unhealthy 0'), { timeout: 500, interval: 2 })
    // One interval (50 ms) plus the probe's round trip, plus timer slack.
    expect(performance.now() - flippedAt).toBeLessThan(300)
    serving = true
    await vi.waitFor(() => expect(events.filter((e) => e === 'connect 0').length).toBe(2), { timeout: 1000 })
    expect((await pool.call('/x')).toString()).toBe('x')
    expect(pool.stats()[0].failures).toBeGreaterThanOrEqual(1)
  })

  it('probe a plain v1 server through the health route, and ping an srpc server without one', async () => {
    const stub = new StubServer(v1Echo)
    stubs.push(stub)
    const v1 = await h.pool(await stub.start(), {
      helloTimeout: 50,
      healthCheck: { interval: 50, timeout: 500, route: '/health' },
    })
    await v1.connect()
    await vi.waitFor(
      () => expect(stub.seen.filter((f) => f.type === '/health').length).toBeGreaterThanOrEqual(2),
      {
        timeout: 1000,
      },
    )
    expect(v1.stats()[0].lastRtt).toBeGreaterThanOrEqual(0)
    expect(v1.state).toBe('ready')

    const { address } = await h.server((s) => s.mux.handle('/x', () => 'x'))
    const srpc = await h.pool(address, { healthCheck: { interval: 50, timeout: 500 } })
    await srpc.connect()
    await vi.waitFor(() => expect(srpc.stats()[0].lastRtt).toBeGreaterThanOrEqual(0), { timeout: 1000 })
  })
})

describe('DNS', () => {
  it('resolves a name to all its addresses, follows changes, and keeps the name as TLS servername', async () => {
    // A certificate for the name only: connecting to 127.0.0.1 or ::1 verifies only if the
    // pool sends "localhost" as servername.
    const certs = await selfSigned(['localhost'])
    const four = await h.server((s: Server) => s.mux.handle('/who', () => 'v4'), { tls: certs.serverOptions })
    const six = await h.server((s: Server) => s.mux.handle('/who', () => 'v6'), {
      tls: certs.serverOptions,
      address: `[::1]:${four.port}`,
    })
    let answer = ['127.0.0.1']
    const lookups: string[] = []
    const lookup: PoolOptions['lookup'] = async (hostname) => {
      lookups.push(hostname)
      return answer.map((address) => ({ address, family: isIP(address) }))
    }
    const pool = await h.pool(`localhost:${four.port}`, {
      size: 2,
      lookup,
      resolveInterval: 50,
      tls: certs.clientOptions,
    })
    const addresses = () =>
      pool
        .stats()
        .map((s) => (s.state === 'ready' ? s.address : s.state))
        .sort()
    await pool.connect()
    expect(addresses()).toEqual([`127.0.0.1:${four.port}`, `127.0.0.1:${four.port}`])
    expect(lookups[0]).toBe('localhost')

    answer = ['127.0.0.1', '::1']
    await vi.waitFor(() => expect(addresses()).toEqual([`127.0.0.1:${four.port}`, `[::1]:${four.port}`]), {
      timeout: 1000,
    })
    answer = ['::1']
    await vi.waitFor(() => expect(addresses()).toEqual([`[::1]:${four.port}`, `[::1]:${four.port}`]), {
      timeout: 1000,
    })
    const replies = await Promise.all(Array.from({ length: 6 }, () => pool.call('/who')))
    expect(new Set(replies.map(String))).toEqual(new Set(['v6']))
    await six.server.shutdown({ timeout: 100 })
  })
})

describe('a custom resolver', () => {
  it('names the servers the pool connects to, and moves the pool when its answer changes', async () => {
    const one = await h.server((s: Server) => s.mux.handle('/who', () => 'one'))
    const two = await h.server((s: Server) => s.mux.handle('/who', () => 'two'))
    let answer = [addressOf('127.0.0.1', one.port, 'localhost')]
    let asked = 0
    const resolver: Resolver = {
      dynamic: true,
      resolve: async () => {
        asked++
        return answer
      },
    }
    const pool = await h.pool([], { addresses: undefined, resolver, resolveInterval: 50, size: 2 })
    expect((await pool.call('/who')).toString()).toBe('one')
    expect(asked).toBeGreaterThanOrEqual(1)
    answer = [addressOf('127.0.0.1', two.port, 'localhost')]
    await vi.waitFor(
      () =>
        expect(pool.stats().map((s) => (s.state === 'ready' ? s.address : s.state))).toEqual([
          `127.0.0.1:${two.port}`,
          `127.0.0.1:${two.port}`,
        ]),
      { timeout: 2000 },
    )
    const replies = await Promise.all(Array.from({ length: 4 }, () => pool.call('/who')))
    expect(replies.map(String)).toEqual(['two', 'two', 'two', 'two'])
  })
})

describe('sessions and streams on a connection that dies', () => {
  it('end with UNAVAILABLE, and a new session opens at once', async () => {
    const { port } = await h.server((s) =>
      s.mux.handle('/echo', async (ctx) => {
        for await (const m of ctx.messages()) await ctx.sendMessage(m)
      }),
    )
    const link = await proxy(port)
    const pool = await h.pool(link.address, { size: 2, backoff: { initial: 1000, max: 2000 } })
    await pool.connect()
    const session = await pool.createBidirectionalSession('/echo')
    await session.send('one')
    expect((await session.receive())?.toString()).toBe('one')
    link.cutAll()
    expect(await codeOf(session.receive())).toBe(Code.UNAVAILABLE)
    const reopenedAt = performance.now()
    const again = await pool.createBidirectionalSession('/echo', { timeout: 2000 })
    await again.send('two')
    expect((await again.receive())?.toString()).toBe('two')
    // A reconnect, not a backoff wait (at least 1000 ms here).
    expect(performance.now() - reopenedAt).toBeLessThan(500)
    await again.close()
  })
})

describe('pool state and events', () => {
  it('goes idle → connecting → transient_failure against a closed port, failing calls fast, and to ready when the server appears', async () => {
    const { server, port } = await h.server(() => {})
    await server.shutdown()
    const pool = await h.pool(`127.0.0.1:${port}`, { size: 2, backoff: BACKOFF })
    const states: string[] = []
    const reconnecting: number[] = []
    const errors: string[] = []
    pool.on('stateChange', ({ from, to }) => states.push(`${from}→${to}`))
    pool.on('reconnecting', ({ attempt }) => reconnecting.push(attempt))
    pool.on('error', (e) => errors.push(e.code))
    expect(pool.state).toBe('idle')
    expect(await codeOf(pool.call('/x', '', { timeout: 2000 }))).toBe(Code.UNAVAILABLE)
    expect(pool.state).toBe('transient_failure')
    const fast = performance.now()
    const err = await rejection(pool.call('/x', '', { timeout: 2000 }))
    expect(err.code).toBe(Code.UNAVAILABLE)
    expect(err.message).toContain('no connection is ready')
    expect(performance.now() - fast).toBeLessThan(50)
    expect(states).toEqual(['idle→connecting', 'connecting→transient_failure'])
    expect(errors.every((c) => c === Code.UNAVAILABLE)).toBe(true)

    await sleep(300)
    const back = await h.server((s) => s.mux.handle('/x', () => 'x'), { address: `127.0.0.1:${port}` })
    await vi.waitFor(() => expect(pool.state).toBe('ready'), { timeout: BACKOFF.max + 300, interval: 5 })
    expect(states.at(-1)).toBe('transient_failure→ready')
    expect(reconnecting.slice(0, 2)).toEqual([1, 1])
    expect(Math.max(...reconnecting)).toBeGreaterThanOrEqual(2)
    expect((await pool.call('/x')).toString()).toBe('x')
    await back.server.shutdown({ timeout: 100 })
  })

  it('rejects bad pool options with INVALID_ARGUMENT naming the option', async () => {
    const bad: [Partial<PoolOptions>, string][] = [
      [{ backoff: { initial: 0 } }, 'backoff.initial'],
      [{ backoff: { initial: 500, max: 100 } }, 'backoff.max'],
      [{ backoff: { multiplier: 0.5 } }, 'backoff.multiplier'],
      [{ healthCheck: { interval: -1 } }, 'healthCheck.interval'],
      [{ healthCheck: { route: '' } }, 'healthCheck.route'],
      [{ balancing: 'random' as 'round-robin' }, 'balancing'],
      [{ maxQueued: 0 }, 'maxQueued'],
      [{ resolveInterval: 1.5 }, 'resolveInterval'],
      [{ waitForReady: 'yes' as unknown as boolean }, 'waitForReady'],
      [{ addresses: [] }, 'addresses'],
      [{ address: '127.0.0.1:1', addresses: ['127.0.0.1:2'] }, 'addresses'],
    ]
    const { clientOptions } = await certificates()
    for (const [options, name] of bad) {
      let error: unknown
      try {
        new Pool({ address: options.addresses ? undefined : '127.0.0.1:1', tls: clientOptions, ...options })
      } catch (e) {
        error = e
      }
      expect(error, name).toBeInstanceOf(RpcError)
      expect((error as RpcError).code).toBe(Code.INVALID_ARGUMENT)
      expect((error as RpcError).message).toContain(`option ${name}`)
    }
  })
})

describe('balancing', () => {
  /** 8 callers for 400 ms against two servers, one 20 ms further away each way. */
  async function unevenServers(
    balancing: PoolOptions['balancing'],
  ): Promise<{ calls: number; fast: number }> {
    const fast = await h.server((s) => s.mux.handle('/who', () => 'fast'))
    const slow = await h.server((s) => s.mux.handle('/who', () => 'slow'))
    const link = await proxy(slow.port)
    link.latency(20)
    const pool: Pool = await h.pool([fast.address, link.address], { size: 2, balancing })
    await pool.connect()
    let calls = 0
    let served = 0
    const until = performance.now() + 400
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (performance.now() < until) {
          calls++
          if ((await pool.call('/who')).toString() === 'fast') served++
        }
      }),
    )
    return { calls, fast: served / calls }
  }

  it('least-in-flight sends more calls to the faster of two servers and completes more of them than round-robin', async () => {
    const roundRobin = await unevenServers('round-robin')
    const least = await unevenServers('least-in-flight')
    expect(roundRobin.fast).toBeGreaterThan(0.4)
    expect(roundRobin.fast).toBeLessThan(0.6)
    expect(least.fast).toBeGreaterThan(0.75)
    expect(least.calls).toBeGreaterThan(roundRobin.calls * 2)
  })
})

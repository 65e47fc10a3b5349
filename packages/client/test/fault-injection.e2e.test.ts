import { randomBytes } from 'node:crypto'
import type { Server } from '@srpc/server'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { Code, type Pool, type PoolEvents, RpcError } from '../src/index'
import { FaultProxy } from './fault-proxy'
import { errorOf, Harness, sleep } from './harness'

// Every bound below is a number of ms asserted by its test. Backoff numbers are small so the
// whole file runs in a few seconds; the README explains the defaults.
const BACKOFF = { initial: 100, multiplier: 1.6, max: 400 }

const h = new Harness()
const proxies: FaultProxy[] = []
const unhandled: unknown[] = []
const onUnhandled = (reason: unknown) => unhandled.push(reason)
beforeAll(() => {
  process.on('unhandledRejection', onUnhandled)
})
afterAll(() => {
  process.off('unhandledRejection', onUnhandled)
})
afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.stop()))
  await h.cleanup()
  // Background work (reconnects, probes, lookups) never leaves a rejection nobody handles.
  expect(unhandled.splice(0)).toEqual([])
})

const named = (name: string) => (s: Server) => {
  s.mux.handle('/who', () => name)
  s.mux.handle('/hang', () => new Promise(() => {}))
}

async function proxy(port: number): Promise<FaultProxy> {
  const p = await new FaultProxy(port).start()
  proxies.push(p)
  return p
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'OK',
    (e: unknown) => (e instanceof RpcError ? e.code : `not an RpcError: ${e}`),
  )
}

/** Handles and timers that keep the event loop alive, by kind. */
function resources(): Map<string, number> {
  const counts = new Map<string, number>()
  for (const kind of process.getActiveResourcesInfo()) counts.set(kind, (counts.get(kind) ?? 0) + 1)
  return counts
}

/** No more sockets, servers or ref'd timers than before. Polls by hand: vi.waitFor's own timers would count. */
async function expectNoLeaks(before: Map<string, number>): Promise<void> {
  const leaks = () =>
    ['TLSWrap', 'TCPSocketWrap', 'TCPServerWrap', 'Timeout']
      .map((kind) => ({ kind, extra: (resources().get(kind) ?? 0) - (before.get(kind) ?? 0) }))
      .filter(({ extra }) => extra > 0)
  const deadline = performance.now() + 2000
  while (performance.now() < deadline && leaks().length > 0) await sleep(20)
  expect(leaks()).toEqual([])
}

interface Outcome {
  start: number
  end: number
  code: string
  by: string | undefined
}

/** `concurrency` loops calling `/who` back to back (5 ms apart) until stopped. */
function steadyLoad(
  pool: Pool,
  options: { concurrency?: number; timeout?: number; waitForReady?: boolean } = {},
) {
  const { concurrency = 4, timeout = 1000, waitForReady } = options
  const outcomes: Outcome[] = []
  let stopped = false
  const loops = Array.from({ length: concurrency }, async () => {
    while (!stopped) {
      const start = performance.now()
      try {
        const reply = await pool.call('/who', '', { timeout, waitForReady })
        outcomes.push({ start, end: performance.now(), code: 'OK', by: reply.toString() })
      } catch (e) {
        const code = e instanceof RpcError ? e.code : `not an RpcError: ${e}`
        outcomes.push({ start, end: performance.now(), code, by: undefined })
      }
      await sleep(5)
    }
  })
  return {
    outcomes,
    async stop(): Promise<Outcome[]> {
      stopped = true
      await Promise.all(loops)
      return outcomes
    },
  }
}

function waitForState(pool: Pool, state: Pool['state'], timeout: number): Promise<number> {
  return vi.waitFor(
    () => {
      expect(pool.state).toBe(state)
      return performance.now()
    },
    { timeout, interval: 2 },
  )
}

describe('a server killed and restarted on the same port under steady load', () => {
  it('fails calls fast during the outage and is ready within one backoff step after the server returns', async () => {
    const before = resources()
    const first = await h.server(named('first'))
    const pool = await h.pool(first.address, { size: 2, backoff: BACKOFF, connectTimeout: 1000 })
    const states: string[] = []
    pool.on('stateChange', ({ to }) => states.push(to))
    await pool.connect()
    const load = steadyLoad(pool, { timeout: 1000 })
    await sleep(150)

    const killedAt = performance.now()
    await first.server.destroy()
    await sleep(600)
    const second = await h.server(named('second'), { address: first.address })
    const backAt = performance.now()
    const readyAt = await waitForState(pool, 'ready', 2000)
    await sleep(150)
    const outcomes = await load.stop()

    // Back within one backoff step: the longest wait (max) plus a connection setup.
    expect(readyAt - backAt).toBeLessThan(BACKOFF.max + 200)
    const during = outcomes.filter((o) => o.start > killedAt + 50 && o.end < backAt)
    expect(during.length).toBeGreaterThan(20)
    expect(new Set(during.map((o) => o.code))).toEqual(new Set([Code.UNAVAILABLE]))
    // Fast: no waiting for the 1000 ms deadline while the pool knows nothing is there.
    expect(Math.max(...during.map((o) => o.end - o.start))).toBeLessThan(100)
    const after = outcomes.filter((o) => o.start > readyAt)
    expect(after.length).toBeGreaterThan(10)
    expect(after.every((o) => o.code === 'OK' && o.by === 'second')).toBe(true)
    // No call ever outlived its 1000 ms deadline.
    expect(Math.max(...outcomes.map((o) => o.end - o.start))).toBeLessThan(1100)
    expect(states).toContain('transient_failure')
    expect(states.at(-1)).toBe('ready')

    await pool.close()
    await second.server.shutdown({ timeout: 200 })
    await h.cleanup()
    await expectNoLeaks(before)
  })

  it('lets waitForReady calls wait out the outage and bounds them by their own deadline', async () => {
    const first = await h.server(named('first'))
    const pool = await h.pool(first.address, { size: 2, backoff: BACKOFF })
    await pool.connect()
    await first.server.destroy()
    await waitForState(pool, 'transient_failure', 1000)

    const failFast = codeOf(pool.call('/who', '', { timeout: 3000 }))
    const shortStart = performance.now()
    const short = codeOf(pool.call('/who', '', { timeout: 200, waitForReady: true }))
    const patient = pool.call('/who', '', { timeout: 3000, waitForReady: true })
    const patientStream = (async () => {
      const chunks: string[] = []
      for await (const chunk of pool.callStream('/who', '', { timeout: 3000, waitForReady: true })) {
        chunks.push(chunk.toString())
      }
      return chunks
    })()
    expect(await failFast).toBe(Code.UNAVAILABLE)
    expect(await short).toBe(Code.DEADLINE_EXCEEDED)
    // Its own deadline (200 ms), not later.
    expect(performance.now() - shortStart).toBeLessThan(300)

    await h.server(named('second'), { address: first.address })
    expect((await patient).toString()).toBe('second')
    expect(await patientStream).toEqual(['second'])
  })
})

describe('a black-holed link', () => {
  it('is detected within the keepalive timeout, fails calls with UNAVAILABLE, and reconnects when it heals', async () => {
    const { port } = await h.server(named('server'))
    const link = await proxy(port)
    const pool = await h.pool(link.address, {
      keepalive: { interval: 100, timeout: 100 },
      healthCheck: { interval: 100, timeout: 100 },
      connectTimeout: 300,
      backoff: BACKOFF,
    })
    const unhealthy: PoolEvents['unhealthy'][0][] = []
    pool.on('unhealthy', (info) => unhealthy.push(info))
    await pool.connect()
    expect((await pool.call('/who')).toString()).toBe('server')

    const hanging = codeOf(pool.call('/hang'))
    link.blackhole()
    const cutAt = performance.now()
    expect(await hanging).toBe(Code.UNAVAILABLE)
    // Keepalive: an interval to notice silence, one more if data had just arrived, the ping
    // timeout (300 ms), plus timer slack.
    expect(performance.now() - cutAt).toBeLessThan(450)
    // While the link stays dark, new calls fail with UNAVAILABLE well before their deadline.
    const during = performance.now()
    expect(await codeOf(pool.call('/who', '', { timeout: 3000 }))).toBe(Code.UNAVAILABLE)
    expect(performance.now() - during).toBeLessThan(1000)

    link.forward()
    const healedAt = performance.now()
    const readyAt = await waitForState(pool, 'ready', 3000)
    // An attempt stuck in the dark link times out (connectTimeout), then at most one backoff step.
    expect(readyAt - healedAt).toBeLessThan(300 + BACKOFF.max + 300)
    expect((await pool.call('/who', '', { timeout: 1000 })).toString()).toBe('server')
    expect(unhealthy.some((u) => u.slot !== undefined)).toBe(true)
  })
})

describe('two servers, one killed', () => {
  it('moves all traffic to the other within a second, and brings it back when the server returns', async () => {
    const a = await h.server(named('a'))
    const b = await h.server(named('b'))
    const pool = await h.pool([a.address, b.address], { size: 4, backoff: BACKOFF, connectTimeout: 500 })
    const events: string[] = []
    pool.on('healthy', ({ address }) => events.push(`healthy ${address}`))
    pool.on('unhealthy', ({ address, slot }) => slot === undefined && events.push(`unhealthy ${address}`))
    await pool.connect()
    const perServer = () => {
      const counts: Record<string, number> = {}
      for (const s of pool.stats())
        if (s.state === 'ready') counts[s.address!] = (counts[s.address!] ?? 0) + 1
      return counts
    }
    expect(perServer()).toEqual({ [a.address]: 2, [b.address]: 2 })
    const load = steadyLoad(pool, { concurrency: 8 })
    await sleep(200)

    const killedAt = performance.now()
    await b.server.destroy()
    // Long enough that the outage checked below (from 1 s after the kill until the restart) holds
    // about a second of calls: with 200 ms of it, a stall of the process on a loaded CI machine
    // once left 43 calls there.
    await sleep(2000)
    const restarted = await h.server(named('b'), { address: b.address })
    const backAt = performance.now()
    await vi.waitFor(() => expect(perServer()).toEqual({ [a.address]: 2, [b.address]: 2 }), {
      timeout: 3000,
      interval: 5,
    })
    const balancedAt = performance.now()
    await sleep(200)
    const outcomes = await load.stop()

    // Before the kill both served; from at most a second after it, only `a`, and nothing failed.
    const beforeKill = outcomes.filter((o) => o.end < killedAt)
    expect(new Set(beforeKill.map((o) => o.by))).toEqual(new Set(['a', 'b']))
    const lastNotA = Math.max(
      ...outcomes.filter((o) => o.start < backAt && (o.by !== 'a' || o.code !== 'OK')).map((o) => o.start),
    )
    expect(lastNotA - killedAt).toBeLessThan(1000)
    const outage = outcomes.filter((o) => o.start > killedAt + 1000 && o.end < backAt)
    expect(outage.length).toBeGreaterThan(50)
    expect(outage.every((o) => o.by === 'a')).toBe(true)
    // b is probed on its backoff schedule: back within one step (max) plus two connection setups.
    expect(balancedAt - backAt).toBeLessThan(BACKOFF.max + 400)
    const back = outcomes.filter((o) => o.start > balancedAt)
    expect(back.filter((o) => o.by === 'b').length).toBeGreaterThan(back.length / 4)
    expect(back.every((o) => o.code === 'OK')).toBe(true)
    expect(events).toEqual([`unhealthy ${b.address}`, `healthy ${b.address}`])
    await restarted.server.shutdown({ timeout: 200 })
  })
})

describe('many pools against a dead address', () => {
  it('make pools × size attempts per backoff step, on the backoff schedule, not a busy loop', async () => {
    const dead = await proxy(1)
    dead.refuse()
    const backoff = { initial: 200, multiplier: 1.6, max: 1000 }
    // When each wait's timer was armed. A slot arms its timer and emits 'reconnecting' right
    // after, so the latest setTimeout of `delay` ms when the event arrives is the slot's own.
    // Measuring from the event instead would count any pause between the two (a GC, or a process
    // descheduled on a loaded machine: 50.6 ms once in CI) as time the slot did not wait.
    const armedAt = new Map<number, number>()
    const realSetTimeout = globalThis.setTimeout
    const spy = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((
      callback: (...args: unknown[]) => void,
      ms?: number,
      ...args: unknown[]
    ) => {
      if (typeof ms === 'number') armedAt.set(ms, performance.now())
      return realSetTimeout(callback, ms, ...args)
    }) as unknown as typeof setTimeout)
    const failures = new Map<string, { at: number; armed: number; attempt: number; delay: number }[]>()
    const pools: Pool[] = []
    try {
      for (let p = 0; p < 10; p++) {
        const pool = await h.pool(dead.address, { size: 4, backoff })
        pool.on('reconnecting', ({ slot, attempt, delay }) => {
          const key = `${p}/${slot}`
          const failure = { at: performance.now(), armed: armedAt.get(delay) ?? Number.NaN, attempt, delay }
          failures.set(key, [...(failures.get(key) ?? []), failure])
        })
        pools.push(pool)
      }
      const started = performance.now()
      for (const pool of pools) pool.connect().catch(() => {})
      // Step 0: each of the 40 slots tries once; none tries again before `initial` (200 ms) passed.
      // On a loaded machine the forty first failures can take longer than that to come in, so a
      // slot that failed early may already have made its second attempt: allowed only once the
      // first wait's timer is `initial` old (less Node's whole-millisecond rounding).
      await vi.waitFor(() => expect(failures.size).toBe(40), { timeout: 1000, interval: 2 })
      const firstArmed = Math.min(...[...failures.values()].map((list) => list[0].armed))
      const early = dead.attempts
      expect(early).toBeGreaterThanOrEqual(40)
      if (early > 40) expect(performance.now() - firstArmed).toBeGreaterThanOrEqual(backoff.initial - 1)
      await sleep(3000 - (performance.now() - started))
    } finally {
      spy.mockRestore()
    }
    const attempts = dead.attempts
    await Promise.all(pools.map((p) => p.close()))

    // Over 3000 ms: were every wait the longest possible, 5 attempts per slot; were every wait
    // the shortest (200 ms), 15; the jitter's mean lands near 6.5. A busy loop would make thousands.
    expect(attempts).toBeGreaterThanOrEqual(40 * 5)
    expect(attempts).toBeLessThanOrEqual(40 * 9)
    for (const list of failures.values()) {
      list.forEach(({ attempt, delay, at, armed }, i) => {
        // The n-th wait lies in [initial, min(max, initial · multiplier^n)] ...
        expect(attempt).toBe(i + 1)
        expect(delay).toBeGreaterThanOrEqual(backoff.initial)
        expect(delay).toBeLessThanOrEqual(
          Math.min(backoff.max, backoff.initial * backoff.multiplier ** attempt),
        )
        // ... and the next attempt (and its failure) comes no sooner than `delay` after the timer
        // was armed (Node counts timers in whole milliseconds, so up to 1 ms early by
        // performance.now()), and within a second of it: the attempt itself plus timer lateness.
        // The attempt count above is what proves the schedule; this proves each wait is the one
        // the backoff chose.
        expect(armed).toBeLessThanOrEqual(at)
        const next = list[i + 1]
        if (next) {
          expect(next.at - armed).toBeGreaterThanOrEqual(delay - 1)
          expect(next.at - at).toBeLessThan(delay + 1000)
        }
      })
    }
    // One attempt per step per slot: every attempt on the wire failed into exactly one wait.
    const waits = [...failures.values()].reduce((n, list) => n + list.length, 0)
    expect(attempts).toBeGreaterThanOrEqual(waits)
    expect(attempts).toBeLessThanOrEqual(waits + 40)
  })
})

describe('a server at its connection limit', () => {
  it('meets a growing backoff, not a reconnect loop, while the connections it took keep serving', async () => {
    const { port } = await h.server(named('server'), { maxConnections: 1 })
    const link = await proxy(port)
    const pool = await h.pool(link.address, { size: 1, backoff: BACKOFF })
    await pool.connect()
    const attempts: number[] = []
    pool.on('reconnecting', ({ attempt }) => attempts.push(attempt))
    // Two more connections: the server turns them away right after the handshake. They never
    // join rotation (the server never answered on them), so no call is sent into them.
    pool.setSize(3)
    const replies = await Promise.all(
      Array.from({ length: 20 }, () => pool.call('/who', '', { timeout: 1000 })),
    )
    expect(new Set(replies.map(String))).toEqual(new Set(['server']))
    await sleep(1000)
    // Two slots turned away for 1000 ms: waits of at least 100 ms, growing to 400, so about 5 tries
    // each, 15 at most; a reconnect loop would make hundreds.
    expect(link.attempts).toBeLessThanOrEqual(1 + 2 * 10)
    expect(Math.max(...attempts)).toBeGreaterThanOrEqual(3)
    expect(pool.state).toBe('ready')
    expect(pool.stats().filter((s) => s.state === 'ready')).toHaveLength(1)
  })
})

describe('pool.close() during reconnect backoff', () => {
  it('resolves promptly and leaves no timer behind', async () => {
    // A port that was just closed: connections are refused at once.
    const { server, port } = await h.server(() => {})
    await server.shutdown()
    const realSetTimeout = globalThis.setTimeout
    const realClearTimeout = globalThis.clearTimeout
    const live = new Map<NodeJS.Timeout, string>()
    globalThis.setTimeout = ((fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
      const timer = realSetTimeout(() => {
        live.delete(timer)
        fn(...args)
      }, ms)
      const stack = new Error().stack ?? ''
      if (stack.includes('/packages/client/src/')) live.set(timer, stack)
      return timer
    }) as typeof setTimeout
    globalThis.clearTimeout = ((timer: NodeJS.Timeout | undefined) => {
      if (timer) live.delete(timer)
      realClearTimeout(timer)
    }) as typeof clearTimeout
    try {
      const pool = await h.pool(`127.0.0.1:${port}`, { size: 3, backoff: { initial: 5000, max: 10_000 } })
      const waiting = new Promise((resolve) => pool.on('reconnecting', resolve))
      const connecting = codeOf(pool.connect())
      await waiting
      expect(await connecting).toBe(Code.UNAVAILABLE)
      expect(live.size).toBeGreaterThan(0)
      const closingAt = performance.now()
      await pool.close()
      expect(performance.now() - closingAt).toBeLessThan(50)
      expect([...live.values()]).toEqual([])
      expect(pool.state).toBe('closed')
      expect(pool.stats().every((s) => s.state === 'closed')).toBe(true)
    } finally {
      globalThis.setTimeout = realSetTimeout
      globalThis.clearTimeout = realClearTimeout
    }
  })

  it('cancels a connection attempt stuck in a black hole at once', async () => {
    const { port } = await h.server(named('server'))
    const dark = await proxy(port)
    dark.blackhole()
    const pool = await h.pool(dark.address, { connectTimeout: 20_000 })
    const call = codeOf(pool.call('/who', '', { timeout: 10_000 }))
    await vi.waitFor(() => expect(dark.connections).toBe(1))
    const closingAt = performance.now()
    await pool.destroy()
    expect(await call).toBe(Code.CANCELLED)
    expect(performance.now() - closingAt).toBeLessThan(50)
    await vi.waitFor(() => expect(dark.connections).toBe(0))
  })
})

describe('a connection cut in the middle of a stream', () => {
  it('ends the stream with UNAVAILABLE after the chunks that arrived, and the pool is ready again at once', async () => {
    // The server sends 50 chunks, waits until the client has read them, then sends the rest while
    // the link cuts (a TCP reset) 30,000 bytes later, inside a frame. Only the 50 are certain:
    // bytes in flight at a reset are lost when a write meets the reset before they are read (Node
    // then destroys the socket with them), and otherwise read before an EOF.
    let release!: () => void
    const released = new Promise<void>((resolve) => {
      release = resolve
    })
    const { port } = await h.server((s) => {
      s.mux.handle('/who', () => 'server')
      s.mux.handle('/count', async (ctx) => {
        const stream = ctx.stream()
        // Random bytes: compression must not shrink them under the cut.
        for (let i = 0; i < 1000; i++) {
          if (i === 50) await released
          await stream.writeChunk(randomBytes(1024), i === 999)
        }
      })
    })
    const link = await proxy(port)
    const pool = await h.pool(link.address, { backoff: { initial: 1000, max: 2000 } })
    await pool.connect()
    let chunks = 0
    const ended = await codeOf(
      (async () => {
        for await (const _ of pool.callStream('/count', '', { timeout: 5000 })) {
          if (++chunks === 50) {
            link.cutAfter(30_000)
            release()
          }
        }
      })(),
    )
    const cutAt = performance.now()
    expect(ended).toBe(Code.UNAVAILABLE)
    expect(chunks).toBeGreaterThanOrEqual(50)
    // 30,000 bytes hold at most 29 chunks of 1 KiB.
    expect(chunks).toBeLessThan(80)
    link.cutAfter(undefined)
    expect((await pool.call('/who', '', { timeout: 1000 })).toString()).toBe('server')
    // The lost connection is replaced at once, not after a backoff wait (at least 1000 ms here).
    expect(performance.now() - cutAt).toBeLessThan(500)
  })
})

describe('a reply cut inside its frame by a server that died', () => {
  it('fails the call UNAVAILABLE (a lost link, not a broken peer), so a retry policy sends it again', async () => {
    const big = randomBytes(200_000)
    const { port } = await h.server((s) => {
      s.mux.handle('/big', () => big)
    })
    const link = await proxy(port)
    const pool = await h.pool(link.address, { backoff: { initial: 1000, max: 2000 } })
    await pool.connect()
    // The client gets 50,000 bytes of the reply's frame, then an end: what a killed process leaves.
    link.endAfter(50_000)
    const lost = await errorOf(pool.call('/big', '', { timeout: 5000 }))
    expect(lost.code).toBe(Code.UNAVAILABLE)
    expect(lost.message).toMatch(/stream ended inside a frame \(header read, \d+ of 200000 body bytes\)/)
    // The same cut under a retry policy: the second attempt waits for the new connection (the
    // pool replaces the lost one at once) and succeeds there.
    await pool.call('/big', '', { timeout: 5000, waitForReady: true })
    link.endAfter(50_000)
    const reply = await pool.call('/big', '', {
      timeout: 5000,
      waitForReady: true,
      retry: { maxAttempts: 2 },
    })
    expect(reply.equals(big)).toBe(true)
  })
})

import { Code, type Interceptor } from '@srpc/server'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { ClientStream, PoolEvents } from '../src/index'
import { codeOf, Harness } from './harness'

const h = new Harness()
afterEach(() => h.cleanup())

const CHECK = '/srpc.health/check'
const WATCH = '/srpc.health/watch'

/** Reads the next chunk of a watch as its status; fails after 5 s instead of hanging. */
async function nextStatus(iterator: AsyncIterator<Buffer>): Promise<string | undefined> {
  const next = await Promise.race([
    iterator.next(),
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error('no chunk within 5 s')), 5000).unref(),
    ),
  ])
  return next.done ? undefined : JSON.parse(next.value.toString()).status
}

function watch(stream: ClientStream): AsyncIterator<Buffer> {
  return stream[Symbol.asyncIterator]()
}

describe('/srpc.health/check', () => {
  it('answers SERVING for the whole server from the start, with an empty request or {"service":""}', async () => {
    const { address } = await h.server(() => {})
    const pool = await h.pool(address)
    expect(JSON.parse((await pool.call(CHECK)).toString())).toEqual({ status: 'SERVING' })
    expect((await pool.call(CHECK, '{"service":""}')).toString()).toBe('{"status":"SERVING"}')
    expect((await pool.call(CHECK, '{}')).toString()).toBe('{"status":"SERVING"}')
  })

  it('answers each service as set, NOT_FOUND for one never set, INVALID_ARGUMENT for a request that is not the JSON asked for', async () => {
    const { server, address } = await h.server(() => {})
    server.health.set('shop.Cart', 'NOT_SERVING')
    const pool = await h.pool(address)
    expect((await pool.call(CHECK, '{"service":"shop.Cart"}')).toString()).toBe('{"status":"NOT_SERVING"}')
    server.health.set('shop.Cart', 'SERVING')
    expect((await pool.call(CHECK, '{"service":"shop.Cart"}')).toString()).toBe('{"status":"SERVING"}')
    expect(await codeOf(pool.call(CHECK, '{"service":"shop.Orders"}'))).toBe(Code.NOT_FOUND)
    expect(await codeOf(pool.call(CHECK, 'shop.Cart'))).toBe(Code.INVALID_ARGUMENT)
    expect(await codeOf(pool.call(CHECK, '{"service":7}'))).toBe(Code.INVALID_ARGUMENT)
    expect(await codeOf(pool.call(CHECK, '[]'))).toBe(Code.INVALID_ARGUMENT)
    expect(() => server.health.set('x', 'MAYBE' as 'SERVING')).toThrow(/status/)
  })
})

describe('/srpc.health/watch', () => {
  it('sends the current status, then each change (SERVICE_UNKNOWN for a service never set), and nothing for a set that changes nothing', async () => {
    const { server, address } = await h.server(() => {})
    const pool = await h.pool(address)
    const stream = pool.callStream(WATCH, '{"service":"shop.Cart"}')
    const chunks = watch(stream)
    expect(await nextStatus(chunks)).toBe('SERVICE_UNKNOWN')
    server.health.set('shop.Cart', 'SERVING')
    expect(await nextStatus(chunks)).toBe('SERVING')
    server.health.set('shop.Cart', 'SERVING')
    server.health.set('other', 'NOT_SERVING')
    server.health.set('shop.Cart', 'NOT_SERVING')
    expect(await nextStatus(chunks)).toBe('NOT_SERVING')
    server.health.clear('shop.Cart')
    expect(await nextStatus(chunks)).toBe('SERVICE_UNKNOWN')
    await chunks.return?.()
  })

  it('keeps only the newest status for a watcher that has not read the older ones', async () => {
    const { server, address } = await h.server(() => {})
    const pool = await h.pool(address)
    const chunks = watch(pool.callStream(WATCH, '{"service":"svc"}'))
    expect(await nextStatus(chunks)).toBe('SERVICE_UNKNOWN')
    // A thousand changes in one go: the watcher is told where they ended, not each step.
    for (let i = 0; i < 1000; i++) {
      server.health.set('svc', 'SERVING')
      server.health.clear('svc')
    }
    server.health.set('svc', 'NOT_SERVING')
    expect(await nextStatus(chunks)).toBe('NOT_SERVING')
    server.health.set('svc', 'SERVING')
    expect(await nextStatus(chunks)).toBe('SERVING')
    await chunks.return?.()
  })

  it('hears NOT_SERVING as the last chunk when the server shuts down, before the drain, and stays NOT_SERVING', async () => {
    const { server, address } = await h.server(() => {})
    server.health.set('shop.Cart', 'SERVING')
    const pool = await h.pool(address)
    const whole = watch(pool.callStream(WATCH))
    const cart = watch(pool.callStream(WATCH, '{"service":"shop.Cart"}'))
    expect(await nextStatus(whole)).toBe('SERVING')
    expect(await nextStatus(cart)).toBe('SERVING')
    const stopped = server.shutdown({ timeout: 5000 })
    expect(server.health.get('')).toBe('NOT_SERVING')
    expect(await nextStatus(whole)).toBe('NOT_SERVING')
    expect(await nextStatus(cart)).toBe('NOT_SERVING')
    // The stream ended cleanly with that chunk, so the drain does not wait for the watchers.
    expect(await nextStatus(whole)).toBeUndefined()
    expect(await nextStatus(cart)).toBeUndefined()
    server.health.set('', 'SERVING')
    expect(server.health.get('')).toBe('NOT_SERVING')
    await stopped
  })

  it('refuses watchers past maxHealthWatchers with RESOURCE_EXHAUSTED, and takes one again once a watcher left', async () => {
    const { server, address } = await h.server(() => {}, { maxHealthWatchers: 2 })
    const pool = await h.pool(address)
    const first = watch(pool.callStream(WATCH))
    const second = watch(pool.callStream(WATCH))
    expect(await nextStatus(first)).toBe('SERVING')
    expect(await nextStatus(second)).toBe('SERVING')
    expect(server.health.watchers).toBe(2)
    expect(await codeOf(nextStatus(watch(pool.callStream(WATCH))))).toBe(Code.RESOURCE_EXHAUSTED)
    await first.return?.()
    await vi.waitFor(() => expect(server.health.watchers).toBe(1), { timeout: 5000 })
    const third = watch(pool.callStream(WATCH))
    expect(await nextStatus(third)).toBe('SERVING')
    await second.return?.()
    await third.return?.()
  })
})

describe('the pool probing with the health service', () => {
  it('takes a connection out of rotation once its server says NOT_SERVING for the service', async () => {
    const { server, address } = await h.server(() => {})
    server.health.set('shop.Cart', 'SERVING')
    const pool = await h.pool(address, {
      size: 1,
      healthCheck: { interval: 30, timeout: 2000, service: 'shop.Cart' },
    })
    await pool.connect()
    const unhealthy = new Promise<PoolEvents['unhealthy'][0]>((resolve, reject) => {
      pool.once('unhealthy', resolve)
      setTimeout(() => reject(new Error('not unhealthy within 5 s')), 5000).unref()
    })
    // Passing probes leave it alone.
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(pool.stats()[0].failures).toBe(0)
    server.health.set('shop.Cart', 'NOT_SERVING')
    const { error } = await unhealthy
    expect(error.code).toBe(Code.UNAVAILABLE)
    expect(error.message).toContain('NOT_SERVING')
  })

  it('keeps a connection whose server sheds the probe with RESOURCE_EXHAUSTED (busy is not unhealthy)', async () => {
    let probes = 0
    const counting: Interceptor = (next) => (call) => {
      if (call.route === '/srpc.health/check') probes++
      return next(call)
    }
    let release!: () => void
    const busy = new Promise<string>((resolve) => {
      release = () => resolve('done')
    })
    const { address } = await h.server((s) => s.handle('/busy', () => busy), {
      workers: 1,
      maxQueue: 0,
      interceptors: [counting],
    })
    const pool = await h.pool(address, { size: 1, healthCheck: { interval: 20, timeout: 2000, service: '' } })
    const unhealthy: unknown[] = []
    pool.on('unhealthy', (info) => unhealthy.push(info))
    const occupying = pool.call('/busy', '', { timeout: 10_000 })
    await vi.waitFor(() => expect(probes).toBeGreaterThanOrEqual(3), { timeout: 5000 })
    expect(unhealthy).toEqual([])
    expect(pool.stats()[0].failures).toBe(0)
    release()
    await occupying
  })

  it('refuses a service combined with a route', async () => {
    await expect(h.pool('127.0.0.1:1', { healthCheck: { route: '/health', service: '' } })).rejects.toThrow(
      /healthCheck.service/,
    )
  })
})

import { Code, RpcError } from '@srpc/protocol'
import { EventEmitter } from 'eventemitter3'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { idleHooks } from '../test/fake-clock'
import { advance, closeNetworksAfterEach, MemoryNetwork } from '../test/memory-network'
import type { PoolEvents } from './connectivity-state'
import { LoadBalancer } from './load-balancer'
import { resolvePoolOptions } from './options'
import { addressOf, DnsResolver, type Resolver } from './resolver'

describe('DnsResolver', () => {
  it('gives up on a lookup that never answers, keeps the last good answer, and leaves no timer', async () => {
    let answer = true
    const resolver = new DnsResolver(
      [{ host: 'service.internal', port: 8443 }],
      (hostname) =>
        answer ? Promise.resolve([{ address: '10.0.0.7', family: 4 }]) : new Promise(() => void hostname),
      100,
    )
    const first = await resolver.resolve()
    expect(first.map((a) => a.key)).toEqual(['10.0.0.7:8443'])
    answer = false
    const started = performance.now()
    const stuck = await resolver.resolve().then(
      () => undefined,
      (err: unknown) => err as RpcError,
    )
    expect(performance.now() - started).toBeGreaterThanOrEqual(95)
    expect(performance.now() - started).toBeLessThan(1000)
    expect(stuck).toBeInstanceOf(RpcError)
    expect(stuck?.code).toBe(Code.UNAVAILABLE)
    expect(stuck?.message).toContain('service.internal')
    expect(resolver.known().map((a) => a.key)).toEqual(['10.0.0.7:8443'])
  })
})

describe('a custom resolver', () => {
  const A = addressOf('10.0.0.1', 8443, 'orders.internal')
  const B = addressOf('10.0.0.2', 8443, 'orders.internal')

  function setup(resolver: Resolver) {
    const network = new MemoryNetwork().set(A.key, 'up').set(B.key, 'up')
    const options = resolvePoolOptions({
      resolver,
      tls: {},
      size: 2,
      resolveInterval: 1000,
      connectTimeout: 300,
      healthCheck: false,
    })
    const events = new EventEmitter<PoolEvents>()
    const errors: RpcError[] = []
    events.on('error', (e) => errors.push(e))
    const hooks = idleHooks()
    const lb = new LoadBalancer(options, resolver, events, hooks, network.connect)
    const where = () => lb.slots.map((s) => (s.state === 'ready' ? s.endpoint?.key : s.state)).sort()
    return { lb, network, errors, where }
  }

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] })
  })
  closeNetworksAfterEach()
  afterEach(() => {
    vi.useRealTimers()
  })

  it('is asked at start and every resolveInterval; its addresses are dialled, with their servername', async () => {
    let answer = [A]
    const asked: number[] = []
    const resolver: Resolver = {
      dynamic: true,
      resolve: async () => {
        asked.push(Math.round(performance.now()))
        return answer
      },
    }
    const { lb, network, where } = setup(resolver)
    lb.start()
    await advance(0)
    expect(asked).toEqual([0])
    expect(where()).toEqual([A.key, A.key])
    answer = [B]
    await advance(1000)
    expect(asked).toEqual([0, 1000])
    expect(where()).toEqual([B.key, B.key])
    expect(network.open(A.key)).toHaveLength(0)
    await advance(1000)
    expect(asked).toEqual([0, 1000, 2000])
    lb.stop()
    await advance(5000)
    expect(asked).toHaveLength(3)
  })

  it('keeps the addresses it has when a resolve fails or never answers, and reports it', async () => {
    let mode: 'ok' | 'fail' | 'hang' = 'ok'
    const resolver: Resolver = {
      dynamic: true,
      resolve: () =>
        mode === 'ok'
          ? Promise.resolve([A])
          : mode === 'fail'
            ? Promise.reject(Object.assign(new Error('registry down'), { code: 'ECONNREFUSED' }))
            : new Promise(() => {}),
    }
    const { lb, errors, where } = setup(resolver)
    lb.start()
    await advance(0)
    expect(where()).toEqual([A.key, A.key])
    mode = 'fail'
    await advance(1000)
    expect(errors.map((e) => e.code)).toEqual([Code.UNAVAILABLE])
    expect(errors[0].message).toContain('registry down')
    expect(where()).toEqual([A.key, A.key])
    mode = 'hang'
    await advance(1000 + 300)
    expect(errors.map((e) => e.code)).toEqual([Code.UNAVAILABLE, Code.UNAVAILABLE])
    expect(errors[1].message).toContain('did not answer within 300 ms')
    expect(where()).toEqual([A.key, A.key])
    lb.stop()
  })

  it('reports an answer that is not a list as INVALID_ARGUMENT, and derives a missing key', async () => {
    let answer: unknown = 'nonsense'
    const resolver = { dynamic: true, resolve: async () => answer } as unknown as Resolver
    const { lb, errors, where } = setup(resolver)
    lb.start()
    await advance(0)
    // Reported once by the resolve, then by each slot that found no address to go to.
    expect(errors.map((e) => e.code)).toEqual(Array(3).fill(Code.INVALID_ARGUMENT))
    expect(errors[0].message).toContain('resolver.resolve()')
    answer = [{ host: '10.0.0.1', port: 8443, servername: 'orders.internal' }]
    await advance(1000)
    expect(where()).toEqual([A.key, A.key])
    lb.stop()
  })

  it('is asked once when it is not dynamic', async () => {
    let asked = 0
    const resolver: Resolver = {
      dynamic: false,
      resolve: async () => {
        asked++
        return [A, B]
      },
    }
    const { lb, where } = setup(resolver)
    lb.start()
    await advance(5000)
    expect(asked).toBe(1)
    expect(where()).toEqual([A.key, B.key])
    lb.stop()
  })

  it('is refused with INVALID_ARGUMENT naming it when combined with address, or not a resolver', () => {
    const resolver: Resolver = { dynamic: false, resolve: async () => [A] }
    for (const options of [
      { resolver, address: '10.0.0.1:8443', tls: {} },
      { resolver: { dynamic: true } as unknown as Resolver, tls: {} },
      { resolver: { resolve: async () => [A] } as unknown as Resolver, tls: {} },
    ]) {
      const error = (() => {
        try {
          resolvePoolOptions(options)
        } catch (err) {
          return err as RpcError
        }
      })()
      expect(error?.code).toBe(Code.INVALID_ARGUMENT)
      expect(error?.message).toContain('resolver')
    }
  })
})

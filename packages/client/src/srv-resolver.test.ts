import type { SrvRecord } from 'node:dns'
import { Code, RpcError } from '@srpc/protocol'
import { describe, expect, it } from 'vitest'
import type { Lookup } from './options'
import { SrvResolver, srvResolver } from './srv-resolver'
import { weightedOrder } from './weighted-order'

const NAME = '_srpc._tcp.orders.shop.svc.cluster.local'

/** A DNS whose answers the test changes; records and hosts as plain data. */
function fakeDns(records: SrvRecord[] | Error, hosts: Record<string, string[]>) {
  const dns = {
    records,
    hosts,
    queries: 0,
    resolveSrv: async (name: string) => {
      expect(name).toBe(NAME)
      dns.queries++
      if (dns.records instanceof Error) throw dns.records
      return dns.records
    },
    lookup: (async (host: string) => {
      const ips = dns.hosts[host]
      if (ips === undefined)
        throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' })
      return ips.map((address) => ({ address, family: 4 }))
    }) as Lookup,
  }
  return dns
}

const srv = (name: string, port: number, priority: number, weight: number): SrvRecord => ({
  name,
  port,
  priority,
  weight,
})

async function errorOf(promise: Promise<unknown>): Promise<RpcError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  if (!RpcError.is(err)) throw new Error(`expected an RpcError, got ${String(err)}`)
  return err
}

describe('SrvResolver', () => {
  it('gives the targets of the lowest priority, with their SRV port, weight and host as servername', async () => {
    const dns = fakeDns(
      [srv('b.orders', 9001, 20, 1), srv('a.orders', 9000, 10, 3), srv('c.orders', 9002, 10, 1)],
      { 'a.orders': ['10.0.0.1'], 'b.orders': ['10.0.0.2'], 'c.orders': ['10.0.0.3', '10.0.0.4'] },
    )
    const resolver = srvResolver(NAME, dns)
    const addresses = await resolver.resolve()
    expect(addresses.map((a) => [a.key, a.weight, a.servername]).sort()).toEqual([
      ['10.0.0.1:9000', 3, 'a.orders'],
      ['10.0.0.3:9002', 1, 'c.orders'],
      ['10.0.0.4:9002', 1, 'c.orders'],
    ])
    expect(resolver.dynamic).toBe(true)
  })

  it('fails over to the next priority when every target of the first is unreachable, and back', async () => {
    const dns = fakeDns(
      [srv('a.orders', 9000, 10, 1), srv('b.orders', 9000, 10, 1), srv('z.orders', 9000, 20, 1)],
      {
        'a.orders': ['10.0.0.1'],
        'b.orders': ['10.0.0.2'],
        'z.orders': ['10.0.9.9'],
      },
    )
    const resolver = new SrvResolver(NAME, dns)
    const [a, b] = (await resolver.resolve()).sort((x, y) => x.key.localeCompare(y.key))
    expect(resolver.reachability(a, false)).toBe(false)
    expect(resolver.known().map((x) => x.key)).not.toContain('10.0.9.9:9000')
    expect(resolver.reachability(b, false)).toBe(true)
    // The failed ones stay, so the pool keeps probing them; the next group joins.
    expect(
      resolver
        .known()
        .map((x) => x.key)
        .sort(),
    ).toEqual(['10.0.0.1:9000', '10.0.0.2:9000', '10.0.9.9:9000'])
    // Still so after a re-resolution with the same answer.
    expect((await resolver.resolve()).length).toBe(3)
    expect(resolver.reachability(a, true)).toBe(true)
    expect(
      resolver
        .known()
        .map((x) => x.key)
        .sort(),
    ).toEqual(['10.0.0.1:9000', '10.0.0.2:9000'])
  })

  it('follows changed answers when resolved again', async () => {
    const dns = fakeDns([srv('a.orders', 9000, 10, 1)], {
      'a.orders': ['10.0.0.1'],
      'b.orders': ['10.0.0.2'],
    })
    const resolver = new SrvResolver(NAME, dns)
    expect((await resolver.resolve()).map((a) => a.key)).toEqual(['10.0.0.1:9000'])
    dns.records = [srv('b.orders', 9100, 10, 1), srv('a.orders', 9000, 30, 1)]
    expect((await resolver.resolve()).map((a) => a.key)).toEqual(['10.0.0.2:9100'])
    dns.hosts['b.orders'] = ['10.0.0.5']
    expect((await resolver.resolve()).map((a) => a.key)).toEqual(['10.0.0.5:9100'])
    expect(dns.queries).toBe(3)
  })

  it('keeps the last good answer when the query fails, answers nothing, or says "."', async () => {
    const dns = fakeDns([srv('a.orders', 9000, 10, 1)], { 'a.orders': ['10.0.0.1'] })
    const resolver = new SrvResolver(NAME, dns)
    await resolver.resolve()
    dns.records = Object.assign(new Error(`querySrv ENOTFOUND ${NAME}`), { code: 'ENOTFOUND' })
    const failed = await errorOf(resolver.resolve())
    expect(failed.code).toBe(Code.UNAVAILABLE)
    expect(failed.message).toContain(NAME)
    dns.records = []
    expect((await errorOf(resolver.resolve())).message).toBe(`SRV ${NAME} has no targets`)
    dns.records = [srv('.', 0, 0, 0)]
    expect((await errorOf(resolver.resolve())).code).toBe(Code.UNAVAILABLE)
    expect(resolver.known().map((a) => a.key)).toEqual(['10.0.0.1:9000'])
  })

  it('leaves out a target whose lookup fails, and fails when none resolves', async () => {
    const dns = fakeDns([srv('a.orders', 9000, 10, 1), srv('gone.orders', 9000, 10, 1)], {
      'a.orders': ['10.0.0.1'],
    })
    const resolver = new SrvResolver(NAME, dns)
    expect((await resolver.resolve()).map((a) => a.key)).toEqual(['10.0.0.1:9000'])
    dns.hosts = {}
    const failed = await errorOf(resolver.resolve())
    expect(failed.code).toBe(Code.UNAVAILABLE)
    expect(failed.message).toMatch(/ENOTFOUND/)
  })

  it('gives up on a query that never answers', async () => {
    const resolver = new SrvResolver(NAME, { resolveSrv: () => new Promise(() => {}), timeout: 50 })
    const failed = await errorOf(resolver.resolve())
    expect(failed.code).toBe(Code.UNAVAILABLE)
    expect(failed.message).toMatch(/did not answer within 50 ms/)
  })

  it('uses the given servername for every target', async () => {
    const dns = fakeDns([srv('a.orders', 9000, 10, 1)], { 'a.orders': ['10.0.0.1'] })
    const resolver = new SrvResolver(NAME, { ...dns, servername: 'orders.shop.svc' })
    expect((await resolver.resolve())[0].servername).toBe('orders.shop.svc')
  })

  it('refuses a host:port or empty name with INVALID_ARGUMENT', () => {
    expect(() => srvResolver('orders:8443')).toThrow(/option name must be an SRV name/)
    expect(() => srvResolver('')).toThrow(RpcError)
  })
})

describe('weightedOrder', () => {
  it('puts a target first about as often as its share of the weight, weight 0 last', () => {
    const first = new Map<string, number>()
    const trials = 4000
    for (let i = 0; i < trials; i++) {
      const order = weightedOrder([
        { id: 'a', weight: 3 },
        { id: 'b', weight: 1 },
        { id: 'zero', weight: 0 },
      ])
      first.set(order[0].id, (first.get(order[0].id) ?? 0) + 1)
      expect(order[2].id).toBe('zero')
    }
    // 3:1 → 75 % and 25 %; the bounds are over 8 standard deviations wide.
    expect((first.get('a') ?? 0) / trials).toBeGreaterThan(0.68)
    expect((first.get('a') ?? 0) / trials).toBeLessThan(0.82)
    expect(first.get('zero')).toBeUndefined()
  })

  it('shuffles uniformly without weights and keeps every item', () => {
    const seen = new Set<string>()
    for (let i = 0; i < 200; i++) {
      const order = weightedOrder<{ id: string; weight?: number }>([{ id: 'a' }, { id: 'b' }, { id: 'c' }])
      expect(order.map((x) => x.id).sort()).toEqual(['a', 'b', 'c'])
      seen.add(order.map((x) => x.id).join(''))
    }
    expect(seen.size).toBe(6)
  })
})

import { Code, RpcError } from '@srpc/protocol'
import { describe, expect, it } from 'vitest'
import { DnsResolver } from './resolver'

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

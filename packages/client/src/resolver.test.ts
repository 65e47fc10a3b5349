import { Code, RpcError } from '@srpc/protocol'
import { describe, expect, it } from 'vitest'
import { Resolver } from './resolver'

describe('Resolver', () => {
  it('gives up on a lookup that never answers, keeps the last good answer, and leaves no timer', async () => {
    let answer = true
    const resolver = new Resolver(
      [{ host: 'service.internal', port: 8443 }],
      (hostname) =>
        answer ? Promise.resolve([{ address: '10.0.0.7', family: 4 }]) : new Promise(() => void hostname),
      100,
    )
    const first = await resolver.resolve()
    expect(first.error).toBeUndefined()
    expect(first.addresses.map((a) => a.key)).toEqual(['10.0.0.7:8443'])
    answer = false
    const started = performance.now()
    const stuck = await resolver.resolve()
    expect(performance.now() - started).toBeGreaterThanOrEqual(95)
    expect(performance.now() - started).toBeLessThan(1000)
    expect(stuck.error).toBeInstanceOf(RpcError)
    expect(stuck.error?.code).toBe(Code.UNAVAILABLE)
    expect(stuck.error?.message).toContain('service.internal')
    expect(stuck.addresses.map((a) => a.key)).toEqual(['10.0.0.7:8443'])
  })
})

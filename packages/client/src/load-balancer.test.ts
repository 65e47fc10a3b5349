import { Code } from '@srpc/protocol'
import { EventEmitter } from 'eventemitter3'
import { describe, expect, it } from 'vitest'
import { idleHooks, useFakeClock } from '../test/fake-clock'
import { advance, closeNetworksAfterEach, MemoryNetwork } from '../test/memory-network'
import type { PoolEvents } from './connectivity-state'
import { LoadBalancer } from './load-balancer'
import { resolvePoolOptions } from './options'
import { addressOf, StaticResolver } from './resolver'

const A = '10.0.0.1:8443'
const B = '10.0.0.2:8443'
const a = addressOf('10.0.0.1', 8443)
const b = addressOf('10.0.0.2', 8443)

function balancer(addresses: string[], size: number, network: MemoryNetwork) {
  const options = resolvePoolOptions({
    addresses,
    tls: {},
    size,
    backoff: { initial: 100, multiplier: 2, max: 500 },
    healthCheck: false,
  })
  const events = new EventEmitter<PoolEvents>()
  const log: string[] = []
  events.on('unhealthy', ({ address, slot, error }) => log.push(`unhealthy ${address} ${slot} ${error.code}`))
  events.on('healthy', ({ address }) => log.push(`healthy ${address}`))
  events.on('error', () => {})
  const hooks = idleHooks()
  const resolver = new StaticResolver(addresses.map((x) => (x === A ? a : b)))
  const lb = new LoadBalancer(options, resolver, events, hooks, network.connect)
  const where = () => lb.slots.map((s) => (s.state === 'ready' ? s.endpoint?.key : s.state)).sort()
  return { lb, log, where }
}

useFakeClock()
closeNetworksAfterEach()

describe('LoadBalancer', () => {
  it('ejects a refusing server, probes it on its own backoff, and moves a slot back when it answers', async () => {
    const network = new MemoryNetwork().set(A, 'refuse').set(B, 'up')
    const { lb, log, where } = balancer([A, B], 2, network)
    lb.start()
    await advance(0)
    // The slot that tried A moved on to B at once: no wait while a server works.
    expect(where()).toEqual([B, B])
    expect(log).toEqual([`unhealthy ${A} undefined ${Code.UNAVAILABLE}`])
    await advance(1000)
    // Probes of A 200, then 400, then 500 ms apart; slots never dial A themselves meanwhile.
    expect(network.attemptsTo(A)).toEqual([0, 200, 600])
    network.set(A, 'up')
    await advance(500)
    expect(network.attemptsTo(A)).toEqual([0, 200, 600, 1100])
    expect(log.at(-1)).toBe(`healthy ${A}`)
    expect(where()).toEqual([A, B])
    // The connection the probe replaced drains and closes; nothing else was opened to B.
    expect(network.open(B)).toHaveLength(1)
    expect(network.attemptsTo(B)).toEqual([0, 0])
    lb.stop()
  })

  it('stops probing once no server works, leaving the slots to back off by themselves', async () => {
    const network = new MemoryNetwork().set(A, 'refuse').set(B, 'up')
    const { lb, where } = balancer([A, B], 1, network)
    lb.start()
    await advance(0)
    expect(where()).toEqual([B])
    network.set(B, 'refuse')
    network.open(B)[0].lose()
    await advance(1000)
    const attempts = network.attempts.length
    // One slot, one attempt per backoff step at most (200, 400, 500 ms…): no probes on top.
    expect(attempts).toBeLessThanOrEqual(8)
    expect(where()).toEqual(['transient_failure'])
    lb.stop()
    await advance(5000)
    expect(network.attempts.length).toBe(attempts)
  })

  it('rebalances onto a server that appears: one new connection, the moved one drains', async () => {
    const network = new MemoryNetwork().set(A, 'up').set(B, 'up')
    const { lb, where } = balancer([A], 2, network)
    lb.start()
    await advance(0)
    expect(where()).toEqual([A, A])
    lb.setEndpoints([a, b])
    await advance(0)
    expect(where()).toEqual([A, B])
    expect(network.attemptsTo(B)).toEqual([0])
    expect(network.open(A)).toHaveLength(1)
    expect(network.open(B)).toHaveLength(1)
    // Balanced now: nothing more moves.
    await advance(1000)
    expect(network.attempts).toHaveLength(3)
    lb.stop()
  })

  it('drains the connections to a server that disappears and dials the remaining one', async () => {
    const network = new MemoryNetwork().set(A, 'up').set(B, 'up')
    const { lb, where } = balancer([A, B], 2, network)
    lb.start()
    await advance(0)
    expect(where()).toEqual([A, B])
    lb.setEndpoints([b])
    await advance(0)
    expect(where()).toEqual([B, B])
    expect(network.open(A)).toHaveLength(0)
    lb.stop()
  })
})

import { describe, expect, it } from 'vitest'
import { Picker as Balancer, type Candidate } from './picker'

interface Fake extends Candidate {
  name: string
  inFlight: number
}

function conn(name: string, inFlight = 0, hasCapacity = true): Fake {
  return { name, inFlight, hasCapacity }
}

function names(balancer: Balancer, ready: Fake[], n: number): string[] {
  return Array.from({ length: n }, () => balancer.pick(ready)?.name ?? '-')
}

describe('round-robin', () => {
  it('takes ready connections in turn', () => {
    const ready = [conn('a'), conn('b'), conn('c')]
    expect(names(new Balancer('round-robin'), ready, 7)).toEqual(['a', 'b', 'c', 'a', 'b', 'c', 'a'])
  })

  it('ignores load but skips a connection at the server stream limit', () => {
    const ready = [conn('a', 50), conn('b', 0, false), conn('c', 1)]
    expect(names(new Balancer('round-robin'), ready, 4)).toEqual(['a', 'c', 'a', 'c'])
  })

  it('returns undefined when nothing has room, or nothing is ready', () => {
    const balancer = new Balancer('round-robin')
    expect(balancer.pick([conn('a', 1, false)])).toBeUndefined()
    expect(balancer.pick([])).toBeUndefined()
  })

  it('keeps turning when the list shrinks under its cursor', () => {
    const balancer = new Balancer('round-robin')
    const ready = [conn('a'), conn('b'), conn('c')]
    expect(names(balancer, ready, 3)).toEqual(['a', 'b', 'c'])
    ready.splice(1, 1)
    expect(names(balancer, ready, 4)).toEqual(['c', 'a', 'c', 'a'])
  })
})

describe('least-in-flight', () => {
  it('picks the connection with the fewest calls in flight', () => {
    const ready = [conn('a', 3), conn('b', 1), conn('c', 2)]
    expect(new Balancer('least-in-flight').pick(ready)?.name).toBe('b')
  })

  it('takes turns among equally loaded connections', () => {
    const ready = [conn('a', 2), conn('b', 0), conn('c', 0), conn('d', 0)]
    expect(names(new Balancer('least-in-flight'), ready, 6)).toEqual(['b', 'c', 'd', 'b', 'c', 'd'])
  })

  it('skips a connection at the server stream limit even when it is the least loaded', () => {
    const ready = [conn('a', 0, false), conn('b', 5), conn('c', 4, false)]
    expect(new Balancer('least-in-flight').pick(ready)?.name).toBe('b')
    expect(new Balancer('least-in-flight').pick([conn('a', 0, false)])).toBeUndefined()
  })

  it('follows the load as calls start and finish', () => {
    const balancer = new Balancer('least-in-flight')
    const ready = [conn('a'), conn('b')]
    const start = () => {
      const c = balancer.pick(ready)!
      c.inFlight++
      return c
    }
    const first = start()
    const second = start()
    expect(first).not.toBe(second)
    start()
    start()
    expect(ready.map((c) => c.inFlight)).toEqual([2, 2])
    // A slow call holds on to `a`: new calls go to `b` until the loads meet again.
    ready[1].inFlight = 0
    expect(start().name).toBe('b')
    expect(start().name).toBe('b')
  })
})

import { afterEach, describe, expect, it, vi } from 'vitest'
import { MemoryClient } from '../test/memory-client'
import { IdleSweep, type IdleSweepable, SWEEPS_PER_TIMEOUT } from './idle-sweep'
import { Server } from './server'

afterEach(() => {
  vi.useRealTimers()
})

/** A connection that went idle at `since` and counts how often it was drained. */
function idleAt(since: number) {
  return {
    drained: 0,
    closeIfIdle(now: number, idleTimeout: number) {
      if (this.drained === 0 && now - since >= idleTimeout) this.drained++
    },
  }
}

describe('IdleSweep', () => {
  it('drains each connection once it was idle for idleTimeout, and stops when none is left', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] })
    const connections = new Set<IdleSweepable & { drained: number }>()
    const sweep = new IdleSweep(800, connections)
    const early = idleAt(performance.now())
    connections.add(early)
    sweep.connectionAdded()
    vi.advanceTimersByTime(400)
    const late = idleAt(performance.now())
    connections.add(late)
    sweep.connectionAdded()
    expect(vi.getTimerCount()).toBe(1)
    vi.advanceTimersByTime(400 + 800 / SWEEPS_PER_TIMEOUT)
    expect(early.drained).toBe(1)
    expect(late.drained).toBe(0)
    vi.advanceTimersByTime(400)
    expect(late.drained).toBe(1)
    connections.clear()
    vi.advanceTimersByTime(800)
    expect(vi.getTimerCount()).toBe(0)
  })
})

describe('Server idle timeout', () => {
  it('checks every connection from one timer, not a timer per connection', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const server = new Server({ idleTimeout: 60_000, keepalive: false })
    server.handle('/echo', (ctx) => ctx.payload)
    const clients = Array.from({ length: 20 }, () => new MemoryClient(server))
    expect(server.connections).toBe(20)
    expect(vi.getTimerCount()).toBe(1)
    vi.useRealTimers()
    await server.destroy()
    for (const c of clients) await c.closed()
  })
})

describe('Server idle timeout, by the calls a connection carries', () => {
  it('keeps a connection whose calls keep coming, and closes it between idleTimeout and one sweep after its last call', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] })
    const idleTimeout = 8000
    const server = new Server({ idleTimeout, keepalive: false })
    server.handle('/echo', (ctx) => ctx.payload)
    const client = new MemoryClient(server)
    // A call every half second for longer than the idle timeout: never idle that long.
    for (let id = 1; id <= 24; id++) {
      vi.advanceTimersByTime(500)
      client.call(id, '/echo', 'x')
      expect((await client.next(id))?.value.toString()).toBe('x')
      expect(server.connections).toBe(1)
    }
    vi.advanceTimersByTime(idleTimeout - 1)
    await new Promise((resolve) => setImmediate(resolve))
    expect(server.connections).toBe(1)
    vi.advanceTimersByTime(idleTimeout / SWEEPS_PER_TIMEOUT + 1)
    await client.closed()
    expect(server.connections).toBe(0)
    vi.useRealTimers()
    await server.destroy()
  })
})

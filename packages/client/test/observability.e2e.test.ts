import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { connect as tcpConnect } from 'node:net'
import { Writable } from 'node:stream'
import { Code, type ConnectionMessage, DIAGNOSTICS_CHANNELS, RpcError } from '@srpc/server'
import pino from 'pino'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { CallInfo } from '../src/index'
import { codeOf, Harness } from './harness'

const h = new Harness()
afterEach(() => h.cleanup())

/** A real pino logger at debug level writing JSON lines into an array. */
function pinoLines(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = []
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line))
      callback()
    },
  })
  return { logger: pino({ level: 'debug' }, stream), lines }
}

function linesWith(lines: Record<string, unknown>[], msg: string): Record<string, unknown>[] {
  return lines.filter((line) => line.msg === msg)
}

describe('logs through a pino logger', () => {
  it('server: connections opened and closed with their id and peer, shed calls, handshake errors, shutdown phases', async () => {
    const { logger, lines } = pinoLines()
    const { server, address, port } = await h.server(
      (s) =>
        s.handle(
          '/hang',
          (ctx) => new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve(undefined))),
        ),
      { logger, workers: 1, maxQueue: 0 },
    )
    const pool = await h.pool(address, { size: 1 })
    const hanging = codeOf(pool.call('/hang', '', { timeout: 2000 }))
    await vi.waitFor(() => expect(linesWith(lines, 'connection opened')).toHaveLength(1), { timeout: 5000 })
    expect(await codeOf(pool.call('/hang', '', { timeout: 2000 }))).toBe(Code.RESOURCE_EXHAUSTED)
    const opened = linesWith(lines, 'connection opened')[0]
    expect(opened).toMatchObject({ level: 20, transport: 'tls' })
    expect(opened.connectionId).toEqual(expect.any(Number))
    expect(opened.peer).toMatch(/^127\.0\.0\.1:\d+$/)
    expect(linesWith(lines, 'call shed')[0]).toMatchObject({
      level: 40,
      route: '/hang',
      code: 'RESOURCE_EXHAUSTED',
      connectionId: opened.connectionId,
    })

    // Not TLS at all: the handshake fails and is logged as a warning.
    const socket = tcpConnect(port, '127.0.0.1')
    socket.on('error', () => {})
    socket.end('GET / HTTP/1.1\r\n\r\n')
    await vi.waitFor(() => expect(linesWith(lines, 'TLS handshake failed')).toHaveLength(1), {
      timeout: 5000,
    })
    expect(linesWith(lines, 'TLS handshake failed')[0]).toMatchObject({
      level: 40,
      peer: expect.stringMatching(/^127\.0\.0\.1:/),
    })
    socket.destroy()

    await pool.destroy()
    await hanging
    await server.shutdown({ timeout: 1000 })
    const closed = linesWith(lines, 'connection closed').concat(
      linesWith(lines, 'connection closed with an error'),
    )
    expect(closed.map((line) => line.connectionId)).toContain(opened.connectionId)
    expect(lines.filter((line) => typeof line.phase === 'string').map((line) => line.phase)).toEqual([
      'draining',
      'closed',
    ])
  })

  it('pool: connections opened with their id and peer, failed attempts with their code', async () => {
    const { logger, lines } = pinoLines()
    const { address } = await h.server((s) => s.handle('/echo', (ctx) => ctx.payload))
    const pool = await h.pool(address, { logger, size: 1 })
    await pool.call('/echo', 'x')
    expect(linesWith(lines, 'connection opened')[0]).toMatchObject({ level: 20, peer: address })
    await pool.close()
    await vi.waitFor(() => expect(linesWith(lines, 'connection closed')).toHaveLength(1), { timeout: 5000 })

    const failing = pinoLines()
    // A port nobody listens on (the server's, after it closed).
    const gone = await h.server(() => {})
    await gone.server.shutdown()
    const refused = await h.pool(gone.address, { logger: failing.logger, size: 1, connectTimeout: 2000 })
    expect(await codeOf(refused.call('/echo', 'x', { timeout: 2000 }))).toBe(Code.UNAVAILABLE)
    await vi.waitFor(() => expect(linesWith(failing.lines, 'connection failed').length).toBeGreaterThan(0), {
      timeout: 5000,
    })
    expect(linesWith(failing.lines, 'connection failed')[0]).toMatchObject({ level: 40, code: 'UNAVAILABLE' })
  })

  it('a logger that throws breaks nothing', async () => {
    const broken = {
      debug: () => {
        throw new Error('disk full')
      },
      info: () => {
        throw new Error('disk full')
      },
      warn: () => {
        throw new Error('disk full')
      },
      error: () => {
        throw new Error('disk full')
      },
    }
    const { address } = await h.server((s) => s.handle('/echo', (ctx) => ctx.payload), { logger: broken })
    const pool = await h.pool(address, { logger: broken })
    expect((await pool.call('/echo', 'still fine')).toString()).toBe('still fine')
  })

  it('refuses a logger without the four methods', async () => {
    await expect(h.pool('127.0.0.1:1', { logger: { info() {} } as never })).rejects.toThrow(/logger.debug/)
  })
})

describe('diagnostics channels', () => {
  type Event = { channel: string; message: Record<string, unknown> }

  /** Subscribes to every srpc channel for the length of `body`. */
  async function observe(body: (events: Event[]) => Promise<void>): Promise<Event[]> {
    const events: Event[] = []
    const listeners = Object.values(DIAGNOSTICS_CHANNELS).map((channel) => {
      const listener = (message: unknown) =>
        events.push({ channel, message: message as Record<string, unknown> })
      subscribe(channel, listener)
      return [channel, listener] as const
    })
    try {
      await body(events)
    } finally {
      for (const [channel, listener] of listeners) unsubscribe(channel, listener)
    }
    return events
  }

  it('publish call start, end and error on both ends, and connection open and close, under their srpc: names', async () => {
    const { address } = await h.server((s) => {
      s.handle('/echo', (ctx) => ctx.payload)
      s.handle('/deny', () => {
        throw new RpcError(Code.PERMISSION_DENIED, 'no')
      })
    })
    const events = await observe(async (events) => {
      const pool = await h.pool(address, { size: 1 })
      await pool.call('/echo', 'hi', { metadata: { tenant: 'a' } })
      await codeOf(pool.call('/deny'))
      await pool.close()
      await vi.waitFor(
        () => expect(events.filter((e) => e.channel === 'srpc:connection:close')).toHaveLength(2),
        {
          timeout: 5000,
        },
      )
    })
    const on = (channel: string, side: string) =>
      events.filter(
        (e) => e.channel === channel && ((e.message.call as CallInfo)?.side ?? e.message.side) === side,
      )

    for (const side of ['client', 'server']) {
      const starts = on('srpc:call:start', side)
      const ends = on('srpc:call:end', side)
      const errors = on('srpc:call:error', side)
      expect(starts.map((e) => (e.message.call as CallInfo).route)).toEqual(['/echo', '/deny'])
      expect(ends).toHaveLength(1)
      // The same call object from start to end, so a subscriber can keep per-call state in a WeakMap.
      expect(ends[0].message.call).toBe(starts[0].message.call)
      expect((ends[0].message.result as { code: string }).code).toBe('OK')
      expect((ends[0].message.call as CallInfo).metadata.tenant).toBe('a')
      expect(errors).toHaveLength(1)
      expect(errors[0].message.call).toBe(starts[1].message.call)
      expect((errors[0].message.error as RpcError).code).toBe(Code.PERMISSION_DENIED)
    }
    const opens = events
      .filter((e) => e.channel === 'srpc:connection:open')
      .map((e) => e.message as unknown as ConnectionMessage)
    const closes = events
      .filter((e) => e.channel === 'srpc:connection:close')
      .map((e) => e.message as unknown as ConnectionMessage)
    expect(opens.map((m) => m.side).sort()).toEqual(['client', 'server'])
    expect(closes.map((m) => m.connectionId).sort()).toEqual(opens.map((m) => m.connectionId).sort())
    expect(opens.find((m) => m.side === 'server')?.peer.address).toBe('127.0.0.1')
  })

  it('publish nothing and keep the direct path while nobody subscribes', async () => {
    const { address } = await h.server((s) => s.handle('/echo', (ctx) => ctx.payload))
    const pool = await h.pool(address, { size: 1 })
    const events: unknown[] = []
    const listener = (message: unknown) => events.push(message)
    subscribe('srpc:call:start', listener)
    unsubscribe('srpc:call:start', listener)
    await pool.call('/echo', 'x')
    expect(events).toEqual([])
  })
})

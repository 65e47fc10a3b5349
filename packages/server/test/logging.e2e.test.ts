import { Writable } from 'node:stream'
import { memoryTransportPair } from '@srpc/core'
import { encodeFrame, Flags } from '@srpc/protocol'
import pino from 'pino'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { Server } from '../src/index'
import { MemoryClient } from './memory-client'

const servers: Server[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.destroy()))
})

/** A server logging to a real pino logger (debug level) whose JSON lines land in `lines`. */
function loggedServer(): { server: Server; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = []
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line))
      callback()
    },
  })
  const server = new Server({ logger: pino({ level: 'debug' }, stream) })
  servers.push(server)
  return { server, lines }
}

describe('server logs', () => {
  it('warns with PROTOCOL_ERROR and the connection id when a client breaks the protocol', async () => {
    const { server, lines } = loggedServer()
    const [client, serverEnd] = memoryTransportPair()
    let closed!: () => void
    const gone = new Promise<void>((resolve) => {
      closed = resolve
    })
    client.start({ onData: () => {}, onDrain: () => {}, onEnd: () => {}, onClose: () => closed() })
    server.accept(serverEnd)
    // A RESPONSE frame is something only a server may send.
    client.write(encodeFrame(Flags.RESPONSE, 1, '', Buffer.from('x')))
    await gone
    await vi.waitFor(
      () => expect(lines.some((l) => l.msg === 'connection closed: protocol error')).toBe(true),
      {
        timeout: 5000,
      },
    )
    const opened = lines.find((l) => l.msg === 'connection opened')!
    const broken = lines.find((l) => l.msg === 'connection closed: protocol error')!
    expect(broken).toMatchObject({ level: 40, code: 'PROTOCOL_ERROR', connectionId: opened.connectionId })
    expect(opened).toMatchObject({ level: 20, transport: 'memory' })
  })

  it('logs a handler that threw a non-RpcError at error level, with its route', async () => {
    const { server, lines } = loggedServer()
    server.on('error', () => {})
    server.handle('/bug', () => {
      throw new TypeError('undefined is not a function')
    })
    const client = new MemoryClient(server)
    client.call(1, '/bug')
    expect((await client.error(1)).code).toBe('INTERNAL')
    const line = lines.find((l) => l.msg === 'handler failed')!
    expect(line).toMatchObject({ level: 50, route: '/bug' })
    expect((line.err as { type: string; message: string }).type).toBe('TypeError')
    client.close()
  })
})

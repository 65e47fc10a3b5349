import { Flags } from '@srpc/protocol'
import { describe, expect, it, vi } from 'vitest'
import type { Frame } from './buffer'
import { FrameConnection } from './frame-connection'
import { memoryTransportPair } from './memory-transport'
import type { Transport, TransportHandlers } from './transport'

/** Starts a transport with handlers that record everything, in order. */
function record(transport: Transport) {
  const log: string[] = []
  const data: Buffer[] = []
  let drains = 0
  let closeError: Error | undefined | null = null
  const handlers: TransportHandlers = {
    onData: (chunk) => {
      data.push(Buffer.from(chunk))
      log.push(`data:${Buffer.from(chunk).toString()}`)
    },
    onDrain: () => {
      drains++
      log.push('drain')
    },
    onEnd: () => log.push('end'),
    onClose: (err) => {
      closeError = err
      log.push(err ? `close:${(err as NodeJS.ErrnoException).code}` : 'close')
    },
  }
  transport.start(handlers)
  return {
    log,
    data,
    get drains() {
      return drains
    },
    get closeError() {
      return closeError
    },
  }
}

const turn = () => new Promise((resolve) => setImmediate(resolve))

describe('memoryTransportPair', () => {
  it('delivers writes in order, in a later turn, never inside write()', async () => {
    const [a, b] = memoryTransportPair()
    const seen = record(b)
    a.write(Buffer.from('one'))
    a.write(Buffer.from('two'))
    await Promise.resolve()
    expect(seen.log).toEqual([])
    await vi.waitFor(() => expect(seen.log).toEqual(['data:one', 'data:two']))
  })

  it('answers written from inside onData arrive in a later turn, not in the same stack', async () => {
    const [a, b] = memoryTransportPair()
    let inHandler = 0
    const order: string[] = []
    b.start({
      onData: (chunk) => {
        inHandler++
        b.write(chunk)
        order.push(`b:${Buffer.from(chunk)}`)
        inHandler--
      },
      onDrain() {},
      onEnd() {},
      onClose() {},
    })
    a.start({
      onData: (chunk) => {
        expect(inHandler).toBe(0)
        order.push(`a:${Buffer.from(chunk)}`)
      },
      onDrain() {},
      onEnd() {},
      onClose() {},
    })
    a.write(Buffer.from('1'))
    a.write(Buffer.from('2'))
    await vi.waitFor(() => expect(order).toEqual(['b:1', 'b:2', 'a:1', 'a:2']))
  })

  it('copies each write, so the writer may reuse its buffer after the write callback', async () => {
    const [a, b] = memoryTransportPair()
    const seen = record(b)
    const buf = Buffer.from('abc')
    const written = vi.fn()
    a.write(buf, written)
    buf.write('zzz')
    await vi.waitFor(() => expect(seen.data).toHaveLength(1))
    expect(seen.data[0].toString()).toBe('abc')
    expect(written).toHaveBeenCalledWith()
  })

  it('returns false past the high-water mark and signals drain once the reader caught up', async () => {
    const [a, b] = memoryTransportPair({ highWaterMark: 10 })
    const writer = record(a)
    b.pause()
    const reader = record(b)
    expect(a.write(Buffer.alloc(6))).toBe(true)
    expect(a.write(Buffer.alloc(4))).toBe(false)
    expect(a.write(Buffer.alloc(1))).toBe(false)
    await turn()
    await turn()
    // A paused reader holds the bytes: still backed up, no drain.
    expect(reader.data).toHaveLength(0)
    expect(writer.drains).toBe(0)
    b.resume()
    await vi.waitFor(() => expect(writer.drains).toBe(1))
    expect(reader.data.map((c) => c.length)).toEqual([6, 4, 1])
    expect(a.write(Buffer.alloc(1))).toBe(true)
  })

  it('close() ends the other side after the data; both ends then close without error', async () => {
    const [a, b] = memoryTransportPair()
    const left = record(a)
    const right = record(b)
    a.write(Buffer.from('last'))
    a.close()
    expect(a.state).toBe('ending')
    expect(a.write(Buffer.from('dropped'))).toBe(false)
    await vi.waitFor(() => expect(left.log).toEqual(['end', 'close']))
    expect(right.log).toEqual(['data:last', 'end', 'close'])
    expect(a.state).toBe('closed')
    expect(b.state).toBe('closed')
  })

  it('destroy() drops undelivered bytes; the other end sees an orderly end', async () => {
    const [a, b] = memoryTransportPair()
    const left = record(a)
    const right = record(b)
    const written = vi.fn()
    a.write(Buffer.from('lost'), written)
    a.destroy()
    expect(a.state).toBe('closed')
    await vi.waitFor(() => expect(right.log).toEqual(['end', 'close']))
    expect(left.log).toEqual(['close'])
    await vi.waitFor(() => expect(written).toHaveBeenCalledWith(expect.any(Error)))
  })

  it('destroy(err) reaches the other end as ECONNRESET', async () => {
    const [a, b] = memoryTransportPair()
    const left = record(a)
    const right = record(b)
    const failure = new Error('boom')
    a.destroy(failure)
    a.destroy(new Error('second'))
    await vi.waitFor(() => expect(right.log).toEqual(['close:ECONNRESET']))
    expect(left.closeError).toBe(failure)
    expect((right.closeError as Error).cause).toBe(failure)
  })

  it('reports its peer as memory, with what the options say', () => {
    const [a, b] = memoryTransportPair({ clientPeer: { address: 'test', authorized: true } })
    expect(a.peer).toEqual({ transport: 'memory' })
    expect(b.peer).toEqual({ transport: 'memory', address: 'test', authorized: true })
    expect(() => memoryTransportPair({ highWaterMark: 0 })).toThrow(/highWaterMark/)
  })

  it('carries a FrameConnection both ways, with backpressure', async () => {
    const [a, b] = memoryTransportPair({ highWaterMark: 1024 })
    const received: Frame[] = []
    const closed: string[] = []
    const sender = new FrameConnection(a, { onFrame: () => {}, onClose: () => closed.push('a') })
    new FrameConnection(b, { onFrame: (f) => received.push(f), onClose: () => closed.push('b') })
    const value = Buffer.alloc(4000, 7)
    expect(sender.sendFrame(Flags.STREAM, 1, '/r', value)).toBe(true)
    sender.sendFrame(Flags.STREAM, 2, '', value)
    await new Promise((resolve) => process.nextTick(resolve))
    expect(sender.writable).toBe(false)
    await sender.whenWritable()
    await vi.waitFor(() => expect(received.map((f) => f.id)).toEqual([1, 2]))
    expect(received[1].value.equals(value)).toBe(true)
    sender.close()
    await sender.closed
    await vi.waitFor(() => expect(closed.sort()).toEqual(['a', 'b']))
  })
})

describe('the core README example', () => {
  it('runs: data in a later turn, then the end and an orderly close', async () => {
    const logged: unknown[] = []
    const log = (...args: unknown[]) => logged.push(args.join(' '))
    // --- the README's code, with console.log as log ---
    const [a, b] = memoryTransportPair({ highWaterMark: 16 * 1024 })
    b.start({
      onData: (chunk) => log(Buffer.from(chunk).toString()), // later turn: "hi"
      onDrain() {},
      onEnd: () => log('end'),
      onClose: (err) => log('closed', err), // closed undefined
    })
    a.start({ onData() {}, onDrain() {}, onEnd() {}, onClose() {} })
    const accepted = a.write(Buffer.from('hi')) // true: below the high-water mark
    a.close()
    // --- end ---
    expect(accepted).toBe(true)
    expect(logged).toEqual([])
    await vi.waitFor(() => expect(logged).toEqual(['hi', 'end', 'closed ']))
  })
})

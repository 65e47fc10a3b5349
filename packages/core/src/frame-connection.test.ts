import { once } from 'node:events'
import { createServer, type Server, type Socket } from 'node:net'
import { Code, encodeFrame, Flags, FrameDecoder, type RpcError } from '@srpc/protocol'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { allocBuffer, type Frame } from './buffer'
import { FrameConnection } from './frame-connection'
import { tlsTransport } from './tls-transport'

const servers: Server[] = []
const sockets: Socket[] = []
afterEach(async () => {
  vi.restoreAllMocks()
  for (const socket of sockets.splice(0)) socket.destroy()
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))))
})

/** A connected pair of plain TCP sockets on loopback (the framing does not care about TLS). */
async function socketPair(): Promise<[Socket, Socket]> {
  const server = createServer()
  servers.push(server)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  const accepted = once(server, 'connection')
  const { connect } = await import('node:net')
  const client = connect(port, '127.0.0.1')
  await once(client, 'connect')
  const [peer] = (await accepted) as [Socket]
  sockets.push(client, peer)
  return [client, peer]
}

/** A value whose every byte depends on its frame number, so a reused buffer shows. */
function valueFor(n: number, size: number): Buffer {
  const value = Buffer.allocUnsafe(size)
  for (let i = 0; i < size; i++) value[i] = (n * 31 + i * 7) & 0xff
  return value
}

const SIZES = [0, 1, 100, 1023, 1024, 4096, 16_000, 40_000, 65_000, 65_536, 70_000, 200_000]

/** Reads `a` with a FrameConnection: the values of the frames it decodes, then how it closed. */
function reader(a: Socket): { values: string[]; closed: Promise<RpcError | undefined> } {
  const values: string[] = []
  let closed!: (error: RpcError | undefined) => void
  const done = new Promise<RpcError | undefined>((resolve) => {
    closed = resolve
  })
  new FrameConnection(tlsTransport(a), {
    onFrame: (frame) => values.push(frame.value.toString()),
    onClose: (error) => closed(error),
  })
  return { values, closed: done }
}

describe('FrameConnection reads', () => {
  const whole = Buffer.concat([
    encodeFrame(Flags.STREAM, 1, '', Buffer.from('one')),
    encodeFrame(Flags.STREAM, 1, '', Buffer.from('two')),
  ])
  const cut = encodeFrame(Flags.STREAM, 1, '', Buffer.alloc(100, 0x61)).subarray(0, 60)

  it('an EOF between frames is an orderly close', async () => {
    const [a, b] = await socketPair()
    const r = reader(a)
    b.end(whole)
    expect(await r.closed).toBeUndefined()
    expect(r.values).toEqual(['one', 'two'])
  })

  it('an EOF inside a frame loses the link: UNAVAILABLE after the whole frames, the truncation as cause', async () => {
    const [a, b] = await socketPair()
    const r = reader(a)
    b.end(Buffer.concat([whole, cut]))
    const error = await r.closed
    expect(r.values).toEqual(['one', 'two'])
    expect(error?.code).toBe(Code.UNAVAILABLE)
    expect(error?.message).toBe(
      'connection failed: stream ended inside a frame (header read, 44 of 100 body bytes)',
    )
    expect((error?.cause as RpcError | undefined)?.code).toBe(Code.PROTOCOL_ERROR)
  })

  it('a TCP reset behind data inside a frame: the whole frames, then UNAVAILABLE', async () => {
    const [a, b] = await socketPair()
    const r = reader(a)
    // The reset follows the data at once: both are in the receiving socket before it reads.
    b.write(Buffer.concat([whole, cut]))
    b.resetAndDestroy()
    const error = await r.closed
    expect(r.values).toEqual(['one', 'two'])
    expect(error?.code).toBe(Code.UNAVAILABLE)
  })
})

describe('FrameConnection writes', () => {
  it('delivers every frame intact while slabs are reused under backpressure', async () => {
    const [a, b] = await socketPair()
    const sender = new FrameConnection(tlsTransport(a), { onFrame: () => {}, onClose: () => {} })
    // The receiver reads slowly at first, so writes stay queued in the socket while more are encoded.
    const decoder = new FrameDecoder<Buffer>({ alloc: allocBuffer })
    const received: Frame[] = []
    b.pause()
    b.on('data', (chunk: Buffer) => decoder.push(chunk, (frame) => received.push(frame)))
    const total = 3000
    let sent = 0
    let stalls = 0
    while (sent < total) {
      // Frames of every size class in one turn, then let the turn end (the batch is written).
      for (let k = 0; k < 7 && sent < total; k++, sent++) {
        sender.sendFrame(
          Flags.STREAM,
          sent + 1,
          k === 0 ? '/route' : '',
          valueFor(sent, SIZES[sent % SIZES.length]),
        )
      }
      if (sender.writable) {
        await new Promise((resolve) => setImmediate(resolve))
      } else {
        // Backed up: the receiver takes a break before reading on, then pauses again later.
        stalls++
        setTimeout(() => b.resume(), 5)
        await sender.whenWritable()
        if (stalls % 2 === 1) b.pause()
      }
    }
    b.resume()
    expect(stalls).toBeGreaterThan(0)
    await vi.waitFor(() => expect(received.length).toBe(total), { timeout: 10_000 })
    for (let n = 0; n < total; n++) {
      const frame = received[n]
      expect(frame.id).toBe(n + 1)
      expect(frame.value.equals(valueFor(n, SIZES[n % SIZES.length]))).toBe(true)
    }
    sender.destroy()
  })

  it('allocates no new slab per turn while busy: two take turns', async () => {
    const [a, b] = await socketPair()
    const sender = new FrameConnection(tlsTransport(a), { onFrame: () => {}, onClose: () => {} })
    let frames = 0
    b.on('data', (chunk: Buffer) => {
      frames += chunk.length
    })
    const allocations = vi.spyOn(Buffer, 'allocUnsafe')
    const value = valueFor(1, 8000)
    // 400 turns of 56 KB each, about 22 MB, waiting for every write to finish.
    for (let turn = 0; turn < 400; turn++) {
      for (let k = 0; k < 7; k++) sender.sendFrame(Flags.RESPONSE, turn * 7 + k + 1, '', value)
      await new Promise((resolve) => setImmediate(resolve))
      if (!sender.writable) await sender.whenWritable()
    }
    const slabs = allocations.mock.calls.filter(([size]) => size >= 64 * 1024).length
    allocations.mockRestore()
    expect(slabs).toBeLessThanOrEqual(4)
    await vi.waitFor(() => expect(frames).toBe(400 * 7 * (16 + 8000)), { timeout: 10_000 })
    sender.destroy()
  })

  it('allocates no slab per turn at one small frame a turn, and the frames arrive intact', async () => {
    const [a, b] = await socketPair()
    const sender = new FrameConnection(tlsTransport(a), { onFrame: () => {}, onClose: () => {} })
    const decoder = new FrameDecoder<Buffer>({ alloc: allocBuffer })
    const received: Frame[] = []
    b.on('data', (chunk: Buffer) => decoder.push(chunk, (frame) => received.push(frame)))
    const fast = vi.spyOn(Buffer, 'allocUnsafe')
    const slow = vi.spyOn(Buffer, 'allocUnsafeSlow')
    // One call in flight: a 64-byte frame a turn, the next only after the previous was written.
    const turns = 300
    for (let turn = 0; turn < turns; turn++) {
      sender.sendFrame(Flags.REQUEST, turn + 1, '/echo', valueFor(turn, 64))
      await new Promise((resolve) => setImmediate(resolve))
    }
    const small = (spy: typeof fast) => spy.mock.calls.filter(([size]) => size === 1024).length
    const slabs = small(fast) + small(slow)
    fast.mockRestore()
    slow.mockRestore()
    expect(slabs).toBeLessThanOrEqual(2)
    await vi.waitFor(() => expect(received.length).toBe(turns), { timeout: 10_000 })
    for (let n = 0; n < turns; n++) {
      expect(received[n].id).toBe(n + 1)
      expect(received[n].type).toBe('/echo')
      expect(received[n].value.equals(valueFor(n, 64))).toBe(true)
    }
    sender.destroy()
  })

  it('writes the 16 KiB values of a turn larger than a slab after their headers, allocating no slab per few frames', async () => {
    const [a, b] = await socketPair()
    const sender = new FrameConnection(tlsTransport(a), { onFrame: () => {}, onClose: () => {} })
    const decoder = new FrameDecoder<Buffer>({ alloc: allocBuffer })
    const received: Frame[] = []
    b.on('data', (chunk: Buffer) => decoder.push(chunk, (frame) => received.push(frame)))
    const allocations = vi.spyOn(Buffer, 'allocUnsafe')
    // 200 turns of 16 values of 16 KiB (256 KiB a turn, four slabs' worth), each a different value.
    const turns = 200
    for (let turn = 0; turn < turns; turn++) {
      for (let k = 0; k < 16; k++) {
        const n = turn * 16 + k
        sender.sendFrame(Flags.RESPONSE, n + 1, '', valueFor(n, 16 * 1024))
      }
      await new Promise((resolve) => setImmediate(resolve))
      if (!sender.writable) await sender.whenWritable()
    }
    const slabs = allocations.mock.calls.filter(([size]) => size >= 64 * 1024).length
    allocations.mockRestore()
    expect(slabs).toBeLessThanOrEqual(4)
    await vi.waitFor(() => expect(received.length).toBe(turns * 16), { timeout: 10_000 })
    for (let n = 0; n < turns * 16; n++) {
      expect(received[n].id).toBe(n + 1)
      expect(received[n].value.equals(valueFor(n, 16 * 1024))).toBe(true)
    }
    sender.destroy()
  })
})

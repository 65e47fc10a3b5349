import { inflateRawSync } from 'node:zlib'
import { Code, Flags, MESSAGE_OVERHEAD, RpcError } from '@srpc/protocol'
import { describe, expect, it } from 'vitest'
import { Compressor, resolveCompressionOptions } from './compression'
import { Extensions } from './extensions'
import { StreamSender } from './stream-sender'

const flush = () => new Promise<void>((resolve) => setImmediate(resolve))

/** Extensions with flow control (send window `window`) and, optionally, deflate compression. */
function extensions(window: number, compress = false): Extensions {
  const options = resolveCompressionOptions(undefined)
  const features = new Set(compress ? ['flow', 'compression'] : ['flow'])
  return new Extensions(
    features,
    compress ? new Compressor('deflate', options) : undefined,
    compress ? 'deflate' : undefined,
    window,
    window,
    window,
    undefined,
  )
}

/**
 * A sender whose writes land in `written`, over a fake socket: `socket.backUpAfterWrite` makes
 * the next write report backpressure, and `drain()` empties the socket again.
 */
function harness(ext: Extensions, maxBuffered?: number) {
  const written: Array<{ flags: number; payload: Buffer }> = []
  const socket = { backedUp: false, backUpAfterWrite: false, closed: false, whenWritableCalls: 0 }
  const drains: Array<{ resolve: () => void; reject: (err: RpcError) => void }> = []
  const sender = new StreamSender(
    ext,
    {
      write(flags, payload) {
        written.push({ flags, payload })
        if (socket.backUpAfterWrite) socket.backedUp = true
        return !socket.backedUp
      },
      writable: () => !socket.backedUp && !socket.closed,
      whenWritable() {
        socket.whenWritableCalls++
        if (socket.closed) return Promise.reject(new RpcError(Code.UNAVAILABLE, 'connection closed'))
        if (!socket.backedUp) return Promise.resolve()
        return new Promise<void>((resolve, reject) => drains.push({ resolve, reject }))
      },
    },
    maxBuffered,
  )
  const drain = () => {
    socket.backedUp = false
    socket.backUpAfterWrite = false
    for (const waiter of drains.splice(0)) waiter.resolve()
  }
  const close = () => {
    socket.closed = true
    for (const waiter of drains.splice(0)) waiter.reject(new RpcError(Code.UNAVAILABLE, 'connection closed'))
  }
  return { sender, written, socket, drain, close }
}

/** What a send's promise came to: 'resolved' or the error code. */
async function outcome(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'resolved',
    (err: unknown) => (RpcError.is(err) ? err.code : `not an RpcError: ${err}`),
  )
}

const texts = (written: Array<{ payload: Buffer }>) => written.map((w) => w.payload.toString())
/** A message whose credit cost is exactly `cost`. */
const costing = (cost: number, fill = 'm') => Buffer.from(fill.repeat(cost - MESSAGE_OVERHEAD))

describe('StreamSender without flow control', () => {
  it('writes each message at once and resolves while the socket takes more', async () => {
    const { sender, written } = harness(Extensions.NONE)
    await sender.send(Flags.STREAM, Buffer.from('a'))
    await sender.send(Flags.STREAM | Flags.STREAM_END, Buffer.from('b'))
    expect(written).toEqual([
      { flags: Flags.STREAM, payload: Buffer.from('a') },
      { flags: Flags.STREAM | Flags.STREAM_END, payload: Buffer.from('b') },
    ])
    expect(sender.waiting).toBe(0)
  })

  it('waits for the socket to drain when the write reports backpressure', async () => {
    const { sender, written, socket, drain } = harness(Extensions.NONE)
    socket.backUpAfterWrite = true
    let resolved = false
    const sent = sender.send(Flags.STREAM, Buffer.from('x')).then(() => {
      resolved = true
    })
    expect(written).toHaveLength(1) // queued on the socket already
    await flush()
    expect(resolved).toBe(false)
    drain()
    await sent
    expect(socket.whenWritableCalls).toBe(1)
  })
})

describe('StreamSender with flow control', () => {
  it('sends while credit is positive, then holds messages until credit is granted', async () => {
    const { sender, written } = harness(extensions(300))
    const sends = ['a', 'b', 'c', 'd'].map((fill) => sender.send(Flags.STREAM, costing(200, fill)))
    // 300 → 100 → -100: two went, two wait.
    expect(texts(written)).toEqual([costing(200, 'a').toString(), costing(200, 'b').toString()])
    expect(sender.waiting).toBe(2)
    sender.grant(100) // credit 0: nothing moves
    await flush()
    expect(written).toHaveLength(2)
    sender.grant(1) // credit 1: c goes (-199)
    await flush()
    expect(written).toHaveLength(3)
    sender.grant(400) // d goes
    await Promise.all(sends)
    expect(written.map((w) => w.payload[0])).toEqual([...'abcd'].map((c) => c.charCodeAt(0)))
  })

  it('keeps order when a send arrives while others wait, even after credit came back', async () => {
    const { sender, written } = harness(extensions(100))
    const first = sender.send(Flags.STREAM, costing(150, 'a')) // goes, credit -50
    const second = sender.send(Flags.STREAM, costing(80, 'b')) // waits
    const third = sender.send(Flags.STREAM, costing(80, 'c')) // waits behind b
    sender.grant(60) // credit 10: b goes (-70), c still waits
    const fourth = sender.send(Flags.STREAM | Flags.STREAM_END, Buffer.alloc(0)) // must queue behind c
    await flush()
    expect(written.map((w) => w.payload[0])).toEqual([0x61, 0x62])
    sender.grant(1000)
    await Promise.all([first, second, third, fourth])
    expect(written.map((w) => w.flags)).toEqual([
      Flags.STREAM,
      Flags.STREAM,
      Flags.STREAM,
      Flags.STREAM | Flags.STREAM_END,
    ])
    expect(written.map((w) => w.payload[0])).toEqual([0x61, 0x62, 0x63, undefined])
  })

  it('charges credit for the message as given, before compression', async () => {
    const { sender, written } = harness(extensions(5000, true))
    const big = Buffer.alloc(4000, 'a') // compresses to a few bytes, still costs 4064
    await sender.send(Flags.STREAM, big)
    expect(written[0].payload.length).toBeLessThan(100)
    await sender.send(Flags.STREAM, big) // credit 936 > 0: goes, -3128
    const waits = sender.send(Flags.STREAM, Buffer.from('x'))
    await flush()
    expect(written).toHaveLength(2)
    expect(sender.waiting).toBe(1)
    sender.grant(3129)
    await waits
    expect(written).toHaveLength(3)
  })

  it('fails waiting sends and every later send with the stream error', async () => {
    const { sender, written } = harness(extensions(10))
    await sender.send(Flags.STREAM, Buffer.from('first'))
    const waiting = sender.send(Flags.STREAM, Buffer.from('second'))
    const error = new RpcError(Code.CANCELLED, 'client went away')
    sender.fail(error)
    await expect(waiting).rejects.toBe(error)
    sender.grant(1_000_000)
    await expect(sender.send(Flags.STREAM, Buffer.from('third'))).rejects.toBe(error)
    expect(texts(written)).toEqual(['first'])
  })

  it('settled() resolves once the sends that waited for credit have left or failed', async () => {
    const { sender } = harness(extensions(10))
    await sender.settled()
    await sender.send(Flags.STREAM, Buffer.from('go'))
    void sender.send(Flags.STREAM, Buffer.from('wait')).catch(() => {})
    let settled = false
    const done = sender.settled().then(() => {
      settled = true
    })
    await flush()
    expect(settled).toBe(false)
    sender.fail(new RpcError(Code.CANCELLED, 'over'))
    await done
    expect(settled).toBe(true)
  })
})

describe('StreamSender send buffer', () => {
  const cost = (n: number) => costing(n).length + MESSAGE_OVERHEAD

  it('holds sends behind a backed-up socket in its own queue, in order, without flow control', async () => {
    const { sender, written, socket, drain } = harness(Extensions.NONE)
    socket.backUpAfterWrite = true
    const a = sender.send(Flags.STREAM, costing(100, 'a')) // handed to the socket, which is now full
    const b = sender.send(Flags.STREAM, costing(200, 'b'))
    const c = sender.send(Flags.STREAM, costing(300, 'c'))
    expect(texts(written)).toEqual([costing(100, 'a').toString()])
    expect(sender.bufferedAmount).toBe(500)
    expect(sender.waiting).toBe(2)
    drain()
    await Promise.all([a, b, c])
    expect(written.map((w) => w.payload[0])).toEqual([...'abc'].map((ch) => ch.charCodeAt(0)))
    expect(sender.bufferedAmount).toBe(0)
    expect(sender.waiting).toBe(0)
  })

  it('refuses a send past the byte bound with RESOURCE_EXHAUSTED and never sends it, without flow control', async () => {
    const { sender, written, socket, drain } = harness(Extensions.NONE, 1000)
    socket.backUpAfterWrite = true
    const first = sender.send(Flags.STREAM, costing(300, 'a'))
    const queued = [...'bcd'].map((fill) => sender.send(Flags.STREAM, costing(300, fill)))
    expect(sender.bufferedAmount).toBe(900)
    const refused = sender.send(Flags.STREAM, costing(300, 'x'))
    const error = await refused.then(
      () => undefined,
      (err: unknown) => err,
    )
    expect(RpcError.is(error, Code.RESOURCE_EXHAUSTED)).toBe(true)
    expect((error as RpcError).message).toContain('900 bytes')
    expect((error as RpcError).message).toContain('1000')
    expect(sender.bufferedAmount).toBe(900)
    // An empty message is charged its overhead: it does not slip past the bound either.
    expect(await outcome(sender.send(Flags.STREAM, costing(MESSAGE_OVERHEAD + 100)))).toBe(
      Code.RESOURCE_EXHAUSTED,
    )
    drain()
    expect(await Promise.all([first, ...queued].map(outcome))).toEqual(Array(4).fill('resolved'))
    expect(written.map((w) => String.fromCharCode(w.payload[0]))).toEqual([...'abcd'])
    // Nothing else on the stream was lost, and sends work again once the buffer drained.
    expect(await outcome(sender.send(Flags.STREAM, costing(300, 'e')))).toBe('resolved')
    expect(written.map((w) => String.fromCharCode(w.payload[0]))).toEqual([...'abcde'])
  })

  it('applies the same byte bound to sends waiting for credit', async () => {
    const { sender, written } = harness(extensions(100), 1000)
    await sender.send(Flags.STREAM, costing(200, 'a')) // credit -100
    const queued = [...'bcd'].map((fill) => sender.send(Flags.STREAM, costing(300, fill)))
    expect(sender.bufferedAmount).toBe(900)
    expect(await outcome(sender.send(Flags.STREAM, costing(101, 'x')))).toBe(Code.RESOURCE_EXHAUSTED)
    sender.grant(101) // credit 1: b goes (-299)
    await flush()
    expect(sender.bufferedAmount).toBe(600)
    sender.grant(10_000)
    await Promise.all(queued)
    expect(sender.bufferedAmount).toBe(0)
    expect(written.map((w) => String.fromCharCode(w.payload[0]))).toEqual([...'abcd'])
  })

  it('sends one message larger than the bound when nothing else is queued', async () => {
    const { sender, written, socket, drain } = harness(Extensions.NONE, 1000)
    socket.backUpAfterWrite = true
    void sender.send(Flags.STREAM, costing(100, 'a'))
    const big = sender.send(Flags.STREAM, costing(5000, 'b'))
    expect(sender.bufferedAmount).toBe(5000)
    expect(await outcome(sender.send(Flags.STREAM, Buffer.alloc(0)))).toBe(Code.RESOURCE_EXHAUSTED)
    drain()
    await big
    expect(written.map((w) => w.payload.length)).toEqual([100 - MESSAGE_OVERHEAD, 5000 - MESSAGE_OVERHEAD])
  })

  it('never refuses the end of a stream, so a full buffer cannot leave a stream open forever', async () => {
    const { sender, written, socket, drain } = harness(Extensions.NONE, 500)
    socket.backUpAfterWrite = true
    void sender.send(Flags.STREAM, costing(100, 'a'))
    void sender.send(Flags.STREAM, costing(500, 'b'))
    const end = sender.send(Flags.STREAM | Flags.STREAM_END, costing(200, 'z'))
    expect(sender.bufferedAmount).toBe(700)
    drain()
    await end
    expect(written.map((w) => w.flags)).toEqual([Flags.STREAM, Flags.STREAM, Flags.STREAM | Flags.STREAM_END])
  })

  it('keeps order when sends wait for the socket and for credit in turn', async () => {
    const { sender, written, socket, drain } = harness(extensions(250))
    socket.backUpAfterWrite = true
    const sends = [sender.send(Flags.STREAM, costing(200, 'a'))] // goes: credit 50, socket full
    sends.push(sender.send(Flags.STREAM, costing(200, 'b'))) // waits for the socket
    sends.push(sender.send(Flags.STREAM, costing(200, 'c')))
    expect(written).toHaveLength(1)
    drain() // b goes (credit -150), c waits for credit
    await flush()
    expect(written).toHaveLength(2)
    sends.push(sender.send(Flags.STREAM, costing(100, 'd'))) // behind c
    socket.backUpAfterWrite = true
    sender.grant(1000) // c goes (credit 650) and fills the socket: d waits for the drain
    await flush()
    expect(written).toHaveLength(3)
    expect(sender.bufferedAmount).toBe(100)
    drain()
    await Promise.all(sends)
    expect(written.map((w) => String.fromCharCode(w.payload[0]))).toEqual([...'abcd'])
  })

  it('fails queued sends with UNAVAILABLE when the connection closes before it drains', async () => {
    const { sender, written, socket, close } = harness(Extensions.NONE)
    socket.backUpAfterWrite = true
    const first = sender.send(Flags.STREAM, Buffer.from('a')) // handed over; waits for the drain
    const waiting = sender.send(Flags.STREAM, Buffer.from('b'))
    close()
    expect(await outcome(waiting)).toBe(Code.UNAVAILABLE)
    expect(await outcome(first)).toBe(Code.UNAVAILABLE)
    expect(sender.bufferedAmount).toBe(0)
    expect(texts(written)).toEqual(['a'])
  })

  it('holds a fire-and-forget flood to the bound plus one message, quietly failing the rest', async () => {
    const bound = 64 * 1024
    const { sender, written, socket, drain } = harness(Extensions.NONE, bound)
    socket.backUpAfterWrite = true
    const message = Buffer.alloc(1024, 7)
    let resolved = 0
    let refused = 0
    let peak = 0
    for (let i = 0; i < 50_000; i++) {
      sender.send(Flags.STREAM, message).then(
        () => resolved++,
        (err: unknown) => RpcError.is(err, Code.RESOURCE_EXHAUSTED) && refused++,
      )
      peak = Math.max(peak, sender.bufferedAmount)
    }
    expect(peak).toBeLessThanOrEqual(bound)
    expect(written).toHaveLength(1)
    drain()
    await flush()
    const queued = Math.floor(bound / cost(1024 + MESSAGE_OVERHEAD))
    expect(resolved).toBe(1 + queued)
    expect(refused).toBe(50_000 - 1 - queued)
    expect(written).toHaveLength(1 + queued)
  })
})

describe('StreamSender compression', () => {
  it('adds COMPRESSED to the flags and deflates a compressible message above the threshold', async () => {
    const { sender, written } = harness(extensions(1 << 20, true))
    const payload = Buffer.from('{"tick":1,"status":"ok"} '.repeat(200))
    await sender.send(Flags.STREAM, payload)
    expect(written[0].flags).toBe(Flags.STREAM | Flags.COMPRESSED)
    expect(inflateRawSync(written[0].payload).equals(payload)).toBe(true)
  })

  it('leaves small messages and the empty end marker uncompressed', async () => {
    const { sender, written } = harness(extensions(1 << 20, true))
    await sender.send(Flags.STREAM, Buffer.from('small'))
    await sender.send(Flags.STREAM | Flags.STREAM_END, Buffer.alloc(0))
    expect(written.map((w) => w.flags)).toEqual([Flags.STREAM, Flags.STREAM | Flags.STREAM_END])
    expect(texts(written)).toEqual(['small', ''])
  })
})

describe('StreamSender compression of large messages (zlib thread pool)', () => {
  const large = Buffer.from('{"id":12345,"name":"alpha-bravo","ok":true},'.repeat(6000)) // 264 KB

  it('deflates off the event loop: the loop turns before the frame is written, and later sends wait in order', async () => {
    const { sender, written } = harness(extensions(1 << 22, true))
    let turned = false
    setImmediate(() => {
      turned = true
    })
    const first = sender.send(Flags.STREAM, large)
    // Sync deflate would have written the frame inside send().
    expect(written).toHaveLength(0)
    const second = sender.send(Flags.STREAM, Buffer.from('small after'))
    const end = sender.send(Flags.STREAM | Flags.STREAM_END, Buffer.alloc(0))
    expect(sender.waiting).toBe(2)
    const settled = sender.settled()
    await Promise.all([first, second, end, settled])
    expect(turned).toBe(true)
    expect(written.map((w) => w.flags)).toEqual([
      Flags.STREAM | Flags.COMPRESSED,
      Flags.STREAM,
      Flags.STREAM | Flags.STREAM_END,
    ])
    expect(inflateRawSync(written[0].payload).equals(large)).toBe(true)
    expect(written[1].payload.toString()).toBe('small after')
  })

  it('settled() waits for a large message still deflating', async () => {
    const { sender, written } = harness(extensions(1 << 22, true))
    void sender.send(Flags.STREAM, large)
    await sender.settled()
    expect(written).toHaveLength(1)
  })

  it('fails a large message whose stream failed while it deflated, and sends nothing', async () => {
    const { sender, written } = harness(extensions(1 << 22, true))
    const first = sender.send(Flags.STREAM, large)
    sender.fail(new RpcError(Code.CANCELLED, 'gone'))
    await expect(first).rejects.toMatchObject({ code: Code.CANCELLED })
    expect(written).toHaveLength(0)
  })
})

import { inflateRawSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { Code } from './codes'
import { Compressor, resolveCompressionOptions } from './compression'
import { Extensions } from './extensions'
import { Flags } from './flags'
import { MESSAGE_OVERHEAD } from './flow-control'
import { RpcError } from './rpc-error'
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

/** A sender whose writes land in `written`; `writable` decides what write() reports. */
function harness(ext: Extensions) {
  const written: Array<{ flags: number; payload: Buffer }> = []
  const state = { writable: true, whenWritableCalls: 0 }
  let release: () => void = () => {}
  const sender = new StreamSender(
    ext,
    (flags, payload) => {
      written.push({ flags, payload })
      return state.writable
    },
    () => {
      state.whenWritableCalls++
      return new Promise<void>((resolve) => {
        release = resolve
      })
    },
  )
  return { sender, written, state, drain: () => release() }
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
    const { sender, written, state, drain } = harness(Extensions.NONE)
    state.writable = false
    let resolved = false
    const sent = sender.send(Flags.STREAM, Buffer.from('x')).then(() => {
      resolved = true
    })
    expect(written).toHaveLength(1) // queued on the socket already
    await flush()
    expect(resolved).toBe(false)
    drain()
    await sent
    expect(state.whenWritableCalls).toBe(1)
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

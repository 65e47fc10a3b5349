import { Code, encodeFrame, Flags, FrameDecoder, RpcError } from '@srpc/protocol'
import { describe, expect, it } from 'vitest'
import { allocBuffer, asBuffer, payloadBytes, toBuffer } from './buffer'

describe('toBuffer', () => {
  it('returns a Buffer unchanged, wraps a Uint8Array without copying, and encodes strings as UTF-8', () => {
    const buf = Buffer.from('x')
    expect(toBuffer(buf)).toBe(buf)
    const bytes = new Uint8Array([1, 2, 3, 4]).subarray(1)
    const wrapped = toBuffer(bytes)
    expect(Buffer.isBuffer(wrapped)).toBe(true)
    expect(wrapped.buffer).toBe(bytes.buffer)
    expect([...wrapped]).toEqual([2, 3, 4])
    expect(toBuffer('é').toString('hex')).toBe('c3a9')
  })
})

describe('payloadBytes', () => {
  it('gives Buffers for strings, Buffers, Uint8Arrays and undefined', () => {
    const buf = Buffer.from('x')
    expect(payloadBytes(buf, 'payload')).toBe(buf)
    const bytes = new Uint8Array([9, 8, 7]).subarray(1)
    const wrapped = payloadBytes(bytes, 'payload')
    expect(Buffer.isBuffer(wrapped)).toBe(true)
    expect(wrapped.buffer).toBe(bytes.buffer)
    expect([...wrapped]).toEqual([8, 7])
    const text = payloadBytes('é', 'payload')
    expect(Buffer.isBuffer(text) && text.toString('hex')).toBe('c3a9')
    const empty = payloadBytes(undefined, 'payload')
    expect(Buffer.isBuffer(empty) && empty.length).toBe(0)
  })

  it('throws the protocol check: INVALID_ARGUMENT naming the argument and the type', () => {
    let thrown: unknown
    try {
      payloadBytes({ a: 1 }, 'reply')
    } catch (err) {
      thrown = err
    }
    expect(RpcError.is(thrown, Code.INVALID_ARGUMENT)).toBe(true)
    expect((thrown as RpcError).message).toBe('reply must be a string or Uint8Array, got object')
  })
})

describe('asBuffer', () => {
  it('returns a Buffer itself and views any other Uint8Array without copying', () => {
    const buf = Buffer.from('abc')
    expect(asBuffer(buf)).toBe(buf)
    const bytes = Uint8Array.of(0, 1, 2, 3).subarray(1, 3)
    const view = asBuffer(bytes)
    expect(Buffer.isBuffer(view)).toBe(true)
    expect(view.buffer).toBe(bytes.buffer)
    expect(view.byteOffset).toBe(1)
    expect([...view]).toEqual([1, 2])
  })
})

describe('a frame decoder with allocBuffer (as FrameConnection makes it)', () => {
  it('hands out Buffer values for frames in one read, spanning reads, and empty', () => {
    const big = encodeFrame(Flags.RESPONSE, 1, '', new Uint8Array(5000).fill(1))
    const small = encodeFrame(Flags.RESPONSE, 2, '/r', Uint8Array.of(7))
    const empty = encodeFrame(Flags.RESPONSE, 3, '', new Uint8Array(0))
    const stream = Buffer.concat([big, small, empty])
    const reads = [stream.subarray(0, 2000), stream.subarray(2000, 4000), stream.subarray(4000)]
    const decoder = new FrameDecoder<Buffer>({ alloc: allocBuffer })
    const frames = reads.flatMap((read) => decoder.decode(read))
    expect(frames.map((f) => [f.id, f.value.length, Buffer.isBuffer(f.value)])).toEqual([
      [1, 5000, true],
      [2, 1, true],
      [3, 0, true],
    ])
    expect(frames[1].value.buffer).toBe(stream.buffer)
  })
})

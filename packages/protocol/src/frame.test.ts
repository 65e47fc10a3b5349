import { afterEach, describe, expect, it, vi } from 'vitest'
import { Code } from './codes'
import { Flags } from './flags'
import {
  checkRoute,
  describeType,
  encodeFrame,
  encodeHeader,
  HEADER_SIZE,
  MAX_TYPE_LENGTH,
  normalizeId,
  payloadBytes,
  payloadBytesWith,
  readId,
  toBytes,
  typeByteLength,
  writeHeader,
  writeId,
} from './frame'
import { RpcError } from './rpc-error'

/** Hex laid out field by field: whitespace and `# comments` are ignored. A plain Uint8Array, as the encoders return. */
const hex = (text: string) =>
  new Uint8Array(Buffer.from(text.replace(/#.*$/gm, '').replace(/\s+/g, ''), 'hex'))

/** The encoders return plain Uint8Arrays; a Buffer over the same bytes reads them here. */
const asBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

function expectInvalidArgument(fn: () => unknown): void {
  let thrown: unknown
  try {
    fn()
  } catch (err) {
    thrown = err
  }
  expect(thrown).toBeInstanceOf(RpcError)
  expect((thrown as RpcError).code).toBe(Code.INVALID_ARGUMENT)
}

afterEach(() => {
  vi.restoreAllMocks()
})

describe('encodeFrame writes the documented bytes', () => {
  it('a REQUEST with id 1, type "/health" and value "hi"', () => {
    expect(encodeFrame(Flags.REQUEST, 1, '/health', Buffer.from('hi'))).toEqual(
      hex(`
        01                       # version 1
        01                       # flags REQUEST
        00 00 00 00 00 00 00 01  # id 1
        00 07                    # type length 7
        00 00 00 02              # value length 2
        2f 68 65 61 6c 74 68     # "/health"
        68 69                    # "hi"
      `),
    )
  })

  it('a RESPONSE with the all-ones bigint id and an empty type', () => {
    const bytes = asBuffer(encodeFrame(Flags.RESPONSE, 0xffff_ffff_ffff_ffffn, '', Buffer.from('ok')))
    expect(bytes.toString('hex')).toBe(['01', '02', 'ffffffffffffffff', '0000', '00000002', '6f6b'].join(''))
  })

  it('a STREAM|STREAM_END end marker with an empty value is a bare 16-byte header', () => {
    const bytes = asBuffer(encodeFrame(Flags.STREAM | Flags.STREAM_END, 7, '', Buffer.alloc(0)))
    expect(bytes.toString('hex')).toBe(['01', '0c', '0000000000000007', '0000', '00000000'].join(''))
    expect(bytes.length).toBe(HEADER_SIZE)
  })

  it('an ERROR frame carries the JSON error value after an empty type', () => {
    const value = Buffer.from('{"code":"NOT_FOUND","message":"x"}')
    const bytes = asBuffer(encodeFrame(Flags.ERROR, 2, '', value))
    expect(bytes.toString('hex')).toBe(
      [
        '01',
        '10',
        '0000000000000002',
        '0000',
        '00000022',
        // { " c o d e " : " N O T _ F O U N D " , " m e s s a g e " : " x " }
        '7b22636f6465223a224e4f545f464f554e44222c226d657373616765223a2278227d',
      ].join(''),
    )
  })

  it('a multi-byte UTF-8 type is counted in bytes, not UTF-16 units', () => {
    const bytes = asBuffer(encodeFrame(Flags.REQUEST, 3, '/é', Buffer.alloc(0)))
    expect(bytes.subarray(10).toString('hex')).toBe('0003' + '00000000' + '2fc3a9')
    expect(typeByteLength('/é')).toBe(3)
    expect(typeByteLength('')).toBe(0)
  })
})

describe('frame ids', () => {
  const cases: Array<[string, number | bigint, string, number | bigint]> = [
    ['zero', 0, '0000000000000000', 0],
    ['2^32 split across the two words', 0x1_0000_0000, '0000000100000000', 0x1_0000_0000],
    [
      'the largest safe integer as a number',
      Number.MAX_SAFE_INTEGER,
      '001fffffffffffff',
      Number.MAX_SAFE_INTEGER,
    ],
    ['2^53 as a bigint', 2n ** 53n, '0020000000000000', 2n ** 53n],
    ['the top bit set', 2n ** 63n, '8000000000000000', 2n ** 63n],
    ['all 64 bits set', 2n ** 64n - 1n, 'ffffffffffffffff', 2n ** 64n - 1n],
    ['a small bigint, read back as a number', 5n, '0000000000000005', 5],
  ]
  for (const [name, id, wire, back] of cases) {
    it(`round-trip exactly: ${name}`, () => {
      const buf = Buffer.alloc(8)
      writeId(buf, id, 0)
      expect(buf.toString('hex')).toBe(wire)
      expect(readId(buf, 0)).toBe(back)
    })
  }

  it('read as numbers below 2^53 and bigints from 2^53 up', () => {
    expect(typeof readId(hex('001fffffffffffff'), 0)).toBe('number')
    expect(typeof readId(hex('0020000000000000'), 0)).toBe('bigint')
  })

  it('are read at an offset from any Uint8Array', () => {
    const bytes = new Uint8Array([9, 9, 0, 0, 0, 0, 0, 0, 1, 2])
    expect(readId(bytes, 2)).toBe(0x102)
  })

  it('outside the unsigned 64-bit range, or unsafe as numbers, are rejected with INVALID_ARGUMENT', () => {
    const buf = Buffer.alloc(8)
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, -1n, 2n ** 64n]) {
      expectInvalidArgument(() => writeId(buf, bad, 0))
      expectInvalidArgument(() => encodeFrame(Flags.REQUEST, bad, '', Buffer.alloc(0)))
    }
  })

  it('normalizeId maps a bigint below 2^53 to the number with the same value', () => {
    expect(normalizeId(42n)).toBe(42)
    expect(normalizeId(2n ** 53n - 1n)).toBe(Number.MAX_SAFE_INTEGER)
    expect(normalizeId(2n ** 53n)).toBe(2n ** 53n)
    expect(normalizeId(7)).toBe(7)
  })
})

describe('encoder input checks', () => {
  it('flags outside one byte are rejected instead of being truncated', () => {
    for (const bad of [256, -1, 1.5, Number.NaN]) {
      expectInvalidArgument(() => encodeFrame(bad, 1, '', Buffer.alloc(0)))
    }
    expect(encodeFrame(0xff, 1, '', Buffer.alloc(0))[1]).toBe(0xff)
    expect(encodeFrame(0, 1, '', Buffer.alloc(0))[1]).toBe(0)
  })

  it('a type longer than the u16 type-length field is rejected', () => {
    expectInvalidArgument(() =>
      encodeFrame(Flags.REQUEST, 1, 'x'.repeat(MAX_TYPE_LENGTH + 1), Buffer.alloc(0)),
    )
    const max = asBuffer(encodeFrame(Flags.REQUEST, 1, 'x'.repeat(MAX_TYPE_LENGTH), Buffer.alloc(0)))
    expect(max.readUInt16BE(10)).toBe(MAX_TYPE_LENGTH)
  })
})

describe('encoding without extra copies', () => {
  it('encodeFrame makes one allocation, through the allocator given, and no intermediate buffers', () => {
    const value = Buffer.alloc(4096, 0xab)
    const allocUnsafe = vi.fn((size: number) => Buffer.allocUnsafe(size))
    const from = vi.spyOn(Buffer, 'from')
    const concat = vi.spyOn(Buffer, 'concat')
    const alloc = vi.spyOn(Buffer, 'alloc')
    const frame = encodeFrame(Flags.REQUEST, 1, '/route', value, allocUnsafe)
    expect(allocUnsafe).toHaveBeenCalledTimes(1)
    expect(allocUnsafe).toHaveBeenCalledWith(HEADER_SIZE + 6 + 4096)
    expect(from).not.toHaveBeenCalled()
    expect(concat).not.toHaveBeenCalled()
    expect(alloc).not.toHaveBeenCalled()
    expect(frame.subarray(HEADER_SIZE + 6).equals(value)).toBe(true)
  })

  it('encodeFrame and encodeHeader return a plain Uint8Array by default, and what the allocator makes otherwise', () => {
    const frame = encodeFrame(Flags.REQUEST, 1, '/r', Uint8Array.of(1))
    const header = encodeHeader(Flags.REQUEST, 1, '/r', 1)
    for (const bytes of [frame, header]) {
      expect(Object.getPrototypeOf(bytes)).toBe(Uint8Array.prototype)
    }
    expect(Buffer.isBuffer(encodeFrame(Flags.REQUEST, 1, '/r', Uint8Array.of(1), Buffer.allocUnsafe))).toBe(
      true,
    )
    expect(Buffer.isBuffer(encodeHeader(Flags.REQUEST, 1, '/r', 1, Buffer.allocUnsafe))).toBe(true)
    expect(frame).toEqual(hex('01 01 0000000000000001 0002 00000001 2f72 01'))
  })

  it('writeHeader fills a caller buffer at an offset so the caller can place the value after it', () => {
    const value = Buffer.from('payload')
    const target = Buffer.alloc(3 + HEADER_SIZE + 4 + value.length, 0xee)
    const written = writeHeader(target, 3, Flags.STREAM, 9, '/abc', 4, value.length)
    expect(written).toBe(HEADER_SIZE + 4)
    value.copy(target, 3 + written)
    expect(target.subarray(0, 3).toString('hex')).toBe('eeeeee')
    expect(target.subarray(3).equals(encodeFrame(Flags.STREAM, 9, '/abc', value))).toBe(true)
  })

  it('encodeHeader followed by the untouched value equals encodeFrame', () => {
    const value = Buffer.alloc(100, 7)
    const header = encodeHeader(Flags.RESPONSE, 2n ** 63n, '', value.length)
    expect(header.length).toBe(HEADER_SIZE)
    expect(Buffer.concat([header, value]).equals(encodeFrame(Flags.RESPONSE, 2n ** 63n, '', value))).toBe(
      true,
    )
  })

  it('accepts a plain Uint8Array value, including a view with a byte offset', () => {
    const backing = new Uint8Array([0, 1, 2, 3, 4, 5])
    const frame = asBuffer(encodeFrame(Flags.REQUEST, 1, '', backing.subarray(2, 5)))
    expect(frame.subarray(HEADER_SIZE).toString('hex')).toBe('020304')
    expect(frame.readUInt32BE(12)).toBe(3)
  })
})

describe('toBytes', () => {
  it('returns a Uint8Array (a Buffer too) unchanged and encodes strings as UTF-8 into a plain Uint8Array', () => {
    const buf = Buffer.from('x')
    expect(toBytes(buf)).toBe(buf)
    const bytes = new Uint8Array([1, 2, 3, 4]).subarray(1)
    expect(toBytes(bytes)).toBe(bytes)
    const encoded = toBytes('é')
    expect(Object.getPrototypeOf(encoded)).toBe(Uint8Array.prototype)
    expect(asBuffer(encoded).toString('hex')).toBe('c3a9')
  })
})

describe('payloadBytesWith', () => {
  it('makes the payload check for another byte type: strings, bytes and undefined go through the factory', () => {
    const empty = Buffer.alloc(0)
    const toNodeBuffer = payloadBytesWith<Buffer>({
      fromString: (text) => Buffer.from(text, 'utf8'),
      fromBytes: (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
      empty,
    })
    const fromString = toNodeBuffer('é', 'payload')
    expect(Buffer.isBuffer(fromString) && fromString.toString('hex')).toBe('c3a9')
    const bytes = new Uint8Array([1, 2, 3]).subarray(1)
    const wrapped = toNodeBuffer(bytes, 'payload')
    expect(Buffer.isBuffer(wrapped) && wrapped.buffer === bytes.buffer && [...wrapped]).toEqual([2, 3])
    expect(toNodeBuffer(undefined, 'payload')).toBe(empty)
    let thrown: unknown
    try {
      toNodeBuffer(42, 'chunk')
    } catch (err) {
      thrown = err
    }
    expect(RpcError.is(thrown, Code.INVALID_ARGUMENT)).toBe(true)
    expect((thrown as RpcError).message).toBe('chunk must be a string or Uint8Array, got number')
  })
})

describe('payloadBytes', () => {
  it('converts strings, Buffers and Uint8Arrays, and undefined to empty', () => {
    const buf = Buffer.from('x')
    expect(payloadBytes(buf, 'payload')).toBe(buf)
    const bytes = new Uint8Array([9, 8, 7]).subarray(1)
    const wrapped = payloadBytes(bytes, 'payload')
    expect(wrapped.buffer).toBe(bytes.buffer)
    expect([...wrapped]).toEqual([8, 7])
    expect(asBuffer(payloadBytes('é', 'payload')).toString('hex')).toBe('c3a9')
    expect(payloadBytes(undefined, 'payload').length).toBe(0)
  })

  it.each([
    [{ a: 1 }, 'object'],
    [null, 'null'],
    [[1, 2], 'array'],
    [42, 'number'],
    [true, 'boolean'],
    [10n, 'bigint'],
    [Symbol('s'), 'symbol'],
    [() => 'x', 'function'],
    [new ArrayBuffer(4), 'ArrayBuffer'],
    [new Uint16Array(2), 'Uint16Array'],
    [new DataView(new ArrayBuffer(2)), 'DataView'],
  ])('throws INVALID_ARGUMENT naming the argument and the type for %s', (value, type) => {
    let thrown: unknown
    try {
      payloadBytes(value, 'reply')
    } catch (err) {
      thrown = err
    }
    expect(thrown).toBeInstanceOf(RpcError)
    expect((thrown as RpcError).code).toBe(Code.INVALID_ARGUMENT)
    expect((thrown as RpcError).message).toBe(`reply must be a string or Uint8Array, got ${type}`)
    expect(describeType(value)).toBe(type)
  })
})

describe('checkRoute', () => {
  it('accepts a non-empty string', () => {
    expect(() => checkRoute('/x')).not.toThrow()
  })

  it.each([
    ['', 'an empty string'],
    [7, 'number'],
    [null, 'null'],
    [undefined, 'undefined'],
    [{}, 'object'],
  ])('throws INVALID_ARGUMENT for %s', (route, got) => {
    let thrown: unknown
    try {
      checkRoute(route)
    } catch (err) {
      thrown = err
    }
    expect((thrown as RpcError).code).toBe(Code.INVALID_ARGUMENT)
    expect((thrown as RpcError).message).toBe(`route must be a non-empty string, got ${got}`)
  })
})

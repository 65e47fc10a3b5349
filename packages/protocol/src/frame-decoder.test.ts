import fc from 'fast-check'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { Code } from './codes'
import { Flags } from './flags'
import { encodeFrame, encodeHeader, type Frame, type FrameId, HEADER_SIZE, normalizeId } from './frame'
import { DEFAULT_MAX_FRAME_SIZE, DEFAULT_MAX_TYPE_LENGTH, FrameDecoder } from './frame-decoder'
import { RpcError } from './rpc-error'

afterEach(() => {
  vi.restoreAllMocks()
})

interface Plain {
  flags: number
  id: FrameId
  type: string
  value: string
}

/** A Buffer over the same bytes, to read a plain Uint8Array (what the encoders return) in a test. */
const asBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

const plain = (frame: Frame): Plain => ({
  flags: frame.flags,
  id: frame.id,
  type: frame.type,
  value: asBuffer(frame.value).toString('hex'),
})

/** Feeds `chunks` to a fresh decoder and returns what came out, plain for comparison. */
function decodeChunks(chunks: Buffer[], decoder = new FrameDecoder()): Plain[] {
  const out: Plain[] = []
  for (const chunk of chunks) decoder.push(chunk, (frame) => out.push(plain(frame)))
  decoder.end()
  return out
}

/** Cuts `bytes` at the given offsets (sorted, deduplicated, inside the buffer). */
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts)].filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b)
  const chunks: Buffer[] = []
  let at = 0
  for (const point of [...points, bytes.length]) {
    chunks.push(bytes.subarray(at, point))
    at = point
  }
  return chunks
}

function caught(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}

function expectProtocolError(fn: () => unknown): RpcError {
  const err = caught(fn)
  expect(err).toBeInstanceOf(RpcError)
  expect((err as RpcError).code).toBe(Code.PROTOCOL_ERROR)
  return err as RpcError
}

/** A header with arbitrary fields, for frames the encoder would refuse to write. */
function rawHeader(fields: {
  version?: number
  flags?: number
  id?: bigint
  typeLength: number
  valueLength: number
}) {
  const header = Buffer.alloc(HEADER_SIZE)
  header[0] = fields.version ?? 1
  header[1] = fields.flags ?? Flags.REQUEST
  header.writeBigUInt64BE(fields.id ?? 1n, 2)
  header.writeUInt16BE(fields.typeLength, 10)
  header.writeUInt32BE(fields.valueLength, 12)
  return header
}

// A small fixed stream: the hand-checked frames of frame.test.ts plus a multi-byte type and a
// value long enough to cross several chunk boundaries.
const FIXED: Plain[] = [
  { flags: Flags.REQUEST, id: 1, type: '/health', value: Buffer.from('hi').toString('hex') },
  { flags: Flags.RESPONSE, id: 0xffff_ffff_ffff_ffffn, type: '', value: Buffer.from('ok').toString('hex') },
  { flags: Flags.STREAM | Flags.STREAM_END, id: 7, type: '', value: '' },
  {
    flags: Flags.ERROR,
    id: 2,
    type: '',
    value: Buffer.from('{"code":"NOT_FOUND","message":"x"}').toString('hex'),
  },
  { flags: Flags.REQUEST | Flags.STREAM, id: 2 ** 40 + 3, type: '/ünï/☃/😀', value: 'ab'.repeat(40) },
]
const FIXED_BYTES = Buffer.concat(
  FIXED.map((f) => encodeFrame(f.flags, f.id, f.type, Buffer.from(f.value, 'hex'))),
)

describe('FrameDecoder yields frames in order however the bytes are split', () => {
  it('decodes many frames from one chunk', () => {
    expect(decodeChunks([FIXED_BYTES])).toEqual(FIXED)
  })

  it('keeps a type that starts with U+FEFF (found by the property test below: it came back empty)', () => {
    const empty = Buffer.from(encodeFrame(0, 0, '\uFEFF', new Uint8Array(0)))
    expect(decodeChunks([empty])).toEqual([{ flags: 0, id: 0, type: '\uFEFF', value: '' }])
    const route = Buffer.from(encodeFrame(Flags.REQUEST, 7, '\uFEFF/echo', new Uint8Array([1])))
    expect(decodeChunks([route])).toEqual([{ flags: Flags.REQUEST, id: 7, type: '\uFEFF/echo', value: '01' }])
  })

  it('decodes the same stream split at every single offset', () => {
    for (let cut = 0; cut <= FIXED_BYTES.length; cut++) {
      expect(decodeChunks(split(FIXED_BYTES, [cut]))).toEqual(FIXED)
    }
  })

  it('decodes the same stream split at every pair of offsets', () => {
    for (let a = 1; a < FIXED_BYTES.length; a++) {
      for (let b = a; b < FIXED_BYTES.length; b++) {
        expect(decodeChunks(split(FIXED_BYTES, [a, b]))).toEqual(FIXED)
      }
    }
  })

  it('decodes the same stream fed one byte at a time', () => {
    const bytes = [...FIXED_BYTES].map((b) => Buffer.of(b))
    expect(decodeChunks(bytes)).toEqual(FIXED)
  })

  it('decodes a 64 KiB value that arrives one byte per read', () => {
    const value = Buffer.alloc(64 * 1024)
    for (let i = 0; i < value.length; i++) value[i] = i * 7
    const bytes = Buffer.concat([
      encodeFrame(Flags.RESPONSE, 9, '', value),
      encodeFrame(Flags.RESPONSE, 10, '', Buffer.from('next')),
    ])
    const decoder = new FrameDecoder()
    const frames: Frame[] = []
    for (let i = 0; i < bytes.length; i++) decoder.push(bytes.subarray(i, i + 1), (f) => frames.push(f))
    expect(frames.map((f) => f.id)).toEqual([9, 10])
    expect(asBuffer(frames[0].value).equals(value)).toBe(true)
    expect(asBuffer(frames[1].value).toString()).toBe('next')
    expect(decoder.bufferedBytes).toBe(0)
  })

  it('ignores empty chunks', () => {
    const half = FIXED_BYTES.length >> 1
    const chunks = [
      Buffer.alloc(0),
      FIXED_BYTES.subarray(0, half),
      Buffer.alloc(0),
      FIXED_BYTES.subarray(half),
    ]
    expect(decodeChunks(chunks)).toEqual(FIXED)
  })

  it('decode() returns the frames a chunk completes', () => {
    const decoder = new FrameDecoder()
    expect(decoder.decode(FIXED_BYTES.subarray(0, 20))).toEqual([])
    expect(decoder.decode(FIXED_BYTES.subarray(20)).map(plain)).toEqual(FIXED)
  })
})

describe('FrameDecoder values and memory', () => {
  it('hands out a value that lies inside one chunk as a view of that chunk', () => {
    const chunk = Buffer.alloc(200)
    const frame = asBuffer(encodeFrame(Flags.REQUEST, 1, '/r', Buffer.from('zero-copy')))
    frame.copy(chunk, 50)
    const [decoded] = new FrameDecoder().decode(chunk.subarray(50, 50 + frame.length))
    expect(decoded.value.toString()).toBe('zero-copy')
    expect(decoded.value.buffer).toBe(chunk.buffer)
    expect(decoded.value.byteOffset).toBe(chunk.byteOffset + 50 + HEADER_SIZE + 2)
  })

  it('hands out every value of a chunk holding many frames as a view of it', () => {
    const chunk = Buffer.alloc(FIXED_BYTES.length)
    FIXED_BYTES.copy(chunk)
    const frames = new FrameDecoder().decode(chunk)
    for (const frame of frames.filter((f) => f.value.length > 0))
      expect(frame.value.buffer).toBe(chunk.buffer)
  })

  it('still hands out a view when only the header was split across chunks', () => {
    const frame = asBuffer(encodeFrame(Flags.RESPONSE, 1, '', Buffer.from('value')))
    const first = Buffer.alloc(10)
    frame.copy(first, 0, 0, 10)
    const second = Buffer.alloc(frame.length - 10)
    frame.copy(second, 0, 10)
    const decoder = new FrameDecoder()
    expect(decoder.decode(first)).toEqual([])
    const [decoded] = decoder.decode(second)
    expect(decoded.value.toString()).toBe('value')
    expect(decoded.value.buffer).toBe(second.buffer)
  })

  it('gives every decoder the same empty value (nothing per connection for it)', () => {
    const empty = asBuffer(encodeFrame(Flags.RESPONSE, 1, '', new Uint8Array(0)))
    const [a] = new FrameDecoder().decode(empty)
    const [b] = new FrameDecoder().decode(empty)
    expect(a.value.length).toBe(0)
    expect(a.value).toBe(b.value)
  })

  it('copies a value that spans chunks into memory of its own', () => {
    const frame = asBuffer(encodeFrame(Flags.RESPONSE, 1, '', Buffer.alloc(6000, 0x5a)))
    const first = Buffer.alloc(3000)
    frame.copy(first, 0, 0, 3000)
    const second = Buffer.alloc(frame.length - 3000)
    frame.copy(second, 0, 3000)
    const decoder = new FrameDecoder()
    decoder.decode(first)
    const [decoded] = decoder.decode(second)
    expect(asBuffer(decoded.value).equals(Buffer.alloc(6000, 0x5a))).toBe(true)
    expect(decoded.value.buffer).not.toBe(first.buffer)
    expect(decoded.value.buffer).not.toBe(second.buffer)
  })

  it('buffers less than one frame once push returns', () => {
    const decoder = new FrameDecoder()
    const frame = encodeFrame(Flags.RESPONSE, 1, '', Buffer.alloc(1000))
    decoder.push(Buffer.concat([frame, frame, frame.subarray(0, 500)]), () => {})
    expect(decoder.bufferedBytes).toBe(500 - HEADER_SIZE)
    decoder.push(frame.subarray(500), () => {})
    expect(decoder.bufferedBytes).toBe(0)
  })

  it('lets an exception from onFrame propagate, stays usable and delivers the rest on the next push', () => {
    const decoder = new FrameDecoder()
    const boom = new Error('handler failed')
    const seen: Plain[] = []
    const err = caught(() =>
      decoder.push(FIXED_BYTES, (frame) => {
        seen.push(plain(frame))
        if (seen.length === 1) throw boom
      }),
    )
    expect(err).toBe(boom)
    expect(decoder.failed).toBe(false)
    decoder.push(Buffer.alloc(0), (frame) => seen.push(plain(frame)))
    expect(seen).toEqual(FIXED)
  })
})

describe('FrameDecoder large values (assembled as they arrive)', () => {
  const LARGE = 256 * 1024
  const largeValue = (): Buffer => {
    const value = Buffer.alloc(LARGE)
    for (let i = 0; i < value.length; i++) value[i] = (i * 13 + (i >> 8)) & 0xff
    return value
  }
  const stream = (): Buffer =>
    Buffer.concat([
      encodeFrame(Flags.RESPONSE, 3, '/big/☃', largeValue()),
      encodeFrame(Flags.RESPONSE, 4, '', Buffer.from('after')),
    ])
  const expectedFrames = (): Plain[] => [
    { flags: Flags.RESPONSE, id: 3, type: '/big/☃', value: largeValue().toString('hex') },
    { flags: Flags.RESPONSE, id: 4, type: '', value: Buffer.from('after').toString('hex') },
  ]

  it('once an eighth of a large value has arrived, copies each later chunk into it on arrival and keeps none', () => {
    const bytes = stream()
    const decoder = new FrameDecoder<Buffer>({ alloc: (n) => Buffer.alloc(n) })
    const out: Plain[] = []
    const start = HEADER_SIZE + Buffer.byteLength('/big/☃') + LARGE / 8
    decoder.push(Buffer.from(bytes.subarray(0, start)), (frame) => out.push(plain(frame)))
    // Then 16 KiB reads into one buffer that the "socket" reuses for every read: a chunk the
    // decoder still held would be overwritten by the next read.
    const scratch = Buffer.alloc(16 * 1024)
    for (let at = start; at < bytes.length; at += scratch.length) {
      const n = bytes.copy(scratch, 0, at, at + scratch.length)
      decoder.push(scratch.subarray(0, n), (frame) => out.push(plain(frame)))
      scratch.fill(0xee)
    }
    expect(out[0]).toEqual(expectedFrames()[0])
  })

  it('allocates the value only once an eighth of it has arrived', () => {
    const bytes = stream()
    const sizes: number[] = []
    const decoder = new FrameDecoder<Uint8Array>({
      alloc: (n) => {
        sizes.push(n)
        return new Uint8Array(n)
      },
    })
    const typeEnd = HEADER_SIZE + Buffer.byteLength('/big/☃')
    decoder.push(bytes.subarray(0, typeEnd + LARGE / 8 - 1), () => {})
    expect(sizes).not.toContain(LARGE)
    expect(decoder.bufferedBytes).toBe(Buffer.byteLength('/big/☃') + LARGE / 8 - 1)
    decoder.push(bytes.subarray(typeEnd + LARGE / 8 - 1, typeEnd + LARGE / 8), () => {})
    expect(sizes.filter((n) => n > 0)).toEqual([LARGE])
    expect(decoder.bufferedBytes).toBe(LARGE / 8)
  })

  it('decodes the same large frame split at every offset around its header, type, start and end', () => {
    const bytes = stream()
    const typeEnd = HEADER_SIZE + Buffer.byteLength('/big/☃')
    const marks = [0, HEADER_SIZE, typeEnd, typeEnd + LARGE / 8, typeEnd + LARGE, bytes.length]
    for (const mark of marks) {
      for (let d = -20; d <= 20; d++) {
        const cut = mark + d
        // The rest in 16 KiB reads, as TLS delivers it.
        const cuts = [cut]
        for (let at = cut + 16 * 1024; at < bytes.length; at += 16 * 1024) cuts.push(at)
        expect(decodeChunks(split(bytes, cuts))).toEqual(expectedFrames())
      }
    }
  })

  it('decodes a large value fed one byte at a time, and one fed whole', () => {
    const bytes = stream()
    expect(decodeChunks([...bytes].map((b) => Buffer.of(b)))).toEqual(expectedFrames())
    expect(decodeChunks([bytes])).toEqual(expectedFrames())
  })

  it('keeps the bytes after an assembled value when onFrame throws, and delivers them on the next push', () => {
    const bytes = stream()
    const decoder = new FrameDecoder()
    const seen: Plain[] = []
    const boom = new Error('handler failed')
    const onFrame = (frame: Frame) => {
      seen.push(plain(frame))
      if (seen.length === 1) throw boom
    }
    decoder.push(bytes.subarray(0, 100_000), onFrame)
    expect(caught(() => decoder.push(bytes.subarray(100_000), onFrame))).toBe(boom)
    decoder.push(Buffer.alloc(0), onFrame)
    expect(seen).toEqual(expectedFrames())
  })

  it('end() rejects a stream cut inside a value being assembled, naming how much arrived', () => {
    const decoder = new FrameDecoder()
    const bytes = stream()
    decoder.push(bytes.subarray(0, 200_000), () => {})
    const err = expectProtocolError(() => decoder.end())
    const body = Buffer.byteLength('/big/☃') + LARGE
    expect(err.message).toBe(
      `stream ended inside a frame (header read, ${200_000 - HEADER_SIZE} of ${body} body bytes)`,
    )
  })
})

describe('FrameDecoder allocator', () => {
  // A value spanning two chunks: its first 3000 bytes in one, the rest in the other.
  const spanning = asBuffer(encodeFrame(Flags.RESPONSE, 1, '', Buffer.alloc(6000, 0x5a)))
  const spanChunks = [Buffer.from(spanning.subarray(0, 3000)), Buffer.from(spanning.subarray(3000))]
  const empty = asBuffer(encodeFrame(Flags.RESPONSE, 2, '', Buffer.alloc(0)))
  const inOne = asBuffer(encodeFrame(Flags.RESPONSE, 3, '', Buffer.from('one')))

  it('by default copies a spanning value into a plain Uint8Array and gives empty values as one', () => {
    const decoder = new FrameDecoder()
    const frames = [...spanChunks, empty].flatMap((chunk) => decoder.decode(chunk))
    expect(frames).toHaveLength(2)
    for (const frame of frames) expect(frame.value.constructor).toBe(Uint8Array)
    expect(frames[0].value).toEqual(new Uint8Array(6000).fill(0x5a))
    expect(frames[1].value.length).toBe(0)
  })

  it('with Buffer chunks and Buffer.allocUnsafe hands out only Buffers: views, copies and empty values', () => {
    const alloc = vi.fn((size: number) => Buffer.allocUnsafe(size))
    const decoder = new FrameDecoder<Buffer>({ alloc })
    const frames = [...spanChunks, empty, inOne].flatMap((chunk) => decoder.decode(chunk))
    expect(frames.map((f) => f.id)).toEqual([1, 2, 3])
    for (const frame of frames) expect(Buffer.isBuffer(frame.value)).toBe(true)
    expect(frames[0].value.equals(Buffer.alloc(6000, 0x5a))).toBe(true)
    expect(frames[1].value.length).toBe(0)
    expect(frames[2].value.toString()).toBe('one')
    // One call for the empty value at construction, one for the spanning value; views need none.
    expect(alloc.mock.calls).toEqual([[0], [6000]])
  })

  it('copies a header that spans chunks into its own scratch space, never through the allocator', () => {
    const alloc = vi.fn((size: number): Uint8Array => new Uint8Array(size))
    const decoder = new FrameDecoder({ alloc })
    decoder.decode(inOne.subarray(0, 7))
    const [frame] = decoder.decode(inOne.subarray(7))
    expect(frame.id).toBe(3)
    expect(alloc.mock.calls).toEqual([[0]])
  })
})

describe('FrameDecoder limits', () => {
  it('rejects a header announcing a 4 GiB value as soon as its 16th byte arrives, before any body allocation', () => {
    const header = rawHeader({ typeLength: 0, valueLength: 0xffff_ffff })
    const allocUnsafe = vi.spyOn(Buffer, 'allocUnsafe')
    const alloc = vi.fn((size: number) => Buffer.alloc(size))
    const decoder = new FrameDecoder({ alloc })
    const onFrame = vi.fn()
    decoder.push(header.subarray(0, 15), onFrame)
    expect(decoder.failed).toBe(false)
    const err = expectProtocolError(() => decoder.push(header.subarray(15), onFrame))
    expect(err.message).toMatch(/exceeds the limit/)
    expect(decoder.failed).toBe(true)
    expect(decoder.bufferedBytes).toBe(0)
    expect(onFrame).not.toHaveBeenCalled()
    const sizes = [...allocUnsafe.mock.calls, ...alloc.mock.calls].map((call) => call[0] as number)
    expect(sizes.every((size) => size <= HEADER_SIZE)).toBe(true)
  })

  it('rejects an oversized header without waiting for the body that follows it in the same chunk', () => {
    const bytes = Buffer.concat([rawHeader({ typeLength: 0, valueLength: 0x1000_0000 }), Buffer.alloc(64)])
    expectProtocolError(() => new FrameDecoder().decode(bytes))
  })

  it('counts header, type and value against maxFrameSize', () => {
    const limit = HEADER_SIZE + 5 + 10
    const fits = encodeFrame(Flags.REQUEST, 1, '/abcd', Buffer.alloc(10))
    expect(new FrameDecoder({ maxFrameSize: limit }).decode(fits)).toHaveLength(1)
    const over = encodeFrame(Flags.REQUEST, 1, '/abcd', Buffer.alloc(11))
    expectProtocolError(() => new FrameDecoder({ maxFrameSize: limit }).decode(over))
  })

  it('defaults maxFrameSize to 16 MiB including the header', () => {
    expect(new FrameDecoder().maxFrameSize).toBe(DEFAULT_MAX_FRAME_SIZE)
    expect(DEFAULT_MAX_FRAME_SIZE).toBe(16 * 1024 * 1024)
    const atLimit = new FrameDecoder()
    atLimit.push(encodeHeader(Flags.RESPONSE, 1, '', DEFAULT_MAX_FRAME_SIZE - HEADER_SIZE), () => {})
    expect(atLimit.failed).toBe(false)
    const overLimit = new FrameDecoder()
    expectProtocolError(() =>
      overLimit.push(encodeHeader(Flags.RESPONSE, 1, '', DEFAULT_MAX_FRAME_SIZE - HEADER_SIZE + 1), () => {}),
    )
  })

  it('rejects a type longer than maxTypeLength (default 1024 bytes) from the header alone', () => {
    expect(new FrameDecoder().maxTypeLength).toBe(DEFAULT_MAX_TYPE_LENGTH)
    expect(DEFAULT_MAX_TYPE_LENGTH).toBe(1024)
    const ok = encodeFrame(Flags.REQUEST, 1, 'r'.repeat(1024), Buffer.alloc(0))
    expect(new FrameDecoder().decode(ok)[0].type).toHaveLength(1024)
    const long = encodeFrame(Flags.REQUEST, 1, 'r'.repeat(1025), Buffer.alloc(0))
    const err = expectProtocolError(() => new FrameDecoder().push(long.subarray(0, HEADER_SIZE), () => {}))
    expect(err.message).toMatch(/type/)
  })

  it('applies a custom maxTypeLength, counted in UTF-8 bytes', () => {
    const decoder = () => new FrameDecoder({ maxTypeLength: 4 })
    expect(decoder().decode(encodeFrame(Flags.REQUEST, 1, '/éé'.slice(0, 2), Buffer.alloc(0)))).toHaveLength(
      1,
    )
    expectProtocolError(() => decoder().decode(encodeFrame(Flags.REQUEST, 1, '/éé', Buffer.alloc(0))))
  })

  for (const version of [0, 2, 0xff]) {
    it(`rejects version byte ${version}`, () => {
      const bytes = encodeFrame(Flags.REQUEST, 1, '/health', Buffer.from('hi'))
      bytes[0] = version
      const err = expectProtocolError(() => new FrameDecoder().decode(bytes))
      expect(err.message).toMatch(/version/)
    })
  }

  it('names a peer whose first bytes are HTTP (a web server answering, or a browser asking)', () => {
    for (const first of ['HTTP/1.1 400 Bad Request\r\n\r\n', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n']) {
      const decoder = new FrameDecoder({ peerName: 'the server at 127.0.0.1:8443' })
      const err = expectProtocolError(() => decoder.decode(Buffer.from(first, 'latin1')))
      expect(err.message).toBe(
        'the server at 127.0.0.1:8443 does not speak srpc; its first bytes look like HTTP',
      )
    }
  })

  it('shows the first bytes of any other foreign stream, and keeps the plain version error after a valid frame', () => {
    const foreign = Buffer.from([0x16, 0x03, 0x01, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    expect(expectProtocolError(() => new FrameDecoder().decode(foreign)).message).toBe(
      'the peer does not speak srpc (frame version 22, first bytes 16 03 01 02)',
    )
    const decoder = new FrameDecoder()
    decoder.decode(encodeFrame(Flags.REQUEST, 1, '/a', Buffer.alloc(0)))
    expect(expectProtocolError(() => decoder.decode(Buffer.from('HTTP/1.1 200 OK\r\n\r\n'))).message).toBe(
      'unsupported frame version 72',
    )
  })

  it('stays failed after a violation: every later call throws the same error and yields nothing', () => {
    const decoder = new FrameDecoder()
    const bad = encodeFrame(Flags.REQUEST, 1, '', Buffer.alloc(0))
    bad[0] = 9
    const first = expectProtocolError(() => decoder.decode(bad))
    const onFrame = vi.fn()
    expect(caught(() => decoder.push(FIXED_BYTES, onFrame))).toBe(first)
    expect(caught(() => decoder.push(Buffer.alloc(0), onFrame))).toBe(first)
    expect(caught(() => decoder.decode(FIXED_BYTES))).toBe(first)
    expect(caught(() => decoder.end())).toBe(first)
    expect(onFrame).not.toHaveBeenCalled()
    expect(decoder.failed).toBe(true)
  })

  const badUtf8: Array<[string, string]> = [
    ['a truncated two-byte sequence', 'c328'],
    ['an overlong encoding of "/"', 'c0af'],
    ['an encoded lone surrogate', 'eda080'],
    ['a stray continuation byte', '2f80'],
  ]
  for (const [name, bytes] of badUtf8) {
    it(`rejects a type that is not valid UTF-8: ${name}`, () => {
      const type = Buffer.from(bytes, 'hex')
      const frame = Buffer.concat([
        rawHeader({ typeLength: type.length, valueLength: 1 }),
        type,
        Buffer.of(0),
      ])
      const err = expectProtocolError(() => new FrameDecoder().decode(frame))
      expect(err.message).toMatch(/UTF-8/)
    })
  }

  it('decodes a non-ASCII type whether it lies in one chunk or spans two', () => {
    const bytes = encodeFrame(Flags.REQUEST, 1, '/ünï/😀', Uint8Array.of(7))
    expect(new FrameDecoder().decode(bytes)[0].type).toBe('/ünï/😀')
    for (let cut = HEADER_SIZE + 1; cut < bytes.length - 1; cut++) {
      const decoder = new FrameDecoder()
      decoder.decode(bytes.subarray(0, cut))
      expect(decoder.decode(bytes.subarray(cut))[0].type).toBe('/ünï/😀')
    }
  })

  it('rejects an invalid UTF-8 type that arrives split across chunks', () => {
    const frame = Buffer.concat([rawHeader({ typeLength: 2, valueLength: 0 }), Buffer.from('c328', 'hex')])
    const decoder = new FrameDecoder()
    decoder.push(frame.subarray(0, 17), () => {})
    expectProtocolError(() => decoder.push(frame.subarray(17), () => {}))
  })

  it('end() accepts a stream that stops between frames', () => {
    const decoder = new FrameDecoder()
    decoder.end()
    decoder.decode(FIXED_BYTES)
    expect(() => decoder.end()).not.toThrow()
  })

  it('end() rejects a stream cut inside a header', () => {
    const decoder = new FrameDecoder()
    decoder.decode(FIXED_BYTES.subarray(0, 5))
    expectProtocolError(() => decoder.end())
    expect(decoder.failed).toBe(true)
  })

  it('end() rejects a stream cut right after a header whose body never came', () => {
    const decoder = new FrameDecoder()
    decoder.decode(encodeFrame(Flags.REQUEST, 1, '/health', Buffer.from('hi')).subarray(0, HEADER_SIZE))
    expect(decoder.bufferedBytes).toBe(0)
    expectProtocolError(() => decoder.end())
  })

  it('end() rejects a stream cut inside a value', () => {
    const decoder = new FrameDecoder()
    decoder.decode(FIXED_BYTES.subarray(0, FIXED_BYTES.length - 1))
    const err = expectProtocolError(() => decoder.end())
    expect(err.message).toMatch(/ended inside a frame/)
  })

  it('rejects an alloc option that is not a function with INVALID_ARGUMENT naming it', () => {
    const err = caught(() => new FrameDecoder({ alloc: 42 as unknown as (size: number) => Uint8Array }))
    expect(RpcError.is(err, Code.INVALID_ARGUMENT)).toBe(true)
    expect((err as RpcError).message).toBe('option alloc must be a function, got number')
  })

  it('rejects limits that are not integers with INVALID_ARGUMENT naming the option', () => {
    for (const maxFrameSize of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      const err = caught(() => new FrameDecoder({ maxFrameSize }))
      expect(RpcError.is(err, Code.INVALID_ARGUMENT)).toBe(true)
      expect((err as RpcError).message).toMatch(/maxFrameSize/)
    }
    for (const maxTypeLength of [-1, 0.5, Number.NaN]) {
      const err = caught(() => new FrameDecoder({ maxTypeLength }))
      expect(RpcError.is(err, Code.INVALID_ARGUMENT)).toBe(true)
      expect((err as RpcError).message).toMatch(/maxTypeLength/)
    }
  })

  it('with maxTypeLength 0 accepts frames with an empty type only', () => {
    const decoder = new FrameDecoder({ maxTypeLength: 0 })
    expect(decoder.decode(encodeFrame(Flags.RESPONSE, 1, '', Buffer.from('x')))).toHaveLength(1)
    expectProtocolError(() => decoder.decode(encodeFrame(Flags.REQUEST, 2, '/', Buffer.alloc(0))))
  })
})

// ---- Property tests -------------------------------------------------------------------------

const TWO_53 = 2n ** 53n
const U64_MAX = 2n ** 64n - 1n

/** Ids over the whole u64 range: numbers below 2^53, bigints from 2^53 up, and the edges. */
const anyId: fc.Arbitrary<FrameId> = fc.oneof(
  fc.maxSafeNat(),
  fc.integer({ min: 0, max: 1000 }),
  fc.bigInt({ min: TWO_53, max: U64_MAX }),
  fc.constantFrom<FrameId>(0, Number.MAX_SAFE_INTEGER, TWO_53, 2n ** 63n, U64_MAX),
)

/** UTF-8 types of at most DEFAULT_MAX_TYPE_LENGTH bytes (a code point is at most 4 bytes). */
const anyType = fc.oneof(
  fc.constant(''),
  fc.string({ unit: 'binary', maxLength: DEFAULT_MAX_TYPE_LENGTH / 4 }),
  fc.string({ unit: 'grapheme-ascii', maxLength: DEFAULT_MAX_TYPE_LENGTH }),
)

const anyFrame = fc.record({
  flags: fc.integer({ min: 0, max: 255 }),
  id: anyId,
  type: anyType,
  value: fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 4096 })),
})

type Input = { flags: number; id: FrameId; type: string; value: Uint8Array }
const encodeAll = (frames: Input[]) =>
  Buffer.concat(frames.map((f) => encodeFrame(f.flags, f.id, f.type, f.value)))
const expected = (frames: Input[]): Plain[] =>
  frames.map((f) => ({
    flags: f.flags,
    id: normalizeId(f.id),
    type: f.type,
    value: Buffer.from(f.value).toString('hex'),
  }))

/** Chunk boundaries as fractions of the stream, so they scale with whatever length it has. */
const cutFractions = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 40 })
const toCuts = (length: number, fractions: number[]) => fractions.map((f) => Math.floor(f * length))

/** Pushes chunks; returns the error thrown, if any, after checking it is a PROTOCOL_ERROR. */
function feedUntrusted(chunks: Buffer[], decoder: FrameDecoder): RpcError | undefined {
  let failure: unknown
  for (const chunk of chunks) {
    failure = caught(() => decoder.push(chunk, () => {}))
    if (failure) break
    // Never more than one frame's worth (or a partial header, under a tiny limit).
    expect(decoder.bufferedBytes).toBeLessThan(Math.max(HEADER_SIZE, decoder.maxFrameSize))
  }
  failure ??= caught(() => decoder.end())
  if (failure === undefined) return undefined
  expect(failure).toBeInstanceOf(RpcError)
  expect((failure as RpcError).code).toBe(Code.PROTOCOL_ERROR)
  // Failed for good: the next push throws the very same error.
  expect(caught(() => decoder.push(Buffer.of(1), () => {}))).toBe(failure)
  return failure as RpcError
}

describe('FrameDecoder properties', () => {
  it('random frames, concatenated and split at random boundaries, come back the same and in order', () => {
    fc.assert(
      fc.property(fc.array(anyFrame, { maxLength: 12 }), cutFractions, (frames, fractions) => {
        const bytes = encodeAll(frames)
        const decoder = new FrameDecoder()
        const out: Plain[] = []
        for (const chunk of split(bytes, toCuts(bytes.length, fractions))) {
          decoder.push(chunk, (frame) => out.push(plain(frame)))
          expect(decoder.bufferedBytes).toBeLessThan(decoder.maxFrameSize)
        }
        decoder.end()
        expect(out).toEqual(expected(frames))
      }),
      { numRuns: 300 },
    )
  })

  it('every id in the u64 range round-trips exactly, as a number below 2^53 and a bigint above', () => {
    fc.assert(
      fc.property(anyId, (id) => {
        const [frame] = new FrameDecoder().decode(encodeFrame(Flags.REQUEST, id, '', Buffer.alloc(0)))
        expect(frame.id).toBe(normalizeId(id))
        expect(typeof frame.id).toBe(BigInt(id) < TWO_53 ? 'number' : 'bigint')
      }),
      { numRuns: 1000 },
    )
  })

  it('random garbage never makes the decoder throw anything but PROTOCOL_ERROR', () => {
    const garbage = fc.oneof(
      fc.uint8Array({ maxLength: 512 }),
      // Version byte 1 first, so the garbage gets past the first check more often.
      fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.concat([Buffer.of(1), b])),
    )
    const limits = fc.record({
      maxFrameSize: fc.oneof(fc.constant(DEFAULT_MAX_FRAME_SIZE), fc.integer({ min: 1, max: 600 })),
      maxTypeLength: fc.oneof(fc.constant(DEFAULT_MAX_TYPE_LENGTH), fc.integer({ min: 0, max: 64 })),
    })
    fc.assert(
      fc.property(garbage, cutFractions, limits, (bytes, fractions, options) => {
        const buf = Buffer.from(bytes)
        feedUntrusted(split(buf, toCuts(buf.length, fractions)), new FrameDecoder(options))
      }),
      { numRuns: 1000 },
    )
  })

  it('mutated valid frames never make the decoder throw anything but PROTOCOL_ERROR', () => {
    const mutation = fc.record({
      at: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
      byte: fc.integer({ min: 0, max: 255 }),
      kind: fc.constantFrom('set', 'insert', 'delete'),
    })
    fc.assert(
      fc.property(
        fc.array(anyFrame, { minLength: 1, maxLength: 6 }),
        fc.array(mutation, { minLength: 1, maxLength: 8 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        cutFractions,
        (frames, mutations, keep, fractions) => {
          const bytes = [...encodeAll(frames)]
          for (const m of mutations) {
            const at = Math.floor(m.at * bytes.length)
            if (m.kind === 'set') bytes[at] = m.byte
            else if (m.kind === 'insert') bytes.splice(at, 0, m.byte)
            else bytes.splice(at, 1)
          }
          // Sometimes also cut the tail off, so end() meets a truncated frame.
          const buf = Buffer.from(bytes.slice(0, Math.max(1, Math.ceil(keep * bytes.length))))
          feedUntrusted(split(buf, toCuts(buf.length, fractions)), new FrameDecoder())
        },
      ),
      { numRuns: 500 },
    )
  })
})

describe('FrameDecoder with reuseFrame', () => {
  const frames = [
    encodeFrame(Flags.REQUEST, 1, '/svc/a', Buffer.from('first')),
    encodeFrame(Flags.RESPONSE, 2, '', Buffer.from('second value')),
    encodeFrame(Flags.REQUEST, 2n ** 60n, '/svc/b', Buffer.alloc(0)),
  ]
  const bytes = Buffer.concat(frames)

  it('hands every frame in one object, each time holding that frame, split at any offset', () => {
    for (let cut = 0; cut <= bytes.length; cut++) {
      const decoder = new FrameDecoder<Buffer>({ alloc: Buffer.allocUnsafe, reuseFrame: true })
      const seen: Plain[] = []
      const objects = new Set<object>()
      const onFrame = (frame: Frame<Buffer>) => {
        objects.add(frame)
        seen.push({ flags: frame.flags, id: frame.id, type: frame.type, value: frame.value.toString() })
      }
      decoder.push(bytes.subarray(0, cut), onFrame)
      decoder.push(bytes.subarray(cut), onFrame)
      expect(seen).toEqual([
        { flags: Flags.REQUEST, id: 1, type: '/svc/a', value: 'first' },
        { flags: Flags.RESPONSE, id: 2, type: '', value: 'second value' },
        { flags: Flags.REQUEST, id: 2n ** 60n, type: '/svc/b', value: '' },
      ])
      expect(objects.size).toBe(1)
    }
  })

  it('keeps no view of a chunk once onFrame returned (an idle connection holds no read buffer)', () => {
    const decoder = new FrameDecoder<Buffer>({ alloc: Buffer.allocUnsafe, reuseFrame: true })
    let kept: Frame<Buffer> | undefined
    decoder.push(Buffer.from(frames[1]), (frame) => {
      kept = frame
    })
    expect(kept?.value.length).toBe(0)
  })

  it('still returns separate frames from decode()', () => {
    const decoded = new FrameDecoder({ reuseFrame: true }).decode(bytes)
    expect(decoded.map((f) => f.id)).toEqual([1, 2, 2n ** 60n])
    expect(new Set(decoded).size).toBe(3)
  })
})

describe('FrameDecoder chunk list', () => {
  it('decodes intact after a frame that spanned many reads, then frames one or several per read', () => {
    const decoder = new FrameDecoder()
    const big = encodeFrame(
      Flags.RESPONSE,
      1,
      '',
      Uint8Array.from({ length: 3000 }, (_, i) => i & 0xff),
    )
    const got: number[] = []
    const onFrame = (frame: { id: number | bigint; value: Uint8Array }) => {
      got.push(Number(frame.id))
      const expected = Number(frame.id) === 1 ? 3000 : 8
      expect(frame.value.length).toBe(expected)
    }
    // 100 reads for one frame: the list grows past what it keeps once empty.
    for (let at = 0; at < big.length; at += 30) decoder.push(big.subarray(at, at + 30), onFrame)
    for (let id = 2; id < 50; id++) {
      const frame = encodeFrame(Flags.RESPONSE, id, '', new Uint8Array(8).fill(id))
      if (id % 3 === 0) {
        decoder.push(frame.subarray(0, 5), onFrame)
        decoder.push(frame.subarray(5), onFrame)
      } else {
        decoder.push(frame, onFrame)
      }
    }
    expect(got).toEqual(Array.from({ length: 49 }, (_, i) => i + 1))
    expect(decoder.bufferedBytes).toBe(0)
  })
})

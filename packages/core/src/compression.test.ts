import { randomBytes } from 'node:crypto'
import { constants, deflateRawSync, deflateSync, inflateRawSync, inflateSync } from 'node:zlib'
import { Code, RpcError } from '@srpc/protocol'
import { describe, expect, it } from 'vitest'
import {
  Compressor,
  DEFAULT_COMPRESSION_LEVEL,
  DEFAULT_COMPRESSION_THRESHOLD,
  decompress,
  decompressAsync,
  looksIncompressible,
  negotiateCodec,
  resolveCompressionOptions,
  SUPPORTED_CODECS,
} from './compression'

const MIB = 1024 * 1024
const text = (size: number) =>
  Buffer.from('srpc frames are small and fast; '.repeat(Math.ceil(size / 32))).subarray(0, size)

function thrown(fn: () => unknown): RpcError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(RpcError)
    return err as RpcError
  }
  throw new Error('expected an RpcError')
}

describe('resolveCompressionOptions', () => {
  it('defaults to deflate, offered, adaptive (auto), level 1, threshold 1024 bytes', () => {
    expect(SUPPORTED_CODECS).toEqual(['deflate'])
    expect(DEFAULT_COMPRESSION_LEVEL).toBe(1)
    expect(DEFAULT_COMPRESSION_THRESHOLD).toBe(1024)
    expect(resolveCompressionOptions(undefined)).toEqual({
      enabled: true,
      mode: 'auto',
      codecs: ['deflate'],
      threshold: 1024,
      level: 1,
    })
  })

  it('takes a boolean as the on/off switch: true always tries, false is not even offered', () => {
    expect(resolveCompressionOptions(false)).toMatchObject({ enabled: false, mode: 'never' })
    expect(resolveCompressionOptions(true)).toMatchObject({ enabled: true, mode: 'always' })
    expect(resolveCompressionOptions({ enabled: 'auto' })).toMatchObject({ enabled: true, mode: 'auto' })
    expect(resolveCompressionOptions({})).toMatchObject({ enabled: true, mode: 'auto' })
  })

  const bad: Array<[string, Parameters<typeof resolveCompressionOptions>[0], string]> = [
    ['an unknown codec', { codecs: ['deflate', 'zstd'] }, 'compression.codecs'],
    ['an unknown mode', { enabled: 'sometimes' as 'auto' }, 'compression.enabled'],
    ['a level above 9', { level: 10 }, 'compression.level'],
    ['a negative level', { level: -1 }, 'compression.level'],
    ['a fractional level', { level: 1.5 }, 'compression.level'],
    ['a negative threshold', { threshold: -1 }, 'compression.threshold'],
    ['a fractional threshold', { threshold: 0.5 }, 'compression.threshold'],
  ]
  for (const [name, options, option] of bad) {
    it(`refuses ${name} with INVALID_ARGUMENT naming ${option}`, () => {
      const err = thrown(() => resolveCompressionOptions(options))
      expect(err.code).toBe(Code.INVALID_ARGUMENT)
      expect(err.message).toContain(option)
    })
  }
})

describe('negotiateCodec', () => {
  it("picks the first of the offered codecs (the client's preference) that is accepted", () => {
    expect(negotiateCodec(['gzip', 'deflate'], ['deflate', 'gzip'])).toBe('gzip')
    expect(negotiateCodec(['zstd', 'deflate'], ['deflate'])).toBe('deflate')
    expect(negotiateCodec(['zstd'], ['deflate'])).toBeUndefined()
    expect(negotiateCodec(undefined, ['deflate'])).toBeUndefined()
  })
})

describe('Compressor', () => {
  const compressor = new Compressor('deflate', resolveCompressionOptions(undefined))

  it('leaves a payload below the threshold alone', () => {
    expect(compressor.compress(text(1023))).toBeUndefined()
  })

  it('compresses a payload of exactly the threshold', () => {
    expect(compressor.compress(text(1024))).toBeInstanceOf(Buffer)
  })

  it('writes raw DEFLATE (RFC 1951, no zlib header) at the configured level', () => {
    const payload = text(64 * 1024)
    const out = compressor.compress(payload)!
    expect(out.equals(deflateRawSync(payload, { level: 1 }))).toBe(true)
    expect(inflateRawSync(out).equals(payload)).toBe(true)
    expect(() => inflateSync(out)).toThrow()
    const level9 = new Compressor('deflate', resolveCompressionOptions({ level: 9 })).compress(payload)!
    expect(level9.equals(deflateRawSync(payload, { level: 9 }))).toBe(true)
    expect(level9.length).toBeLessThan(out.length)
  })

  it('sends incompressible data as it is', () => {
    expect(compressor.compress(randomBytes(16 * 1024))).toBeUndefined()
  })

  it('sends data as it is when compression would not make it smaller (level 0 stores)', () => {
    const store = new Compressor('deflate', resolveCompressionOptions({ level: 0 }))
    expect(store.compress(text(4096))).toBeUndefined()
  })

  it('sends data as it is when compression saves less than a tenth', () => {
    // Random bytes with every 8th byte zero: deflate saves only about 5 %, yet the sample (every
    // 64th byte of 16 KiB) sees a single value, so it is tried.
    const payload = randomBytes(16 * 1024)
    for (let i = 0; i < payload.length; i += 8) payload[i] = 0
    expect(looksIncompressible(payload)).toBe(false)
    const ratio = deflateRawSync(payload, { level: 1 }).length / payload.length
    expect(ratio).toBeGreaterThan(0.9)
    expect(ratio).toBeLessThan(1)
    expect(new Compressor('deflate', resolveCompressionOptions(undefined)).compress(payload)).toBeUndefined()
  })

  it('backs off after an attempt that does not pay: skips 1, 2, 4 … 64 payloads before trying again', () => {
    const c = new Compressor('deflate', resolveCompressionOptions(undefined))
    const good = text(4096)
    const noise = () => randomBytes(4096)
    for (const skips of [1, 2, 4, 8, 16, 32, 64, 64]) {
      expect(c.compress(noise())).toBeUndefined() // tried, did not pay
      for (let i = 0; i < skips; i++) expect(c.compress(good)).toBeUndefined()
      // Payloads below the threshold never count as skipped attempts.
      expect(c.compress(text(100))).toBeUndefined()
    }
    // After the 64th skip it tries again, and a payload that pays resets the back-off.
    expect(c.compress(good)).toBeInstanceOf(Buffer)
    expect(c.compress(noise())).toBeUndefined()
    expect(c.compress(good)).toBeUndefined()
    expect(c.compress(good)).toBeInstanceOf(Buffer)
  })

  it('guesses from a sample that random bytes will not compress and text will', () => {
    // Every one of 2,000 random payloads, of every size from 256 B to 64 KiB.
    let missed = 0
    for (let i = 0; i < 2000; i++) if (!looksIncompressible(randomBytes(256 + ((i * 37) % 65_280)))) missed++
    expect(missed).toBe(0)
    expect(looksIncompressible(text(64 * 1024))).toBe(false)
    expect(looksIncompressible(Buffer.from(JSON.stringify({ ids: [1, 2, 3], name: 'x'.repeat(5000) })))).toBe(
      false,
    )
  })

  it('never compresses an empty payload, even with threshold 0', () => {
    const eager = new Compressor('deflate', resolveCompressionOptions({ threshold: 0 }))
    expect(eager.compress(Buffer.alloc(0))).toBeUndefined()
    expect(eager.compress(text(200))).toBeInstanceOf(Buffer)
  })
})

describe('decompress', () => {
  it('inflates what the compressor wrote', () => {
    const payload = text(100_000)
    expect(decompress('deflate', deflateRawSync(payload), MIB).equals(payload)).toBe(true)
  })

  it('inflates up to exactly the limit and fails one byte past it with RESOURCE_EXHAUSTED', () => {
    const payload = text(10_000)
    const deflated = deflateRawSync(payload)
    expect(decompress('deflate', deflated, 10_000).equals(payload)).toBe(true)
    const err = thrown(() => decompress('deflate', deflated, 9_999))
    expect(err.code).toBe(Code.RESOURCE_EXHAUSTED)
  })

  it('stops a zip bomb at the limit instead of inflating it', () => {
    // 1 GiB of zeros in about 1 MiB: 1024 independently flushed copies of 1 MiB, then a final block.
    const piece = deflateRawSync(Buffer.alloc(MIB), { finishFlush: constants.Z_FULL_FLUSH })
    const bomb = Buffer.concat([
      ...Array.from({ length: 1024 }, () => piece),
      deflateRawSync(Buffer.alloc(0)),
    ])
    expect(bomb.length).toBeLessThan(2 * MIB)
    const before = process.memoryUsage().arrayBuffers
    const err = thrown(() => decompress('deflate', bomb, MIB))
    const grown = process.memoryUsage().arrayBuffers - before
    expect(err.code).toBe(Code.RESOURCE_EXHAUSTED)
    // zlib gave up once its output passed the limit (an unbounded inflate would hold 1 GiB here).
    expect((err.cause as NodeJS.ErrnoException).code).toBe('ERR_BUFFER_TOO_LARGE')
    expect(grown).toBeLessThan(64 * MIB)
  })

  it('fails corrupt data with DATA_LOSS', () => {
    // 0x6e: BTYPE 11, a reserved block type.
    const err = thrown(() => decompress('deflate', Buffer.from('not deflate at all'), MIB))
    expect(err.code).toBe(Code.DATA_LOSS)
    expect(err.cause).toBeInstanceOf(Error)
  })

  it('fails zlib-wrapped (RFC 1950) data, which is not what the codec names, with DATA_LOSS', () => {
    const wrapped = deflateSync(Buffer.from('x'.repeat(5000)))
    expect(thrown(() => decompress('deflate', wrapped, MIB)).code).toBe(Code.DATA_LOSS)
  })

  it('fails a codec it does not know with PROTOCOL_ERROR', () => {
    expect(thrown(() => decompress('zstd', Buffer.alloc(4), MIB)).code).toBe(Code.PROTOCOL_ERROR)
  })
})

describe('decompressAsync (zlib thread pool)', () => {
  const rejection = async (promise: Promise<unknown>): Promise<RpcError> => {
    const err = await promise.then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(RpcError)
    return err as RpcError
  }

  it('inflates what the compressor wrote, up to exactly the limit', async () => {
    const payload = text(100_000)
    expect((await decompressAsync('deflate', deflateRawSync(payload), 100_000)).equals(payload)).toBe(true)
  })

  it('fails one byte past the limit, and a zip bomb, with RESOURCE_EXHAUSTED', async () => {
    const deflated = deflateRawSync(text(10_000))
    expect((await rejection(decompressAsync('deflate', deflated, 9_999))).code).toBe(Code.RESOURCE_EXHAUSTED)
    const piece = deflateRawSync(Buffer.alloc(MIB), { finishFlush: constants.Z_FULL_FLUSH })
    const bomb = Buffer.concat([...Array.from({ length: 256 }, () => piece), deflateRawSync(Buffer.alloc(0))])
    const err = await rejection(decompressAsync('deflate', bomb, MIB))
    expect(err.code).toBe(Code.RESOURCE_EXHAUSTED)
    expect((err.cause as NodeJS.ErrnoException).code).toBe('ERR_BUFFER_TOO_LARGE')
  })

  it('fails corrupt data with DATA_LOSS and an unknown codec with PROTOCOL_ERROR', async () => {
    expect((await rejection(decompressAsync('deflate', Buffer.from('not deflate at all'), MIB))).code).toBe(
      Code.DATA_LOSS,
    )
    expect((await rejection(decompressAsync('zstd', Buffer.alloc(4), MIB))).code).toBe(Code.PROTOCOL_ERROR)
  })
})

describe('Compressor.compressAsync', () => {
  it('deflates on the pool to the same bytes as the sync path, and decides "as it is" at once', async () => {
    const c = new Compressor('deflate', resolveCompressionOptions(true))
    const payload = text(256 * 1024)
    const out = await c.compressAsync(payload)
    expect(out?.equals(deflateRawSync(payload, { level: 1 }))).toBe(true)
    expect(c.compressAsync(text(100))).toBeUndefined()
    expect(c.compressAsync(randomBytes(128 * 1024))).toBeUndefined()
  })
})

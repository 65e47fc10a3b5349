import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  decodeUtf8,
  decodeUtf8Strict,
  encodeUtf8,
  readU16,
  readU32,
  utf8Length,
  writeU16,
  writeU32,
  writeUtf8,
} from './bytes'

// Node's Buffer is the reference here: the pure helpers must give the same bytes it does.
const SAMPLES = [
  '',
  '/bench.Echo/Call',
  'é',
  '/ünï/☃/😀',
  '\u007f\u0080\u07ff\u0800\uffff',
  'lone high \ud800 surrogate',
  'lone low \udc00 surrogate',
  'trailing high \ud83d',
  'x'.repeat(300),
]

describe('UTF-8 helpers', () => {
  it.each(SAMPLES)('utf8Length, encodeUtf8 and writeUtf8 agree with Buffer for %j', (text) => {
    expect(utf8Length(text)).toBe(Buffer.byteLength(text, 'utf8'))
    expect(Buffer.from(encodeUtf8(text)).equals(Buffer.from(text, 'utf8'))).toBe(true)
    const target = new Uint8Array(utf8Length(text) + 4).fill(0xee)
    writeUtf8(text, target, 2, utf8Length(text))
    expect(Buffer.from(target.subarray(2, -2)).equals(Buffer.from(text, 'utf8'))).toBe(true)
    expect([...target.subarray(0, 2), ...target.subarray(-2)]).toEqual([0xee, 0xee, 0xee, 0xee])
  })

  it('agree with Buffer for any string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        expect(Buffer.from(encodeUtf8(text)).equals(Buffer.from(text, 'utf8'))).toBe(true)
      }),
    )
  })

  it('decodeUtf8Strict decodes valid text, short or long, and returns undefined for invalid UTF-8', () => {
    for (const text of SAMPLES.filter((t) => !/[\ud800-\udfff]/.test(t))) {
      expect(decodeUtf8Strict(Buffer.from(text, 'utf8'))).toBe(text)
    }
    const framed = Buffer.from('..é..', 'utf8')
    expect(decodeUtf8Strict(framed, 2, 4)).toBe('é')
    for (const hex of ['c328', 'c0af', 'eda080', '2f80', `${'61'.repeat(100)}ff`]) {
      expect(decodeUtf8Strict(Buffer.from(hex, 'hex'))).toBeUndefined()
    }
  })

  it('decodeUtf8 replaces invalid sequences with U+FFFD, as Buffer#toString does', () => {
    const bytes = Buffer.from('61c32862', 'hex')
    expect(decodeUtf8(bytes)).toBe(bytes.toString('utf8'))
  })
})

describe('big-endian integers', () => {
  it('write and read the bytes Buffer writes and reads', () => {
    const ours = new Uint8Array(6)
    writeU16(ours, 0xabcd, 0)
    writeU32(ours, 0xfedc_ba98, 2)
    const node = Buffer.alloc(6)
    node.writeUInt16BE(0xabcd, 0)
    node.writeUInt32BE(0xfedc_ba98, 2)
    expect(Buffer.from(ours).equals(node)).toBe(true)
    expect(readU16(ours, 0)).toBe(0xabcd)
    expect(readU32(ours, 2)).toBe(0xfedc_ba98)
  })
})

describe('a leading U+FEFF', () => {
  it('is kept by both decoders, as the character it is (TextDecoder drops it by default)', () => {
    const bytes = Uint8Array.from([0xef, 0xbb, 0xbf, 0x61])
    expect(decodeUtf8Strict(bytes)).toBe('\uFEFFa')
    expect(decodeUtf8(bytes)).toBe('\uFEFFa')
    expect(decodeUtf8Strict(encodeUtf8('\uFEFF'))).toBe('\uFEFF')
  })
})

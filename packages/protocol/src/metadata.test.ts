import { describe, expect, it } from 'vitest'
import { Code } from './codes'
import {
  DEFAULT_MAX_METADATA_SIZE,
  encodeMetadata,
  encodeTimeoutBlock,
  MAX_METADATA_ENTRIES,
  type Metadata,
  splitMetadata,
  splitTimeoutOnly,
  TIMEOUT_KEY,
} from './metadata'

/** The encoders return plain Uint8Arrays; a Buffer over the same bytes reads them here. */
const asBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

import { RpcError } from './rpc-error'

function thrown(fn: () => unknown): RpcError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(RpcError)
    return err as RpcError
  }
  throw new Error('expected an RpcError')
}

/** A block built by hand: entries of [key bytes, value bytes]. */
function block(...entries: Array<[Buffer | string, Buffer | string]>): Buffer {
  const parts = entries.map(([k, v]) => {
    const key = Buffer.from(k as string, typeof k === 'string' ? 'latin1' : undefined)
    const value = Buffer.from(v as string, typeof v === 'string' ? 'utf8' : undefined)
    const head = Buffer.alloc(1 + key.length + 2)
    head[0] = key.length
    key.copy(head, 1)
    head.writeUInt16BE(value.length, 1 + key.length)
    return Buffer.concat([head, value])
  })
  const body = Buffer.concat(parts)
  const length = Buffer.alloc(4)
  length.writeUInt32BE(body.length)
  return Buffer.concat([length, body])
}

describe('metadata block layout', () => {
  it('is a u32 block length, then per entry a u8 key length, the key, a u16 value length, the value', () => {
    const bytes = asBuffer(encodeMetadata({ [TIMEOUT_KEY]: '250', a: 'é' }))
    expect(bytes.toString('hex')).toBe(
      [
        '00000018', // block length 24 (18 + 6), not counting these 4 bytes
        '0c',
        Buffer.from('srpc-timeout').toString('hex'),
        '0003',
        Buffer.from('250').toString('hex'),
        '01',
        '61', // "a"
        '0002',
        'c3a9', // "é" in UTF-8
      ].join(''),
    )
  })

  it('encodes no entries as a block length of 0', () => {
    expect(asBuffer(encodeMetadata({})).toString('hex')).toBe('00000000')
  })

  it('reserves srpc-timeout for the remaining time in milliseconds', () => {
    expect(TIMEOUT_KEY).toBe('srpc-timeout')
  })
})

describe('splitMetadata', () => {
  it('round-trips keys and UTF-8 values and returns the payload after the block as a view', () => {
    const metadata: Metadata = { [TIMEOUT_KEY]: '1500', 'x-user.id_2': 'Zoë 🚀', empty: '' }
    const value = Buffer.concat([encodeMetadata(metadata), Buffer.from('payload')])
    const split = splitMetadata(value)
    expect({ ...split.metadata }).toEqual(metadata)
    expect(split.payload.toString()).toBe('payload')
    expect(split.payload.buffer).toBe(value.buffer)
    expect(split.payload.byteOffset).toBe(value.byteOffset + value.length - 7)
  })

  it('returns a map without a prototype, so keys cannot reach Object.prototype', () => {
    const { metadata } = splitMetadata(block(['constructor', 'x']))
    expect(Object.getPrototypeOf(metadata)).toBeNull()
    expect(metadata.constructor).toBe('x')
  })

  it('lets a later entry with the same key replace an earlier one', () => {
    expect(splitMetadata(block(['k', '1'], ['k', '2'])).metadata.k).toBe('2')
  })

  it('accepts an empty payload after the block (a session open)', () => {
    const split = splitMetadata(encodeMetadata({ a: 'b' }))
    expect(split.payload.length).toBe(0)
  })

  const malformed: Array<[string, Buffer]> = [
    ['a value shorter than the block length field', Buffer.of(0, 0, 0)],
    ['a block length past the end of the value', Buffer.concat([Buffer.of(0, 0, 0, 9), Buffer.alloc(8)])],
    ['an entry whose key runs past the block', Buffer.of(0, 0, 0, 3, 5, 0x61, 0x62)],
    ['an entry cut before its value length', Buffer.of(0, 0, 0, 2, 1, 0x61)],
    ['a value that runs past the block', Buffer.of(0, 0, 0, 5, 1, 0x61, 0, 9, 0x62)],
    ['an empty key', block(['', 'v'])],
    ['an upper-case key', block(['Auth', 'v'])],
    ['a key with a space', block(['a b', 'v'])],
    ['a key starting with a dash', block(['-a', 'v'])],
    ['a key that is not ASCII', block([Buffer.from('clé'), 'v'])],
    ['a value that is not UTF-8', block(['k', Buffer.of(0xc3, 0x28)])],
  ]
  for (const [name, value] of malformed) {
    it(`rejects ${name} with PROTOCOL_ERROR`, () => {
      expect(thrown(() => splitMetadata(value)).code).toBe(Code.PROTOCOL_ERROR)
    })
  }

  it(`fails a block over the limit (default ${DEFAULT_MAX_METADATA_SIZE} bytes) with RESOURCE_EXHAUSTED, before reading it`, () => {
    expect(DEFAULT_MAX_METADATA_SIZE).toBe(8192)
    // The length alone decides: the block is not even there.
    const err = thrown(() => splitMetadata(Buffer.of(0, 0, 0x20, 0x01)))
    expect(err.code).toBe(Code.RESOURCE_EXHAUSTED)
    const exact = block(['k', 'v'.repeat(8192 - 4)])
    expect(exact.readUInt32BE(0)).toBe(8192)
    expect(splitMetadata(exact).metadata.k).toHaveLength(8188)
    expect(thrown(() => splitMetadata(exact, 8191)).code).toBe(Code.RESOURCE_EXHAUSTED)
  })

  it(`fails more than ${MAX_METADATA_ENTRIES} entries with RESOURCE_EXHAUSTED`, () => {
    const entries = Array.from({ length: MAX_METADATA_ENTRIES + 1 }, (_, i): [string, string] => [
      `k${i}`,
      '',
    ])
    expect(thrown(() => splitMetadata(block(...entries))).code).toBe(Code.RESOURCE_EXHAUSTED)
    expect(Object.keys(splitMetadata(block(...entries.slice(1))).metadata)).toHaveLength(64)
  })

  it('throws only RpcErrors with PROTOCOL_ERROR or RESOURCE_EXHAUSTED for mutated blocks', () => {
    const valid = Buffer.concat([
      encodeMetadata({ [TIMEOUT_KEY]: '100', trace: 'abc-123', user: 'Zoë' }),
      Buffer.from('body'),
    ])
    let seed = 7
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed % n
    }
    const codes = new Set<string>()
    for (let i = 0; i < 5000; i++) {
      const mutated = Buffer.from(valid)
      for (let j = 0, n = 1 + random(3); j < n; j++) mutated[random(mutated.length)] = random(256)
      try {
        splitMetadata(mutated)
        codes.add('ok')
      } catch (err) {
        expect(err).toBeInstanceOf(RpcError)
        codes.add((err as RpcError).code)
      }
    }
    expect([...codes].sort()).toEqual(['PROTOCOL_ERROR', 'RESOURCE_EXHAUSTED', 'ok'].sort())
  })
})

describe('encodeMetadata checks', () => {
  it('refuses keys outside [a-z0-9._-], empty, or longer than 255 bytes with INVALID_ARGUMENT', () => {
    for (const key of ['', 'Upper', 'with space', 'ünï', '_lead', 'a'.repeat(256)]) {
      const err = thrown(() => encodeMetadata({ [key]: 'v' }))
      expect(err.code).toBe(Code.INVALID_ARGUMENT)
    }
    expect(encodeMetadata({ ['a'.repeat(255)]: 'v' })[4]).toBe(255)
  })

  it('refuses a value that is not a string with INVALID_ARGUMENT', () => {
    const err = thrown(() => encodeMetadata({ n: 5 as unknown as string }))
    expect(err.code).toBe(Code.INVALID_ARGUMENT)
  })

  it('refuses a value longer than 65,535 bytes with INVALID_ARGUMENT', () => {
    const err = thrown(() => encodeMetadata({ big: 'x'.repeat(65_536) }, 1_000_000))
    expect(err.code).toBe(Code.INVALID_ARGUMENT)
  })

  it(`refuses more than ${MAX_METADATA_ENTRIES} entries with INVALID_ARGUMENT`, () => {
    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, '']))
    expect(thrown(() => encodeMetadata(many)).code).toBe(Code.INVALID_ARGUMENT)
  })

  it('refuses a block over the size limit with RESOURCE_EXHAUSTED', () => {
    expect(thrown(() => encodeMetadata({ k: 'v'.repeat(8189) })).code).toBe(Code.RESOURCE_EXHAUSTED)
    expect(asBuffer(encodeMetadata({ k: 'v'.repeat(8188) })).readUInt32BE(0)).toBe(8192)
    expect(thrown(() => encodeMetadata({ k: 'v'.repeat(100) }, 50)).code).toBe(Code.RESOURCE_EXHAUSTED)
  })
})

describe('the timeout-only fast path', () => {
  it('encodes the same bytes as the general encoder and reads them back', () => {
    for (const ms of [1, 999, 1000, 123456789012]) {
      const fast = encodeTimeoutBlock(ms)
      expect(fast).toEqual(encodeMetadata({ [TIMEOUT_KEY]: String(ms) }))
      const value = Buffer.concat([fast, Buffer.from('payload')])
      expect(splitTimeoutOnly(value)).toEqual({ timeoutMs: ms, payload: Buffer.from('payload') })
    }
  })

  it('leaves any other block to the general parser', () => {
    const other = Buffer.concat([encodeMetadata({ token: 'abc' }), Buffer.from('p')])
    expect(splitTimeoutOnly(other)).toBeUndefined()
    const two = Buffer.concat([encodeMetadata({ [TIMEOUT_KEY]: '5', token: 'abc' }), Buffer.from('p')])
    expect(splitTimeoutOnly(two)).toBeUndefined()
    const notDigits = Buffer.concat([encodeMetadata({ [TIMEOUT_KEY]: '5x' }), Buffer.from('p')])
    expect(splitTimeoutOnly(notDigits)).toBeUndefined()
    const truncated = encodeTimeoutBlock(1000).subarray(0, 10)
    expect(splitTimeoutOnly(truncated)).toBeUndefined()
  })
})

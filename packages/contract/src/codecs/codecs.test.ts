import { create } from '@bufbuild/protobuf'
import { StringValueSchema } from '@bufbuild/protobuf/wkt'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { bytes } from './bytes'
import { json } from './json'
import { msgpack } from './msgpack'
import { protobuf } from './protobuf'
import { includesBytes } from './utf8'

const any = z.any()

describe('json', () => {
  it('writes what JSON.stringify writes, and undefined as an empty payload', () => {
    expect(Buffer.from(json.encode({ a: [1, 'x'] }, any)).toString()).toBe('{"a":[1,"x"]}')
    expect(json.encode(undefined, any).length).toBe(0)
    expect(json.decode(new Uint8Array(0), any)).toBeUndefined()
    expect(() => json.encode(() => 1, any)).toThrow(/no JSON form/)
  })

  it('reads from a view into a larger buffer', () => {
    const backing = Buffer.from('xx{"n":1}yy')
    expect(json.decode(new Uint8Array(backing.buffer, backing.byteOffset + 2, 7), any)).toEqual({ n: 1 })
  })

  it('refuses __proto__ anywhere and constructor.prototype, escaped or not, but not a key merely named constructor', () => {
    expect(() => json.decode(Buffer.from('{"a":[{"__proto__":{}}]}'), any)).toThrow(/__proto__/)
    expect(() => json.decode(Buffer.from('{"constructor":{"prototype":{}}}'), any)).toThrow(/constructor/)
    expect(() => json.decode(Buffer.from('{"\\u005f_proto__":{}}'), any)).toThrow(/__proto__/)
    expect(() => json.decode(Buffer.from('{"a":{"__pro\\u0074o__":{}}}'), any)).toThrow(/__proto__/)
    expect(() => json.decode(Buffer.from('{"\\u0063onstructor":{"prototype":{}}}'), any)).toThrow(
      /constructor/,
    )
    expect(json.decode(Buffer.from('{"text":"caf\\u00e9","constructor":"Foo"}'), any)).toEqual({
      text: 'café',
      constructor: 'Foo',
    })
    expect(json.decode(Buffer.from('{"constructor":"Foo","text":"__proto__"}'), any)).toEqual({
      constructor: 'Foo',
      text: '__proto__',
    })
  })
})

describe('msgpack', () => {
  it('writes plain MessagePack maps (no msgpackr records) and keeps Date and bytes', () => {
    // map16 of 1 entry (msgpackr reserves the size up front), "a" → 1: readable by any MessagePack library.
    expect([...msgpack.encode({ a: 1 }, any)]).toEqual([0xde, 0x00, 0x01, 0xa1, 0x61, 0x01])
    const value = msgpack.decode(
      msgpack.encode({ at: new Date(1234), b: Uint8Array.of(1, 2) }, any),
      any,
    ) as {
      at: Date
      b: Uint8Array
    }
    expect(value.at.getTime()).toBe(1234)
    expect([...value.b]).toEqual([1, 2])
  })

  it('refuses a __proto__ key (which msgpackr reads as __proto_)', () => {
    const payload = Buffer.concat([Buffer.of(0x81, 0xa9), Buffer.from('__proto__'), Buffer.of(0x80)])
    expect(() => msgpack.decode(payload, any)).toThrow(/__proto__/)
  })

  it('refuses a hostile key inside a plain Uint8Array view, and reads an ordinary one', () => {
    const hostile = msgpack.encode({ constructor: { prototype: { x: 1 } } }, any)
    const backing = new Uint8Array(hostile.length + 8)
    backing.set(hostile, 4)
    expect(() => msgpack.decode(backing.subarray(4, 4 + hostile.length), any)).toThrow(/constructor/)
    const plain = new Uint8Array(msgpack.encode({ constructor: 'Foo', text: 'héllo' }, any))
    expect(msgpack.decode(plain, any)).toEqual({ constructor: 'Foo', text: 'héllo' })
  })
})

describe('includesBytes', () => {
  const bytesOf = (text: string) => new TextEncoder().encode(text)

  it('finds a subsequence anywhere, including at the edges and after a false start', () => {
    expect(includesBytes(bytesOf('constructor'), bytesOf('constructor'))).toBe(true)
    expect(includesBytes(bytesOf('xx__proto_'), bytesOf('__proto_'))).toBe(true)
    expect(includesBytes(bytesOf('__pro__proto_x'), bytesOf('__proto_'))).toBe(true)
    expect(includesBytes(bytesOf('a'), bytesOf(''))).toBe(true)
  })

  it('does not find what is absent or cut off at the end', () => {
    expect(includesBytes(bytesOf('__proto'), bytesOf('__proto_'))).toBe(false)
    expect(includesBytes(bytesOf('constructo r'), bytesOf('constructor'))).toBe(false)
    expect(includesBytes(new Uint8Array(0), bytesOf('x'))).toBe(false)
  })
})

describe('protobuf', () => {
  it('encodes a message or an init object alike, and decodes to a message', () => {
    const fromInit = protobuf.encode({ value: 'hi' }, StringValueSchema)
    const fromMessage = protobuf.encode(create(StringValueSchema, { value: 'hi' }), StringValueSchema)
    expect([...fromInit]).toEqual([0x0a, 0x02, 0x68, 0x69])
    expect([...fromMessage]).toEqual([...fromInit])
    expect((protobuf.decode(fromInit, StringValueSchema) as { value: string }).value).toBe('hi')
  })

  it('needs a message type as its schema', () => {
    expect(() => protobuf.encode({}, any)).toThrow(/message types/)
  })
})

describe('bytes', () => {
  it('passes Uint8Arrays through and refuses anything else', () => {
    const payload = Uint8Array.of(9)
    expect(bytes.encode(payload, any)).toBe(payload)
    expect(bytes.decode(payload, any)).toBe(payload)
    expect(() => bytes.encode('text', any)).toThrow(/Uint8Arrays/)
  })
})

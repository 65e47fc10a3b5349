import { describe, expect, it } from 'vitest'
import { encodeUtf8 } from './bytes'
import { decodeAsciiCached, encodedType, encodedTypeCount } from './type-cache'

const ascii = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0))

describe('decodeAsciiCached', () => {
  it('decodes the bytes it is given, seen before or not', () => {
    const bytes = ascii('xx/svc/echoyy')
    expect(decodeAsciiCached(bytes, 2, 11)).toBe('/svc/echo')
    expect(decodeAsciiCached(bytes, 2, 11)).toBe('/svc/echo')
    expect(decodeAsciiCached(bytes, 0, 13)).toBe('xx/svc/echoyy')
    expect(decodeAsciiCached(bytes, 2, 2)).toBe('')
  })

  it('keeps its own copy: bytes changed in place after a lookup decode as what they now are', () => {
    const chunk = ascii('/svc/echo')
    expect(decodeAsciiCached(chunk, 0, chunk.length)).toBe('/svc/echo')
    chunk[5] = 'f'.charCodeAt(0) // the reader's buffer is reused for the next bytes
    expect(decodeAsciiCached(chunk, 0, chunk.length)).toBe('/svc/fcho')
    chunk[5] = 'e'.charCodeAt(0)
    expect(decodeAsciiCached(chunk, 0, chunk.length)).toBe('/svc/echo')
  })

  it('is not fooled by the chunk a route was read from holding another route later', () => {
    const chunk = ascii('/svc/a000')
    expect(decodeAsciiCached(chunk, 0, chunk.length)).toBe('/svc/a000')
    // Some of these land in the first route's slot: a cache keeping a view of the chunk would
    // then see its key change under it and answer with the first route.
    for (let i = 1; i < 2000; i++) {
      const route = `/svc/b${i.toString(36).padStart(3, '0')}`
      chunk.set(ascii(route))
      expect(decodeAsciiCached(ascii(route), 0, route.length)).toBe(route)
    }
  })

  it('tells apart thousands of routes that share slots, lengths and prefixes', () => {
    const routes = Array.from({ length: 5000 }, (_, i) => `/svc/m${i.toString(36).padStart(3, '0')}`)
    for (let round = 0; round < 3; round++) {
      for (const route of routes) {
        const bytes = ascii(`!${route}!`)
        expect(decodeAsciiCached(bytes, 1, bytes.length - 1)).toBe(route)
      }
    }
  })

  it('returns undefined for bytes that are not ASCII, and caches nothing for them', () => {
    const bytes = Uint8Array.of(0x2f, 0xc3, 0xa9)
    expect(decodeAsciiCached(bytes, 0, 3)).toBeUndefined()
    expect(decodeAsciiCached(bytes, 0, 3)).toBeUndefined()
  })

  it('decodes types longer than it caches', () => {
    const long = `/${'a'.repeat(200)}`
    expect(decodeAsciiCached(ascii(long), 0, long.length)).toBe(long)
  })
})

describe('encodedType', () => {
  it('gives the UTF-8 bytes of every type, seen before or not', () => {
    for (const type of [
      '/svc/echo',
      '/svc/écho',
      '/svc/🚀',
      '/svc/echo',
      `/${'a'.repeat(63)}`,
      '/svc/\ud800',
    ]) {
      expect(encodedType(type)).toEqual(encodeUtf8(type))
    }
  })

  it('caches nothing for a type longer than it holds', () => {
    expect(encodedType(`/${'a'.repeat(200)}`)).toBeUndefined()
  })

  it('holds at most 256 types however many it is given, and still encodes each right', () => {
    for (let i = 0; i < 2000; i++) {
      const type = `/svc/m${i.toString(36)}`
      expect(encodedType(type)).toEqual(encodeUtf8(type))
      expect(encodedTypeCount()).toBeLessThanOrEqual(256)
    }
    expect(encodedTypeCount()).toBeGreaterThan(0)
  })
})

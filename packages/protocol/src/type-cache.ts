import { decodeAscii, encodeUtf8 } from './bytes'

/** Entries of the cache: a power of two, so a hash picks a slot with a mask. */
const SLOTS = 256
/** Longer types are decoded every time: routes are short names. */
const MAX_CACHED_LENGTH = 64

/**
 * The types (routes) decoded recently, shared by every decoder in the process. A server reads
 * the same few routes on every request: taking one from here costs a hash and a comparison of
 * its bytes, where decoding it builds a new string one character at a time (and the router's Map
 * then hashes that new string again; a cached one keeps its hash). Direct-mapped and bounded: a
 * peer sending ever new routes only replaces entries. Each entry keeps its own copy of the
 * bytes, never a view of a chunk (the chunk's memory is reused once the frame is handed out).
 */
const keys: (Uint8Array | undefined)[] = new Array(SLOTS).fill(undefined)
const texts: string[] = new Array(SLOTS).fill('')

/** `bytes[start..end)` as ASCII, from the cache when the same bytes were decoded before; undefined when not ASCII. */
export function decodeAsciiCached(bytes: Uint8Array, start: number, end: number): string | undefined {
  const n = end - start
  if (n > MAX_CACHED_LENGTH) return decodeAscii(bytes, start, end)
  let hash = n
  for (let i = start; i < end; i++) hash = (Math.imul(hash, 31) + bytes[i]) | 0
  const slot = (hash ^ (hash >>> 15)) & (SLOTS - 1)
  const key = keys[slot]
  if (key !== undefined && key.length === n) {
    let i = 0
    while (i < n && key[i] === bytes[start + i]) i++
    if (i === n) return texts[slot]
  }
  const text = decodeAscii(bytes, start, end)
  if (text !== undefined) {
    const copy = new Uint8Array(n)
    for (let i = 0; i < n; i++) copy[i] = bytes[start + i]
    keys[slot] = copy
    texts[slot] = text
  }
  return text
}

/**
 * The encoding side: the UTF-8 bytes of the types (routes) written recently, shared by every
 * writer in the process. A client sends the same few routes on every request: copying cached
 * bytes costs less than measuring and encoding the string one character at a time, twice (its
 * length for the header, then its bytes). Keyed by the string (whose hash V8 keeps in it), with
 * the last one looked up in front (a unary client mostly sends one route after another), and
 * bounded: a caller sending ever new routes empties the map once it holds ENCODED_SLOTS.
 */
const ENCODED_SLOTS = 256
const encoded = new Map<string, Uint8Array>()
let lastType = ''
let lastBytes: Uint8Array = new Uint8Array(0)

/** `type` as UTF-8, from the cache; undefined for a type longer than the cache holds (encode it each time). */
export function encodedType(type: string): Uint8Array | undefined {
  if (type === lastType) return lastBytes
  if (type.length > MAX_CACHED_LENGTH) return undefined
  let bytes = encoded.get(type)
  if (bytes === undefined) {
    bytes = encodeUtf8(type)
    if (encoded.size >= ENCODED_SLOTS) encoded.clear()
    encoded.set(type, bytes)
  }
  lastType = type
  lastBytes = bytes
  return bytes
}

/** Entries in the encoding cache (for tests of its bound). */
export function encodedTypeCount(): number {
  return encoded.size
}

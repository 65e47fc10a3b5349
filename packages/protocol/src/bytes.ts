/**
 * Byte helpers over plain Uint8Arrays: big-endian integers and UTF-8, with no Node `Buffer`, so
 * that a browser can load this package. Routes, metadata keys and most values are short ASCII:
 * those take a charCode loop, and only other text goes through TextEncoder/TextDecoder.
 */

// The ES library this package compiles against has no TextEncoder/TextDecoder types (they come
// from the DOM or Node typings, which it deliberately does not see): these describe the part used.
interface Utf8Encoder {
  encodeInto(text: string, target: Uint8Array): { read: number; written: number }
}
interface Utf8Decoder {
  decode(bytes: Uint8Array): string
}
const platform = globalThis as unknown as {
  TextEncoder: new () => Utf8Encoder
  TextDecoder: new (label: 'utf-8', options?: { fatal?: boolean; ignoreBOM?: boolean }) => Utf8Decoder
}
const encoder = new platform.TextEncoder()
// ignoreBOM keeps a leading U+FEFF as the character it is: a decoder left to its default drops
// it, and a route or key that starts with one would come back without it.
/** Throws a TypeError on invalid UTF-8, where the lenient one puts U+FFFD. */
const strictDecoder = new platform.TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
const lenientDecoder = new platform.TextDecoder('utf-8', { ignoreBOM: true })

export const EMPTY_BYTES = new Uint8Array(0)

export function readU16(buf: Uint8Array, offset: number): number {
  return (buf[offset] << 8) | buf[offset + 1]
}

export function readU32(buf: Uint8Array, offset: number): number {
  return ((buf[offset] << 24) | (buf[offset + 1] << 16) | (buf[offset + 2] << 8) | buf[offset + 3]) >>> 0
}

export function writeU16(buf: Uint8Array, value: number, offset: number): void {
  buf[offset] = value >>> 8
  buf[offset + 1] = value
}

export function writeU32(buf: Uint8Array, value: number, offset: number): void {
  buf[offset] = value >>> 24
  buf[offset + 1] = value >>> 16
  buf[offset + 2] = value >>> 8
  buf[offset + 3] = value
}

/** Bytes `text` takes as UTF-8 (a lone surrogate counts 3, as the encoder writes U+FFFD). */
export function utf8Length(text: string): number {
  const n = text.length
  let length = n
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x80) continue
    if (c < 0x800) {
      length += 1
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      length += 2 // a pair: two UTF-16 units, four bytes
      i++
    } else {
      length += 2
    }
  }
  return length
}

/**
 * Writes `text` as UTF-8 into `target` at `offset`, at most `length` bytes (its utf8Length).
 * ASCII is copied byte by byte: for a short route that is several times faster than encodeInto.
 */
export function writeUtf8(text: string, target: Uint8Array, offset: number, length: number): void {
  if (length === text.length) {
    let i = 0
    for (; i < length; i++) {
      const c = text.charCodeAt(i)
      if (c >= 0x80) break
      target[offset + i] = c
    }
    if (i === length) return
  }
  encoder.encodeInto(text, target.subarray(offset, offset + length))
}

/** `text` as UTF-8 in a new array. */
export function encodeUtf8(text: string): Uint8Array {
  const length = utf8Length(text)
  const out = new Uint8Array(length)
  writeUtf8(text, out, 0, length)
  return out
}

/** Decodes `bytes[start..end)` as Latin-1: one char per byte (for short keys and messages). */
export function decodeLatin1(bytes: Uint8Array, start: number, end: number): string {
  let text = ''
  for (let i = start; i < end; i++) text += String.fromCharCode(bytes[i])
  return text
}

/**
 * Decodes `bytes[start..end)` as ASCII without a view; undefined when a byte is not ASCII.
 * Short strings (routes, keys) are built faster this way than by a TextDecoder call.
 */
export function decodeAscii(bytes: Uint8Array, start: number, end: number): string | undefined {
  let text = ''
  for (let i = start; i < end; i++) {
    const c = bytes[i]
    if (c >= 0x80) return undefined
    text += String.fromCharCode(c)
  }
  return text
}

/** Longest text decoded by the ASCII loop; longer text is faster through the TextDecoder. */
const ASCII_LOOP_MAX = 64

/** Decodes UTF-8, or returns undefined when the bytes are not valid UTF-8. */
export function decodeUtf8Strict(bytes: Uint8Array, start = 0, end = bytes.length): string | undefined {
  if (end - start <= ASCII_LOOP_MAX) {
    const ascii = decodeAscii(bytes, start, end)
    if (ascii !== undefined) return ascii
  }
  try {
    return strictDecoder.decode(bytes.subarray(start, end))
  } catch {
    return undefined
  }
}

/** Decodes UTF-8, replacing invalid sequences with U+FFFD (for text that is only shown). */
export function decodeUtf8(bytes: Uint8Array): string {
  return lenientDecoder.decode(bytes)
}

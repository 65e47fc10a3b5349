import { EMPTY_BYTES, encodeUtf8, readU32, utf8Length, writeU16, writeU32, writeUtf8 } from './bytes'
import { Code } from './codes'
import { RpcError } from './rpc-error'
import { encodedType } from './type-cache'

/** Bytes in the fixed v1 header: version, flags, id (8), type length (2), value length (4). */
export const HEADER_SIZE = 16
export const PROTOCOL_VERSION = 1
/** The largest type length the header can carry. */
export const MAX_TYPE_LENGTH = 0xffff
/** The largest value length the header can carry. */
export const MAX_VALUE_LENGTH = 0xffffffff

/**
 * A frame id is an unsigned 64-bit integer. Ids below 2^53 are plain numbers so the hot path
 * never touches BigInt; larger ids (the reference sets the top bit on some) are bigints.
 * Both kinds compare by value as Map keys.
 */
export type FrameId = number | bigint

/**
 * A decoded frame. `B` is the byte type of its value: the decoder hands out views of the chunks
 * it was given, so chunks that are Node Buffers give Buffer values (see FrameDecoder's `alloc`).
 */
export interface Frame<B extends Uint8Array = Uint8Array> {
  flags: number
  id: FrameId
  /** The route on requests and session opens; usually empty on other frames. */
  type: string
  value: B
}

const TWO_32 = 0x1_0000_0000
/** Highest `hi` word for which hi * 2^32 + lo stays a safe integer. */
const SAFE_HI_LIMIT = 0x20_0000

export function readId(buf: Uint8Array, offset: number): FrameId {
  const hi = readU32(buf, offset)
  const lo = readU32(buf, offset + 4)
  if (hi < SAFE_HI_LIMIT) return hi * TWO_32 + lo
  return (BigInt(hi) << 32n) | BigInt(lo)
}

export function writeId(buf: Uint8Array, id: FrameId, offset: number): void {
  if (typeof id === 'number') {
    if (id >>> 0 === id) {
      // Below 2^32 (every id of a connection's first four billion calls): no division.
      buf[offset] = 0
      buf[offset + 1] = 0
      buf[offset + 2] = 0
      buf[offset + 3] = 0
      writeU32(buf, id, offset + 4)
      return
    }
    if (!Number.isSafeInteger(id) || id < 0) {
      throw new RpcError(Code.INVALID_ARGUMENT, `frame id must be an unsigned 64-bit integer, got ${id}`)
    }
    const hi = Math.floor(id / TWO_32)
    writeU32(buf, hi, offset)
    writeU32(buf, id - hi * TWO_32, offset + 4)
    return
  }
  if (id < 0n || id > 0xffff_ffff_ffff_ffffn) {
    throw new RpcError(Code.INVALID_ARGUMENT, `frame id must be an unsigned 64-bit integer, got ${id}`)
  }
  writeU32(buf, Number(id >> 32n), offset)
  writeU32(buf, Number(id & 0xffff_ffffn), offset + 4)
}

/** Normalises a bigint id that fits in 53 bits to a number, so both spellings map to one key. */
export function normalizeId(id: FrameId): FrameId {
  if (typeof id === 'bigint' && id < 2n ** 53n && id >= 0n) return Number(id)
  return id
}

/**
 * How a platform makes its byte type, for `payloadBytesWith`: plain Uint8Arrays here, Node
 * Buffers in @srpc/core (whose string encoding is also several times faster than TextEncoder's).
 */
export interface ByteFactory<B extends Uint8Array> {
  /** A string as UTF-8. */
  fromString(text: string): B
  /** A Uint8Array as a B over the same memory, without copying. */
  fromBytes(bytes: Uint8Array): B
  /** The empty value (for `undefined`). */
  readonly empty: B
}

/**
 * Makes the one type check for payloads, replies, chunks and messages, producing bytes of type
 * `B`: a string as UTF-8, a Uint8Array as it is, `undefined` as empty. Anything else is a caller's
 * bug reaching us from plain JavaScript or through an `as any`: it throws INVALID_ARGUMENT naming
 * `what` and the type received, where a conversion would throw a bare TypeError (or, for a
 * number, silently allocate).
 */
export function payloadBytesWith<B extends Uint8Array>(
  factory: ByteFactory<B>,
): (value: unknown, what: string) => B {
  const { fromString, fromBytes, empty } = factory
  return (value, what) => {
    if (typeof value === 'string') return fromString(value)
    if (value instanceof Uint8Array) return fromBytes(value)
    if (value === undefined) return empty
    throw new RpcError(
      Code.INVALID_ARGUMENT,
      `${what} must be a string or Uint8Array, got ${describeType(value)}`,
    )
  }
}

/** The bytes of a payload as a plain Uint8Array (a Uint8Array given is returned as it is). */
export const payloadBytes: (value: unknown, what: string) => Uint8Array = payloadBytesWith<Uint8Array>({
  fromString: encodeUtf8,
  fromBytes: (bytes) => bytes,
  empty: EMPTY_BYTES,
})

/** Same as `payloadBytes(data, 'data')`. */
export function toBytes(data: Uint8Array | string): Uint8Array {
  return payloadBytes(data, 'data')
}

/** Throws INVALID_ARGUMENT unless `route` is a non-empty string (a frame type). */
export function checkRoute(route: unknown): asserts route is string {
  if (typeof route !== 'string' || route.length === 0) {
    const got = typeof route === 'string' ? 'an empty string' : describeType(route)
    throw new RpcError(Code.INVALID_ARGUMENT, `route must be a non-empty string, got ${got}`)
  }
}

/**
 * Names a value's type for an error message: `null`, `array`, a binary type by its name
 * (`ArrayBuffer`, `Uint16Array`, `DataView`), `object`, or what `typeof` says.
 */
export function describeType(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  if (typeof value !== 'object') return typeof value
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
    return Object.prototype.toString.call(value).slice(8, -1)
  }
  return 'object'
}

/**
 * Writes a frame's header (and its type) into `target` at `offset` and returns the number of
 * bytes written (16 + the type's UTF-8 length). The value is not copied: a caller that writes
 * header and value separately (large values) uses this; `encodeFrame` uses it for one buffer.
 */
export function writeHeader(
  target: Uint8Array,
  offset: number,
  flags: number,
  id: FrameId,
  type: string,
  typeLength: number,
  valueLength: number,
): number {
  // A Uint8Array store would silently keep only the low byte of a bad flags value.
  if ((flags & 0xff) !== flags) {
    throw new RpcError(Code.INVALID_ARGUMENT, `frame flags must be an integer 0..255, got ${flags}`)
  }
  if (typeLength > MAX_TYPE_LENGTH) {
    throw new RpcError(
      Code.INVALID_ARGUMENT,
      `frame type is ${typeLength} bytes; the most is ${MAX_TYPE_LENGTH}`,
    )
  }
  if (valueLength > MAX_VALUE_LENGTH) {
    throw new RpcError(
      Code.INVALID_ARGUMENT,
      `frame value is ${valueLength} bytes; the most is ${MAX_VALUE_LENGTH}`,
    )
  }
  target[offset] = PROTOCOL_VERSION
  target[offset + 1] = flags
  writeId(target, id, offset + 2)
  writeU16(target, typeLength, offset + 10)
  writeU32(target, valueLength, offset + 12)
  if (typeLength > 0) {
    // A route sent before is copied from the cache, not encoded again.
    const bytes = encodedType(type)
    if (bytes === undefined || bytes.length !== typeLength) {
      writeUtf8(type, target, offset + HEADER_SIZE, typeLength)
    } else {
      const at = offset + HEADER_SIZE
      for (let i = 0; i < typeLength; i++) target[at + i] = bytes[i]
    }
  }
  return HEADER_SIZE + typeLength
}

/** Size in bytes of a type string on the wire. */
export function typeByteLength(type: string): number {
  if (type.length === 0) return 0
  return encodedType(type)?.length ?? utf8Length(type)
}

/** Allocates the bytes an encoder writes into; every byte of it is then written. */
export type Alloc<B extends Uint8Array> = (size: number) => B

const newBytes: Alloc<Uint8Array> = (size) => new Uint8Array(size)

/**
 * Encodes a whole frame into one freshly allocated buffer: one allocation, one copy of the value.
 * `alloc` makes that buffer (default `new Uint8Array`; Node code may pass `Buffer.allocUnsafe`,
 * which is several times faster for frames over 64 bytes and returns a Buffer).
 */
export function encodeFrame<B extends Uint8Array = Uint8Array>(
  flags: number,
  id: FrameId,
  type: string,
  value: Uint8Array,
  alloc: Alloc<B> = newBytes as Alloc<B>,
): B {
  const typeLength = typeByteLength(type)
  const out = alloc(HEADER_SIZE + typeLength + value.byteLength)
  const headerLength = writeHeader(out, 0, flags, id, type, typeLength, value.byteLength)
  out.set(value, headerLength)
  return out
}

/** Encodes only the header and type; the caller writes the value after it untouched. */
export function encodeHeader<B extends Uint8Array = Uint8Array>(
  flags: number,
  id: FrameId,
  type: string,
  valueLength: number,
  alloc: Alloc<B> = newBytes as Alloc<B>,
): B {
  const typeLength = typeByteLength(type)
  const out = alloc(HEADER_SIZE + typeLength)
  writeHeader(out, 0, flags, id, type, typeLength, valueLength)
  return out
}

import { Code } from './codes'
import { RpcError } from './rpc-error'

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

export interface Frame {
  flags: number
  id: FrameId
  /** The route on requests and session opens; usually empty on other frames. */
  type: string
  value: Buffer
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

export function writeId(buf: Buffer, id: FrameId, offset: number): void {
  if (typeof id === 'number') {
    if (!Number.isSafeInteger(id) || id < 0) {
      throw new RpcError(Code.INVALID_ARGUMENT, `frame id must be an unsigned 64-bit integer, got ${id}`)
    }
    const hi = Math.floor(id / TWO_32)
    buf.writeUInt32BE(hi, offset)
    buf.writeUInt32BE(id - hi * TWO_32, offset + 4)
    return
  }
  if (id < 0n || id > 0xffff_ffff_ffff_ffffn) {
    throw new RpcError(Code.INVALID_ARGUMENT, `frame id must be an unsigned 64-bit integer, got ${id}`)
  }
  buf.writeBigUInt64BE(id, offset)
}

function readU32(buf: Uint8Array, offset: number): number {
  return ((buf[offset] << 24) | (buf[offset + 1] << 16) | (buf[offset + 2] << 8) | buf[offset + 3]) >>> 0
}

/** Normalises a bigint id that fits in 53 bits to a number, so both spellings map to one key. */
export function normalizeId(id: FrameId): FrameId {
  if (typeof id === 'bigint' && id < 2n ** 53n && id >= 0n) return Number(id)
  return id
}

const EMPTY = Buffer.alloc(0)

/**
 * The bytes of a payload, reply, chunk or message: a string as UTF-8, a Uint8Array as it is,
 * `undefined` as empty. Anything else is a caller's bug reaching us from plain JavaScript or
 * through an `as any`: it throws INVALID_ARGUMENT naming `what` and the type received, where
 * Buffer.from would throw a bare TypeError (or, for a number, silently allocate).
 */
export function payloadBytes(value: unknown, what: string): Buffer {
  if (typeof value === 'string') return Buffer.from(value, 'utf8')
  if (Buffer.isBuffer(value)) return value
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  if (value === undefined) return EMPTY
  throw new RpcError(
    Code.INVALID_ARGUMENT,
    `${what} must be a string or Uint8Array, got ${describeType(value)}`,
  )
}

/** Same as `payloadBytes(data, 'data')`. */
export function toBuffer(data: Uint8Array | string): Buffer {
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
  target: Buffer,
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
  target.writeUInt16BE(typeLength, offset + 10)
  target.writeUInt32BE(valueLength, offset + 12)
  if (typeLength > 0) target.write(type, offset + HEADER_SIZE, typeLength, 'utf8')
  return HEADER_SIZE + typeLength
}

/** Size in bytes of a type string on the wire. */
export function typeByteLength(type: string): number {
  return type.length === 0 ? 0 : Buffer.byteLength(type, 'utf8')
}

/** Encodes a whole frame into one freshly allocated buffer: one allocation, one copy of the value. */
export function encodeFrame(flags: number, id: FrameId, type: string, value: Uint8Array): Buffer {
  const typeLength = typeByteLength(type)
  const out = Buffer.allocUnsafe(HEADER_SIZE + typeLength + value.byteLength)
  const headerLength = writeHeader(out, 0, flags, id, type, typeLength, value.byteLength)
  out.set(value, headerLength)
  return out
}

/** Encodes only the header and type; the caller writes the value after it untouched. */
export function encodeHeader(flags: number, id: FrameId, type: string, valueLength: number): Buffer {
  const typeLength = typeByteLength(type)
  const out = Buffer.allocUnsafe(HEADER_SIZE + typeLength)
  writeHeader(out, 0, flags, id, type, typeLength, valueLength)
  return out
}

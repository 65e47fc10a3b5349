import {
  decodeLatin1,
  decodeUtf8Strict,
  readU16,
  readU32,
  utf8Length,
  writeU16,
  writeU32,
  writeUtf8,
} from './bytes'
import { Code } from './codes'
import { RpcError } from './rpc-error'

/** Per-call key/value pairs. Keys are lowercase ASCII; values are UTF-8 strings. */
export type Metadata = Record<string, string>

export const DEFAULT_MAX_METADATA_SIZE = 8 * 1024
export const MAX_METADATA_ENTRIES = 64
/** Reserved key carrying the call's remaining time in milliseconds (decimal), set by the client. */
export const TIMEOUT_KEY = 'srpc-timeout'

const KEY_PATTERN = /^[a-z0-9][a-z0-9._-]{0,254}$/

/**
 * Encodes metadata as the block that prefixes a METADATA-flagged value:
 * u32 BE block length, then per entry: u8 key length, key, u16 BE value length, value.
 */
export function encodeMetadata(metadata: Metadata, maxSize = DEFAULT_MAX_METADATA_SIZE): Uint8Array {
  const entries = Object.entries(metadata)
  if (entries.length > MAX_METADATA_ENTRIES) {
    throw new RpcError(
      Code.INVALID_ARGUMENT,
      `metadata has ${entries.length} entries; the most is ${MAX_METADATA_ENTRIES}`,
    )
  }
  let size = 4
  // UTF-8 length of each value, in entry order; keys are ASCII (KEY_PATTERN), one byte a char.
  const valueLengths: number[] = []
  for (const [key, value] of entries) {
    if (!KEY_PATTERN.test(key)) {
      throw new RpcError(
        Code.INVALID_ARGUMENT,
        `metadata key ${JSON.stringify(key)} must be lowercase [a-z0-9._-]`,
      )
    }
    if (typeof value !== 'string') {
      throw new RpcError(Code.INVALID_ARGUMENT, `metadata value for ${JSON.stringify(key)} must be a string`)
    }
    const valueLength = utf8Length(value)
    if (valueLength > 0xffff)
      throw new RpcError(Code.INVALID_ARGUMENT, `metadata value for ${key} is too long`)
    size += 1 + key.length + 2 + valueLength
    valueLengths.push(valueLength)
  }
  if (size - 4 > maxSize) {
    throw new RpcError(Code.RESOURCE_EXHAUSTED, `metadata is ${size - 4} bytes; the limit is ${maxSize}`)
  }
  const out = new Uint8Array(size)
  writeU32(out, size - 4, 0)
  let offset = 4
  for (let i = 0; i < entries.length; i++) {
    const [key, value] = entries[i]
    out[offset++] = key.length
    writeUtf8(key, out, offset, key.length)
    offset += key.length
    writeU16(out, valueLengths[i], offset)
    offset += 2
    writeUtf8(value, out, offset, valueLengths[i])
    offset += valueLengths[i]
  }
  return out
}

/**
 * Splits a METADATA-flagged value into its metadata and payload (a view, not a copy).
 * Malformed blocks are PROTOCOL_ERROR; blocks over `maxSize` are RESOURCE_EXHAUSTED.
 */
export function splitMetadata<B extends Uint8Array>(
  value: B,
  maxSize = DEFAULT_MAX_METADATA_SIZE,
): { metadata: Metadata; payload: B } {
  if (value.length < 4) throw malformed('metadata block length missing')
  const blockLength = readU32(value, 0)
  if (blockLength > maxSize) {
    throw new RpcError(Code.RESOURCE_EXHAUSTED, `metadata is ${blockLength} bytes; the limit is ${maxSize}`)
  }
  if (4 + blockLength > value.length) throw malformed('metadata block longer than the frame value')
  const metadata: Metadata = Object.create(null)
  let offset = 4
  const end = 4 + blockLength
  let count = 0
  while (offset < end) {
    if (++count > MAX_METADATA_ENTRIES)
      throw new RpcError(Code.RESOURCE_EXHAUSTED, 'too many metadata entries')
    const keyLength = value[offset++]
    if (offset + keyLength + 2 > end) throw malformed('metadata entry truncated')
    const key = decodeLatin1(value, offset, offset + keyLength)
    if (!KEY_PATTERN.test(key)) throw malformed(`invalid metadata key ${JSON.stringify(key)}`)
    offset += keyLength
    const valueLength = readU16(value, offset)
    offset += 2
    if (offset + valueLength > end) throw malformed('metadata entry truncated')
    const text = decodeUtf8Strict(value, offset, offset + valueLength)
    if (text === undefined) throw malformed(`metadata value for ${key} is not UTF-8`)
    metadata[key] = text
    offset += valueLength
  }
  // A subarray has its array's class, so the payload is a B.
  return { metadata, payload: value.subarray(end) as B }
}

function malformed(message: string): RpcError {
  return new RpcError(Code.PROTOCOL_ERROR, message)
}

/** The entry's first bytes: key length, then the key. */
const TIMEOUT_ENTRY_PREFIX = Uint8Array.from([
  TIMEOUT_KEY.length,
  ...Array.from(TIMEOUT_KEY, (c) => c.charCodeAt(0)),
])

/**
 * The metadata block of a call whose only metadata is its timeout: the common case, encoded
 * without the general machinery (same bytes as encodeMetadata({ 'srpc-timeout': String(ms) })).
 */
export function encodeTimeoutBlock(ms: number): Uint8Array {
  const digits = String(Math.ceil(ms))
  const entryLength = TIMEOUT_ENTRY_PREFIX.length + 2 + digits.length
  // Under 64 bytes: V8 allocates such a typed array on its heap, as cheaply as an object.
  const out = new Uint8Array(4 + entryLength)
  writeU32(out, entryLength, 0)
  out.set(TIMEOUT_ENTRY_PREFIX, 4)
  writeU16(out, digits.length, 4 + TIMEOUT_ENTRY_PREFIX.length)
  writeUtf8(digits, out, 6 + TIMEOUT_ENTRY_PREFIX.length, digits.length)
  return out
}

/**
 * The fast path of splitMetadata for a block holding only `srpc-timeout` with a decimal value:
 * the timeout in ms and the payload after the block, or undefined for any other block (which
 * then takes the general path).
 */
export function splitTimeoutOnly<B extends Uint8Array>(
  value: B,
): { timeoutMs: number; payload: B } | undefined {
  if (value.length < 4 + TIMEOUT_ENTRY_PREFIX.length + 3) return undefined
  const blockLength = readU32(value, 0)
  const digitsAt = 4 + TIMEOUT_ENTRY_PREFIX.length + 2
  const digits = blockLength - (digitsAt - 4)
  if (digits < 1 || digits > 12 || 4 + blockLength > value.length) return undefined
  for (let i = 0; i < TIMEOUT_ENTRY_PREFIX.length; i++) {
    if (value[4 + i] !== TIMEOUT_ENTRY_PREFIX[i]) return undefined
  }
  if (readU16(value, 4 + TIMEOUT_ENTRY_PREFIX.length) !== digits) return undefined
  let timeoutMs = 0
  for (let i = digitsAt; i < digitsAt + digits; i++) {
    const d = value[i] - 48
    if (d < 0 || d > 9) return undefined
    timeoutMs = timeoutMs * 10 + d
  }
  return { timeoutMs, payload: value.subarray(4 + blockLength) as B }
}

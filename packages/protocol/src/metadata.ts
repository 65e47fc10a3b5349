import { isUtf8 } from 'node:buffer'
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
export function encodeMetadata(metadata: Metadata, maxSize = DEFAULT_MAX_METADATA_SIZE): Buffer {
  const entries = Object.entries(metadata)
  if (entries.length > MAX_METADATA_ENTRIES) {
    throw new RpcError(
      Code.INVALID_ARGUMENT,
      `metadata has ${entries.length} entries; the most is ${MAX_METADATA_ENTRIES}`,
    )
  }
  let size = 4
  const encoded: [Buffer, Buffer][] = []
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
    const k = Buffer.from(key, 'latin1')
    const v = Buffer.from(value, 'utf8')
    if (v.length > 0xffff) throw new RpcError(Code.INVALID_ARGUMENT, `metadata value for ${key} is too long`)
    size += 1 + k.length + 2 + v.length
    encoded.push([k, v])
  }
  if (size - 4 > maxSize) {
    throw new RpcError(Code.RESOURCE_EXHAUSTED, `metadata is ${size - 4} bytes; the limit is ${maxSize}`)
  }
  const out = Buffer.allocUnsafe(size)
  out.writeUInt32BE(size - 4, 0)
  let offset = 4
  for (const [k, v] of encoded) {
    out[offset++] = k.length
    k.copy(out, offset)
    offset += k.length
    out.writeUInt16BE(v.length, offset)
    offset += 2
    v.copy(out, offset)
    offset += v.length
  }
  return out
}

/**
 * Splits a METADATA-flagged value into its metadata and payload (a view, not a copy).
 * Malformed blocks are PROTOCOL_ERROR; blocks over `maxSize` are RESOURCE_EXHAUSTED.
 */
export function splitMetadata(
  value: Buffer,
  maxSize = DEFAULT_MAX_METADATA_SIZE,
): { metadata: Metadata; payload: Buffer } {
  if (value.length < 4) throw malformed('metadata block length missing')
  const blockLength = value.readUInt32BE(0)
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
    const key = value.toString('latin1', offset, offset + keyLength)
    if (!KEY_PATTERN.test(key)) throw malformed(`invalid metadata key ${JSON.stringify(key)}`)
    offset += keyLength
    const valueLength = value.readUInt16BE(offset)
    offset += 2
    if (offset + valueLength > end) throw malformed('metadata entry truncated')
    const raw = value.subarray(offset, offset + valueLength)
    if (!isUtf8(raw)) throw malformed(`metadata value for ${key} is not UTF-8`)
    metadata[key] = raw.toString('utf8')
    offset += valueLength
  }
  return { metadata, payload: value.subarray(end) }
}

function malformed(message: string): RpcError {
  return new RpcError(Code.PROTOCOL_ERROR, message)
}

const TIMEOUT_ENTRY_PREFIX = Buffer.from([TIMEOUT_KEY.length, ...Buffer.from(TIMEOUT_KEY, 'latin1')])

/**
 * The metadata block of a call whose only metadata is its timeout: the common case, encoded
 * without the general machinery (same bytes as encodeMetadata({ 'srpc-timeout': String(ms) })).
 */
export function encodeTimeoutBlock(ms: number): Buffer {
  const digits = String(Math.ceil(ms))
  const entryLength = TIMEOUT_ENTRY_PREFIX.length + 2 + digits.length
  const out = Buffer.allocUnsafe(4 + entryLength)
  out.writeUInt32BE(entryLength, 0)
  TIMEOUT_ENTRY_PREFIX.copy(out, 4)
  out.writeUInt16BE(digits.length, 4 + TIMEOUT_ENTRY_PREFIX.length)
  out.write(digits, 6 + TIMEOUT_ENTRY_PREFIX.length, 'latin1')
  return out
}

/**
 * The fast path of splitMetadata for a block holding only `srpc-timeout` with a decimal value:
 * the timeout in ms and the payload after the block, or undefined for any other block (which
 * then takes the general path).
 */
export function splitTimeoutOnly(value: Buffer): { timeoutMs: number; payload: Buffer } | undefined {
  if (value.length < 4 + TIMEOUT_ENTRY_PREFIX.length + 3) return undefined
  const blockLength = value.readUInt32BE(0)
  const digitsAt = 4 + TIMEOUT_ENTRY_PREFIX.length + 2
  const digits = blockLength - (digitsAt - 4)
  if (digits < 1 || digits > 12 || 4 + blockLength > value.length) return undefined
  if (
    value.compare(
      TIMEOUT_ENTRY_PREFIX,
      0,
      TIMEOUT_ENTRY_PREFIX.length,
      4,
      4 + TIMEOUT_ENTRY_PREFIX.length,
    ) !== 0
  ) {
    return undefined
  }
  if (value.readUInt16BE(4 + TIMEOUT_ENTRY_PREFIX.length) !== digits) return undefined
  let timeoutMs = 0
  for (let i = digitsAt; i < digitsAt + digits; i++) {
    const d = value[i] - 48
    if (d < 0 || d > 9) return undefined
    timeoutMs = timeoutMs * 10 + d
  }
  return { timeoutMs, payload: value.subarray(4 + blockLength) }
}
